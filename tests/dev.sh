#!/usr/bin/env bash
# Set-up, serve and test DSAN-CT on a fresh machine (Debian, root, package
# registries only). Usage: tests/dev.sh serve | test | setup
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

TRUNK_VERSION=0.21.14
# wasm-bindgen-cli must match the wasm-bindgen crate in Cargo.lock exactly.
BINDGEN_VERSION=$(awk '/^name = "wasm-bindgen"$/ {getline; gsub(/[^0-9.]/, ""); print; exit}' Cargo.lock)

# LibTorch for dsan's `libtorch` feature: PyPI's torch at the version tch 0.22
# expects, in a venv outside the clone (reused by later clones), linked as
# .libtorch, which .cargo/config.toml names as LIBTORCH.
TORCH_VERSION=2.9.0
TORCH_VENV=${DSAN_TORCH_VENV:-$HOME/.cache/dsan-ct/venv-torch-$TORCH_VERSION}
# dsan's LibTorch backend, in the one build that clippy and the tests share.
# Cargo unifies features per build, so every test binary of the workspace
# links libtorch; only `dsan`'s targets carry the rpath that finds it
# (train/build.rs), so the others get LD_LIBRARY_PATH, which the CLI tests
# take away from the `dsan` they run.
FEATURES=(--features dsan-train/libtorch)

log() { printf '\n== [%s] %s\n' "$(date -u +%H:%M:%S)" "$*"; }

need_apt() {
    local missing=()
    for pkg in "$@"; do dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg"); done
    if [ ${#missing[@]} -gt 0 ]; then
        log "apt-get install ${missing[*]}"
        apt-get update -qq
        apt-get install -y -qq "${missing[@]}" >/dev/null
    fi
}

setup_web() {
    rustup target list --installed | grep -q '^wasm32-unknown-unknown$' \
        || rustup target add wasm32-unknown-unknown
    if ! trunk --version 2>/dev/null | grep -q " $TRUNK_VERSION\$"; then
        log "cargo install trunk $TRUNK_VERSION (10-20 min on 2 cores, once)"
        # trunk 0.22 needs a newer rustc than this toolchain.
        cargo install --locked trunk --version "$TRUNK_VERSION"
    fi
    if ! wasm-bindgen --version 2>/dev/null | grep -q " $BINDGEN_VERSION\$"; then
        log "cargo install wasm-bindgen-cli $BINDGEN_VERSION"
        # Not --locked: its lock file pins a crate release the registry lacks.
        cargo install wasm-bindgen-cli --version "$BINDGEN_VERSION" --force
    fi
}

setup_browser() {
    need_apt chromium chromium-driver
    if [ ! -d tests/e2e/node_modules/playwright-core ]; then
        log "npm ci (playwright-core; it drives Debian's chromium, downloads no browser)"
        (cd tests/e2e && npm ci --no-audit --no-fund)
    fi
}

setup_python() {
    # The independent DICOM reader the phantom round-trip test compares with,
    # its JPEG Lossless decoder (the real COVID-CT-MD series), and Pillow,
    # which writes those series as CC-CCII-style slice images.
    if ! python3 -c 'import pydicom, numpy, PIL, libjpeg' 2>/dev/null; then
        log "pip install pydicom numpy pillow pylibjpeg pylibjpeg-libjpeg"
        python3 -m pip install --quiet "pydicom==3.0.2" numpy pillow pylibjpeg pylibjpeg-libjpeg
    fi
}

setup_libtorch() {
    if ! "$TORCH_VENV/bin/python" -c "import torch; assert torch.__version__.split('+')[0] == '$TORCH_VERSION'" 2>/dev/null; then
        log "pip install torch==$TORCH_VERSION into $TORCH_VENV (PyPI's CUDA build: ~7 GB on disk, once)"
        python3 -m venv "$TORCH_VENV" 2>/dev/null || { need_apt python3-venv; python3 -m venv "$TORCH_VENV"; }
        "$TORCH_VENV/bin/python" -m pip install --quiet "torch==$TORCH_VERSION" numpy
    fi
    ln -sfn "$("$TORCH_VENV/bin/python" -c 'import os, torch; print(os.path.dirname(torch.__file__))')" .libtorch
}

build_page() {
    log "trunk build --release"
    trunk build --release
}

case "${1:-}" in
    setup)
        setup_web
        setup_browser
        setup_python
        setup_libtorch
        ;;
    serve)
        setup_web
        log "serving on http://127.0.0.1:8080"
        exec trunk serve --release
        ;;
    test)
        setup_web
        setup_browser
        setup_python
        setup_libtorch
        log "cargo fmt --check"
        cargo fmt --all -- --check
        log "cargo clippy (native, all targets, Flex and LibTorch)"
        cargo clippy --workspace --all-targets --locked "${FEATURES[@]}" -- -D warnings
        log "cargo test --workspace, Flex and LibTorch (also builds target/debug/dsan, the browser tests' native reference)"
        LD_LIBRARY_PATH="$ROOT/.libtorch/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" \
            cargo test --workspace --locked "${FEATURES[@]}"
        build_page
        log "browser tests (headless Chromium: WebGPU via SwiftShader, and CPU fallback)"
        DSAN_BIN="$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')/debug/dsan" \
        DIST_DIR="$ROOT/dist" \
            node --test --test-reporter=spec tests/e2e/
        ;;
    *)
        echo "usage: tests/dev.sh serve | test | setup" >&2
        exit 2
        ;;
esac
