#!/bin/sh
# The main job for a newcomer: train a small model on Fashion-MNIST, evaluate it, describe it.
set -eu
MIXQ=${1:-build/release/mixq}
OUT=${DEMO_DIR:-runs/demo}
mkdir -p "$OUT"
echo "== training lenet5 on Fashion-MNIST (3 epochs)"
"$MIXQ" train --model lenet5 --data fashion-mnist --epochs 3 --lr 0.05 --out "$OUT/lenet5.mixq"
echo "== test accuracy"
"$MIXQ" eval "$OUT/lenet5.mixq" --data fashion-mnist
echo "== model summary"
"$MIXQ" info "$OUT/lenet5.mixq"
