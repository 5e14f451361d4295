#!/bin/sh
# Training-speed benchmark: mixq against PyTorch CPU (Debian python3-torch), same model, batch
# 128, same thread count, full training steps (forward, backward, SGD update) on random data.
# The two run alternately in one invocation (mixq, torch, mixq, torch, ...) so that drift on a
# shared machine hits both; each run warms up first. Prints the median images/s of each and
# the ratio mixq/PyTorch, plus mixq's per-op profile of one extra run.
#   sh bench/run.sh [THREADS] [REPEATS] [MODELS]
# A model is a zoo name on 1x28x28 inputs, or NAME:CxH for C channels of H x H (vgg11:3x32, the
# CIFAR-10 vgg11 of bench/vgg_cifar*.sh).
set -eu
cd "$(dirname "$0")/.."
T=${1:-2}
R=${2:-7}
MODELS=${3:-"lenet5 resnet20"}
BIN=build/release/bench/bench_train
PY=/usr/bin/python3
[ -x "$BIN" ] || make -s VARIANT=release "$BIN"
$PY -c "import torch" 2>/dev/null || sh scripts/deps.sh --torch
median() { sort -g | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else printf "%.1f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //'), $(nproc) cores; threads $T; repeats $R"
out=$(mktemp)
printf "%-10s %8s %14s %14s %10s\n" model threads mixq_img/s torch_img/s ratio >"$out"
for spec in $MODELS; do
    model=${spec%%:*}; shape="--channels 1 --hw 28"
    case "$spec" in *:*x*) d=${spec#*:}; shape="--channels ${d%%x*} --hw ${d#*x}" ;; esac
    steps=20; [ "$model" = lenet5 ] || steps=4
    ms=""; ts=""
    r=0
    while [ $r -lt "$R" ]; do
        m=$(OMP_NUM_THREADS=$T $BIN "$model" $shape --threads "$T" --steps $steps --repeats 1 | sed -n 's/^median_images_per_s //p')
        t=$(OMP_NUM_THREADS=$T $PY bench/torch_train.py "$model" $shape --threads "$T" --steps $steps --repeats 1 | sed -n 's/^median_images_per_s //p')
        echo "  $spec run $((r + 1)): mixq $m  torch $t images/s"
        ms="$ms $m"; ts="$ts $t"
        r=$((r + 1))
    done
    mm=$(echo $ms | tr ' ' '\n' | median)
    tm=$(echo $ts | tr ' ' '\n' | median)
    ratio=$(awk -v a="$mm" -v b="$tm" 'BEGIN { printf "%.2f", a / b }')
    printf "%-10s %8s %14s %14s %9sx\n" "$spec" "$T" "$mm" "$tm" "$ratio" >>"$out"
    echo "  mixq profile ($spec):"
    MIXQ_PROFILE=1 OMP_NUM_THREADS=$T $BIN "$model" $shape --threads "$T" --steps $steps --repeats 1 2>&1 |
        sed -n '/^profile/,$p' | sed 's/^/    /'
done
cat "$out"
rm -f "$out"
