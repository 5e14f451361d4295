#!/bin/sh
# mixq's quantized exports in ONNX Runtime (npm onnxruntime-node, scripts/ort.sh installs it):
# for each model and policy, quantize (calibration on 2048 training images), export QDQ, and run
# the 10 000 Fashion-MNIST test images through ORT with its default optimizations (all) and
# with them off; count the predictions that differ from mixq's fake-quantized model and the
# largest logit difference. Then speed, one thread: `mixq run` against ORT float and QDQ, images/s
# at batch 1 and 64 (median of 5 interleaved rounds). Writes bench/results/ort.md.
#   sh bench/ort.sh                     (make bench-ort)
#   PART=speed sh bench/ort.sh          only the speed table: W4A4 models quantized where missing,
#                                       and the table replaces the speed section of OUT
# Models: LENET5 and RESNET20 (default runs/accuracy/{lenet5,resnet20}.mixq, trained by
# bench/accuracy.sh), and the PyTorch fixtures tests/fixtures/onnx/{dw_tiny,resnet_tiny}.onnx.
set -eu
MIXQ=${MIXQ:-build/release/mixq}
OUT=${OUT:-bench/results/ort.md}
LENET5=${LENET5:-runs/accuracy/lenet5.mixq}
RESNET20=${RESNET20:-runs/accuracy/resnet20.mixq}
W=${W:-runs/ort}
ORT="node scripts/ort_run.js"
for f in "$LENET5" "$RESNET20"; do
    [ -f "$f" ] || { echo "bench/ort.sh: $f is missing; hint: sh bench/accuracy.sh trains it" >&2; exit 1; }
done
sh scripts/ort.sh
mkdir -p "$W"
export MIXQ_THREADS=${MIXQ_THREADS:-2}

# a per-kernel policy for MODEL: kernel k of each conv/linear layer gets 2 + (k + layer) % 7 bits,
# activations 4 bits (the first and last layers 8/8)
perkernel() {
    "$MIXQ" info "$1" | awk '
        $3 == "conv" || $3 == "linear" { n++; name[n] = $2; split($5, s, "x"); k[n] = s[1] }
        END {
            printf "{\"mixq_policy\": 1, \"default\": {\"a_bits\": 4, \"granularity\": \"kernel\"}, \"layers\": {"
            for (i = 1; i <= n; i++) {
                printf "%s\"%s\": {\"w_bits\": [", (i > 1 ? ", " : ""), name[i]
                for (j = 0; j < k[i]; j++) printf "%s%d", (j ? ", " : ""), 2 + (j + i) % 7
                printf "]%s}", ((i == 1 || i == n) ? ", \"a_bits\": 8" : "")
            }
            print "}}"
        }'
}

cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)
ortv=$(sed -n 's/.*"version": "\(.*\)".*/\1/p' build/ort/node_modules/onnxruntime-node/package.json)
if [ "${PART:-all}" = speed ]; then
    [ -f "$OUT" ] || { echo "bench/ort.sh: PART=speed needs $OUT (a full run's)" >&2; exit 1; }
    sed '/^## Speed, one thread/,$d' "$OUT" | sed '$ { /^$/d }' >"$OUT.tmp"
    for spec in "lenet5:$LENET5" "resnet20:$RESNET20"; do
        name=${spec%%:*}
        [ -f "$W/$name.w4a4.mixq" ] || "$MIXQ" quantize "${spec#*:}" --policy examples/policies/w4a4.json \
            --data fashion-mnist --out "$W/$name.w4a4.mixq" --quiet >/dev/null
        [ -f "$W/$name.w4a4.onnx" ] || "$MIXQ" export "$W/$name.w4a4.mixq" --format onnx --out "$W/$name.w4a4.onnx" >/dev/null
    done
else
{
    echo "# mixq exports in ONNX Runtime"
    echo
    echo "$(date -u +%Y-%m-%d), $cpu, $(nproc) CPUs; onnxruntime-node $ortv (CPU); \`make bench-ort\`."
    echo "Each model quantized with calibration only (2048 training images), exported QDQ, and run on"
    echo "the 10 000 test images. Differing: predictions of ORT against mixq's fake-quantized model."
    echo
    echo "| model | policy | mixq test % | ORT default opts: differing | max logit diff | ORT opts off: differing | max logit diff |"
    echo "|---|---|---|---|---|---|---|"
} >"$OUT.tmp"

