"""attnwidget: linked, two-way attention views for Hugging Face transformers in notebooks."""

# The capture pipeline is the package `capturing`, not `capture`: a submodule named
# `capture` would replace the `attnwidget.capture` function on the package once imported.
from importlib import import_module
from typing import TYPE_CHECKING

__version__ = "0.1.0"
__all__ = ["AttentionWidget", "Capture", "capture", "induction_scores", "__version__"]

# Imported on first use, so `import attnwidget` stays cheap and torch loads only when needed.
_LAZY = {
    "AttentionWidget": "attnwidget.widget",
    "Capture": "attnwidget.capturing",
    "capture": "attnwidget.capturing",
    "induction_scores": "attnwidget.analysis.induction",
}

if TYPE_CHECKING:  # pragma: no cover
    from .analysis.induction import induction_scores
    from .capturing import Capture, capture
    from .widget import AttentionWidget


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'attnwidget' has no attribute {name!r}")
