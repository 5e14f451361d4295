#!/bin/sh
# The main job for a newcomer: train a small model on Fashion-MNIST, evaluate it, describe it,
# then quantize it with a mixed-precision policy and print the resolved policy.
set -eu
MIXQ=${1:-build/release/mixq}
OUT=${DEMO_DIR:-runs/demo}
mkdir -p "$OUT"
echo "== training lenet5 on Fashion-MNIST (3 epochs)"
"$MIXQ" train --model lenet5 --data fashion-mnist --epochs 3 --lr 0.05 --out "$OUT/lenet5.mixq"
echo "== test accuracy (FP32)"
"$MIXQ" eval "$OUT/lenet5.mixq" --data fashion-mnist
echo "== model summary"
"$MIXQ" info "$OUT/lenet5.mixq"
echo "== quantizing to W4A4 (first layer pinned at 8 bits): calibration + 0.5 epoch of QAT"
cat >"$OUT/w4a4_pin.json" <<'JSON'
{
  "mixq_policy": 1,
  "default": {"w_bits": 4, "a_bits": 4, "granularity": "channel"},
  "layers": {"conv1": {"w_bits": 8, "a_bits": 8}}
}
JSON
"$MIXQ" quantize "$OUT/lenet5.mixq" --policy "$OUT/w4a4_pin.json" --data fashion-mnist \
    --finetune-epochs 0.5 --out "$OUT/lenet5_w4a4.mixq"
echo "== test accuracy (quantized)"
"$MIXQ" eval "$OUT/lenet5_w4a4.mixq" --data fashion-mnist
