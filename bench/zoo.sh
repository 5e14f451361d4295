#!/bin/sh
# Issue 14's zoo models trained and quantized (long; not part of the tests; `make bench-zoo`):
#   mobilenet_v2 and squeezenet, each at 28x28 (Debian's Fashion-MNIST) and 32x32 (the same
#   images on a 2 px zero border, bench/pad_idx.py: no 32 px dataset is packaged for Debian).
# Per row: FP32 test accuracy and training wall time; uniform W8A8 (per-channel, calibration
# only) fake-quantized accuracy; the same model in the integer runtime (`mixq run`): accuracy,
# predictions differing from the fake quantization, images/s at batch 64 on all cores.
# Writes the table to $OUT/zoo.md (runs/zoo) and bench/results/zoo.md.
# Environment: EPOCHS_MBV2 (default 10), EPOCHS_SQ (default 15), WIDTH_MBV2 (mobilenet_v2's width
# multiplier, default 1), THREADS (default: all cores), ARCHS, SIZES (default "28 32").
set -eu
cd "$(dirname "$0")/.."
MIXQ=${MIXQ:-build/release/mixq}
OUT=${OUT:-runs/zoo}
FM=${MIXQ_DATA_DIR:-/usr/share/datasets}/fashion-mnist
mkdir -p "$OUT"
[ -f "$OUT/fm32/t10k-labels-idx1-ubyte" ] || python3 bench/pad_idx.py "$FM" "$OUT/fm32" 2
printf '{"mixq_policy": 1, "default": {"w_bits": 8, "a_bits": 8, "granularity": "channel"}}\n' \
    >"$OUT/w8a8.json"
table=$OUT/zoo.md
{
    echo "# Zoo models: mobilenet_v2 and squeezenet on Fashion-MNIST (make bench-zoo)"
    echo
    echo "CPU: $(sed -n 's/^model name[^:]*: //p' /proc/cpuinfo | head -n 1), $(nproc) cores;" \
         "$(date -u +%Y-%m-%d). SGD, cosine schedule, batch 128, random crop + flip, seed 1;" \
         "5000 training images held out for validation. 32 px: the images on a 2 px zero border."
    echo
    echo "| model | input | params | MMACs | epochs | FP32 test acc | train wall | W8A8 fake-quant acc | W8A8 runtime acc | runtime vs fake-quant differing | runtime img/s (b64) |"
    echo "|---|---|---|---|---|---|---|---|---|---|---|"
} >"$table"
T=${THREADS:+--threads $THREADS}
for size in ${SIZES:-28 32}; do
    for arch in ${ARCHS:-squeezenet mobilenet_v2}; do
        W=
        case $arch in
            mobilenet_v2) E=${EPOCHS_MBV2:-10}; W="--width ${WIDTH_MBV2:-1}" ;;
            *) E=${EPOCHS_SQ:-15} ;;
        esac
        if [ "$size" = 28 ]; then data=fashion-mnist; else data=$OUT/fm32; fi
        m=$OUT/${arch}_$size.mixq
        start=$(date +%s)
        "$MIXQ" train --model "$arch" $W --data "$data" --epochs "$E" --lr 0.05 --batch 128 $T \
            --out "$m" >"$OUT/${arch}_$size.train.log" 2>&1
        wall=$(($(date +%s) - start))
        acc=$("$MIXQ" eval "$m" --data "$data" $T | sed -n 's/^accuracy //p')
        info=$("$MIXQ" info "$m" | sed -n 's/^total: \([0-9]*\) parameters, [0-9]* MACs per image (\([0-9.]*\) MMACs).*/\1 \2/p')
        q=$OUT/${arch}_$size.w8a8.mixq
        "$MIXQ" quantize "$m" --policy "$OUT/w8a8.json" --data "$data" --out "$q" --quiet $T \
            >"$OUT/${arch}_$size.quant.log" 2>&1
        qacc=$("$MIXQ" eval "$q" --data "$data" $T | sed -n 's/^accuracy //p')
        "$MIXQ" run "$q" --data "$data" $T >"$OUT/${arch}_$size.run.log" 2>&1
        racc=$(sed -n 's/^accuracy //p' "$OUT/${arch}_$size.run.log")
        diff=$(sed -n 's/.*predictions differing \([0-9]* of [0-9]*\).*/\1/p' "$OUT/${arch}_$size.run.log")
        ips=$(sed -n 's/^throughput \([0-9.]*\) images.*/\1/p' "$OUT/${arch}_$size.run.log")
        set -- $info
        [ "$arch" = mobilenet_v2 ] && [ "${WIDTH_MBV2:-1}" != 1 ] && arch="$arch (width ${WIDTH_MBV2})"
        echo "| $arch | ${size}x$size | $1 | $2 | $E | $acc | $wall s | $qacc | $racc | $diff | $ips |" | tee -a "$table"
    done
done
echo >>"$table"
echo "Command: EPOCHS_MBV2=${EPOCHS_MBV2:-10} EPOCHS_SQ=${EPOCHS_SQ:-15} WIDTH_MBV2=${WIDTH_MBV2:-1}${THREADS:+ THREADS=$THREADS} make bench-zoo" >>"$table"
mkdir -p bench/results && cp "$table" bench/results/zoo.md
echo "wrote bench/results/zoo.md"
