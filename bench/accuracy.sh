#!/bin/sh
# Accuracy acceptance runs (long; not part of the tests):
#   lenet5 on Fashion-MNIST, 10 epochs, no augmentation (the small net underfits with it)
#   (target >= 90.0% test accuracy)
#   resnet20 on Fashion-MNIST, EPOCHS_R20 epochs (default 25; target >= 93.0%)
# Prints the test accuracy and wall time of each. Usage: sh bench/accuracy.sh [lenet5|resnet20|all]
set -eu
cd "$(dirname "$0")/.."
MIXQ=build/release/mixq
OUT=${OUT:-runs/accuracy}
mkdir -p "$OUT"
which=${1:-all}
run() {
    name=$1; shift
    start=$(date +%s)
    "$MIXQ" train --model "$name" --data fashion-mnist --out "$OUT/$name.mixq" "$@"
    end=$(date +%s)
    acc=$("$MIXQ" eval "$OUT/$name.mixq" --data fashion-mnist | sed -n 's/^accuracy //p')
    echo "RESULT $name test_accuracy $acc train_wall_s $((end - start)) args: $*"
}
if [ "$which" = all ] || [ "$which" = lenet5 ]; then
    run lenet5 --epochs 10 --lr 0.05 --batch 128 --no-augment
fi
if [ "$which" = all ] || [ "$which" = resnet20 ]; then
    run resnet20 --epochs "${EPOCHS_R20:-25}" --lr 0.1 --batch 128
fi
