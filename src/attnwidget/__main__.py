"""`python -m attnwidget export ...`: the same command as the `attnwidget` script."""

import sys

from .cli import main

sys.exit(main())
