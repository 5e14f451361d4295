#!/bin/sh
# Install ONNX Runtime for Node.js (npm's onnxruntime-node: its CPU binaries are in the package,
# so --ignore-scripts skips only the optional GPU download) into build/ort, for the ORT
# comparison test (tests/test_ort.c) and `make bench-ort`. Quick when already installed.
#   scripts/ort.sh            install (MIXQ_ORT_DIR overrides build/ort)
set -eu
dir=${MIXQ_ORT_DIR:-$(dirname "$0")/../build/ort}
ver=1.31.1
pkg="$dir/node_modules/onnxruntime-node/package.json"
if [ -f "$pkg" ] && grep -q "\"version\": \"$ver\"" "$pkg"; then exit 0; fi
if ! command -v npm >/dev/null 2>&1; then
    echo "ort.sh: npm is not installed (scripts/deps.sh installs nodejs and npm)" >&2
    exit 1
fi
mkdir -p "$dir"
echo "ort.sh: npm install onnxruntime-node@$ver into $dir" >&2
(cd "$dir" && npm install --no-audit --no-fund --ignore-scripts "onnxruntime-node@$ver" >/dev/null)
