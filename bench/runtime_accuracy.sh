#!/bin/sh
# The CPU runtime against the fake-quantized model on the whole Fashion-MNIST test set:
# every quantized model file given (default: the ones bench/quant_accuracy.sh and
# `mixq quantize` wrote under runs/quant), each kernel choice. Writes a markdown table.
#   sh bench/runtime_accuracy.sh [MODEL.mixq ...]        (table: bench/results/runtime_accuracy.md)
set -eu
MIXQ=${MIXQ:-build/release/mixq}
OUT=${OUT:-bench/results/runtime_accuracy.md}
KERNELS=${KERNELS:-"auto bitserial"}
[ $# -gt 0 ] || set -- runs/quant/lenet5.W8A8-calib.mixq runs/quant/lenet5.W4A4-qat3.mixq \
    runs/quant/lenet5.W2A2-qat3.mixq runs/quant/lenet5.perkernel-qat1.mixq \
    runs/quant/resnet20.W8A8-calib.mixq runs/quant/resnet20.W4A4-qat2.mixq \
    runs/quant/resnet20.W2A2-qat2.mixq
{
    echo "| model | kernel | runtime test % | fake-quant test % | predictions differing | largest logit diff | images/s (batch 64) |"
    echo "|---|---|---|---|---|---|---|"
} > "$OUT.tmp"
for m in "$@"; do
    for k in $KERNELS; do
        r=$("$MIXQ" run "$m" --data fashion-mnist --kernel "$k") || { echo "FAILED $m $k" >&2; exit 1; }
        acc=$(echo "$r" | sed -n 's/^accuracy \([0-9.]*\)%.*/\1/p')
        ips=$(echo "$r" | sed -n 's/^throughput \([0-9.]*\) images.*/\1/p')
        ref=$(echo "$r" | sed -n 's/^fake-quantized accuracy \([0-9.]*\)%; predictions differing \([0-9]*\) of \([0-9]*\) (\([0-9]*\) of them exact ties between two classes); largest logit difference \(.*\)$/\1 | \2 of \3 (\4 ties) | \5/p')
        echo "| $(basename "$m" .mixq) | $k | $acc | $ref | $ips |" | tee -a "$OUT.tmp"
    done
done
mv "$OUT.tmp" "$OUT"
echo "wrote $OUT"