for spec in "lenet5:$LENET5" "resnet20:$RESNET20" "dw_tiny:tests/fixtures/onnx/dw_tiny.onnx" \
    "resnet_tiny:tests/fixtures/onnx/resnet_tiny.onnx"; do
    name=${spec%%:*}
    model=${spec#*:}
    perkernel "$model" >"$W/$name.perkernel.json"
    for pol in w8a8 w4a4 w2a2 perkernel; do
        p=examples/policies/$pol.json
        [ "$pol" = perkernel ] && p=$W/$name.perkernel.json
        q=$W/$name.$pol
        "$MIXQ" quantize "$model" --policy "$p" --data fashion-mnist --out "$q.mixq" --quiet >/dev/null 2>&1 ||
            { echo "bench/ort.sh: quantize $name $pol failed" >&2; exit 1; }
        "$MIXQ" export "$q.mixq" --format onnx --out "$q.onnx" >/dev/null
        acc=$("$MIXQ" eval "$q.mixq" --data fashion-mnist --dump-inputs "$W/in.f32" --dump-logits "$q.f32" 2>/dev/null |
            sed -n 's/^accuracy \(.*\)%/\1/p')
        row="| $name | $pol | $acc |"
        for lv in all disabled; do
            r=$($ORT compare "$q.onnx" "$W/in.f32" "$q.f32" 1 28 28 10 "$lv")
            d=$(echo "$r" | sed -n 's/.*differing \([0-9]*\) .*/\1/p')
            m=$(echo "$r" | sed -n 's/.*max_logit_diff \(.*\)/\1/p')
            row="$row $d ($(awk "BEGIN { printf \"%.2f\", $d / 100 }")%) | $m |"
        done
        echo "$row" | tee -a "$OUT.tmp"
    done
done
rm -f "$W/in.f32"
fi

# speed, one thread: the median of 5 of images/s
med() { sort -n "$1" | sed -n 3p; } # the median of 5
{
    echo
    echo "## Speed, one thread (images/s, median of 5 interleaved rounds)"
    echo
    echo "\`mixq run\` (the integer runtime, W4A4 exports of the models above, the runtime's own"
    echo "timing over 2000 test images after one warm-up batch) against ORT (default optimizations,"
    echo "intra/inter-op threads 1, a warm-up run, 2000 images per timing) on the float export and the"
    echo "W4A4 QDQ export."
    echo
    echo "Taken $(date -u '+%Y-%m-%d %H:%M') UTC, load average before: $(cut -d' ' -f1-3 /proc/loadavg)."
    echo
    echo "| model | batch | mixq run W4A4 | ORT float | ORT QDQ W4A4 |"
    echo "|---|---|---|---|---|"
} >>"$OUT.tmp"
for spec in "lenet5:$LENET5" "resnet20:$RESNET20"; do
    name=${spec%%:*}
    model=${spec#*:}
    "$MIXQ" export "$model" --format onnx --out "$W/$name.float.onnx" >/dev/null 2>&1
    for b in 1 64; do
        # interleaved: one run of each per round, so a slow spell of a shared machine hits all three
        : >"$W/mr" && : >"$W/of" && : >"$W/oq"
        for i in 1 2 3 4 5; do
            MIXQ_THREADS=1 "$MIXQ" run "$W/$name.w4a4.mixq" --data fashion-mnist --batch "$b" --images 2000 \
                --no-compare | sed -n 's/^throughput \([0-9.]*\) .*/\1/p' >>"$W/mr"
            $ORT speed "$W/$name.float.onnx" 1 28 28 "$b" 1 | sed -n 's/images_per_s //p' >>"$W/of"
            $ORT speed "$W/$name.w4a4.onnx" 1 28 28 "$b" 1 | sed -n 's/images_per_s //p' >>"$W/oq"
        done
        mr=$(med "$W/mr") of=$(med "$W/of") oq=$(med "$W/oq")
        echo "| $name | $b | $mr | $of | $oq |" | tee -a "$OUT.tmp"
    done
done
mv "$OUT.tmp" "$OUT"
echo "wrote $OUT"
