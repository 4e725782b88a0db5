#!/usr/bin/env bash
# What tools_benchmark.py needs besides the project: CircuitsVis in its own virtual environment, and the
# scripts BertViz and CircuitsVis load from CDNs, which the benchmark's browser answers from local files.
#
#   bash benchmarks/setup_tools_benchmark.sh [python]     # python: the project's (default: python3)
#
# Everything goes to build/tools-benchmark/ (git-ignored), never into the project's requirements:
# - circuitsvis-venv/: `pip install circuitsvis==1.43.3` in a venv of the interpreter the project's python
#   is built on, with its site packages visible (torch, numpy: no second torch download where one is installed).
# - vendor/: from the npm registry, BertViz's CDN scripts: require.js 2.3.6, d3 5.7.0, and jQuery 2.1.0
#   (BertViz asks for 2.0.0, which was never published to npm; 2.1.0 is the nearest 2.x).
#   CircuitsVis's own npm package is not in the reachable registry, so its bundle comes from the PyPI wheel
#   (circuitsvis/dist/cdn/iife.js, the same version); tools_benchmark.py serves it as the ES module the page imports.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${1:-python3}
OUT=build/tools-benchmark
CIRCUITSVIS=1.43.3

if [ ! -x "$OUT/circuitsvis-venv/bin/python" ]; then
    base=$("$PYTHON" -c 'import os, sys; print(os.path.join(sys.base_prefix, "bin", "python3"))')
    "$base" -m venv --system-site-packages "$OUT/circuitsvis-venv"
fi
"$OUT/circuitsvis-venv/bin/python" -c "import circuitsvis" 2>/dev/null \
    || "$OUT/circuitsvis-venv/bin/pip" install --quiet "circuitsvis==$CIRCUITSVIS"

mkdir -p "$OUT/vendor"
for package in requirejs@2.3.6 d3@5.7.0 jquery@2.1.0; do
    folder="$OUT/vendor/${package/@/-}"
    if [ ! -d "$folder" ]; then
        tarball=$(cd "$OUT/vendor" && npm pack --silent "$package")
        mkdir -p "$folder"
        tar xzf "$OUT/vendor/$tarball" -C "$folder" --strip-components=1
        rm "$OUT/vendor/$tarball"
    fi
done
echo "ready: $OUT"
