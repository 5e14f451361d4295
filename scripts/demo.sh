#!/bin/sh
# The main job for a newcomer: train (or reuse) a small model on Fashion-MNIST, show what it
# costs on hardware, search its per-layer bits with HAQ under a latency budget, fine-tune the
# best policy, print it with its Pareto summary, and run it on this CPU with the integer runtime.
#   DEMO_DIR=runs/demo  DEMO_HW=bismo_edge  DEMO_BUDGET=latency=0.75  DEMO_EPISODES=40
set -eu
MIXQ=${1:-build/release/mixq}
OUT=${DEMO_DIR:-runs/demo}
HW=${DEMO_HW:-bismo_edge}
BUDGET=${DEMO_BUDGET:-latency=0.75}
EPISODES=${DEMO_EPISODES:-40}
mkdir -p "$OUT"
if [ -f "$OUT/lenet5.mixq" ]; then
    echo "== reusing $OUT/lenet5.mixq (delete it to retrain)"
else
    echo "== training lenet5 on Fashion-MNIST (5 epochs)"
    "$MIXQ" train --model lenet5 --data fashion-mnist --epochs 5 --lr 0.05 --no-augment --out "$OUT/lenet5.mixq"
fi
echo "== test accuracy (FP32)"
"$MIXQ" eval "$OUT/lenet5.mixq" --data fashion-mnist
echo "== what uniform W8A8 costs on $HW"
"$MIXQ" cost "$OUT/lenet5.mixq" --hw "$HW"
echo "== HAQ search on $HW, budget $BUDGET of W8A8, $EPISODES episodes"
rm -rf "$OUT/search"
"$MIXQ" search "$OUT/lenet5.mixq" --data fashion-mnist --agent haq --hw "$HW" --budget "$BUDGET" \
    --episodes "$EPISODES" --warmup 15 --out "$OUT/search"
echo "== Pareto set (accuracy against latency; all metrics in $OUT/search/pareto.csv)"
awk -F, 'NR == 1 || $1 == "latency" {printf "%-8s %-8s %-9s %-14s %-14s %s | %s\n", $1, $2, $3, $4, $5, $8, $9}' \
    "$OUT/search/pareto.csv"
echo "== the searched model: $OUT/search/best.mixq"
"$MIXQ" cost "$OUT/search/best.mixq" --hw "$HW"
echo "== the searched model on this CPU: integer runtime (bit-serial / int8 kernels) vs its fake quantization"
"$MIXQ" run "$OUT/search/best.mixq" --data fashion-mnist --layers
