#!/bin/sh
# Training-speed benchmark: mixq against PyTorch CPU (Debian python3-torch), same model, batch
# 128, same thread count, interleaved in one run; prints images/s of each and mixq/PyTorch.
#   sh bench/run.sh [THREADS] [REPEATS]
set -eu
cd "$(dirname "$0")/.."
T=${1:-2}
R=${2:-5}
BIN=build/release/bench/bench_train
PY=/usr/bin/python3
[ -x "$BIN" ] || { echo "build first: make bench" >&2; exit 1; }
$PY -c "import torch" 2>/dev/null || sh scripts/deps.sh --torch
printf "%-10s %8s %14s %14s %10s\n" model threads mixq_img/s torch_img/s ratio
for model in lenet5 resnet20; do
    steps=20; [ "$model" = resnet20 ] && steps=4
    m=$(OMP_NUM_THREADS=$T $BIN $model --threads $T --steps $steps --repeats $R | sed -n 's/^median_images_per_s //p')
    t=$(OMP_NUM_THREADS=$T $PY bench/torch_train.py $model --threads $T --steps $steps --repeats $R | sed -n 's/^median_images_per_s //p')
    ratio=$(awk -v a="$m" -v b="$t" 'BEGIN { printf "%.2f", a / b }')
    printf "%-10s %8s %14s %14s %9sx\n" $model $T "$m" "$t" "$ratio"
done
