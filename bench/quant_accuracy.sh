#!/bin/sh
# Quantization acceptance table for one model (long; not part of the tests):
#   sh bench/quant_accuracy.sh MODEL.mixq [QAT_EPOCHS]
# Rows: FP32; uniform W8A8 after calibration only; W4A4, W3A3, W2A2 and two random per-kernel
# mixes after QAT_EPOCHS (default 3) epochs of quantization-aware fine-tuning. Prints the
# Fashion-MNIST test accuracy, size, BitOps and wall time of each row as a markdown table.
set -eu
cd "$(dirname "$0")/.."
MODEL=$1
E=${2:-3}
MIXQ=build/release/mixq
OUT=${OUT:-runs/quant}
mkdir -p "$OUT"
name=$(basename "$MODEL" .mixq)
for b in 8 4 3 2; do
    printf '{"mixq_policy": 1, "default": {"w_bits": %d, "a_bits": %d, "granularity": "channel"}}\n' $b $b \
        >"$OUT/w${b}a${b}.json"
done
python3 bench/random_policy.py "$MODEL" 1 >"$OUT/$name.mix1.json"
python3 bench/random_policy.py "$MODEL" 2 2 8 >"$OUT/$name.mix2.json"
row() { # label policy epochs
    start=$(date +%s)
    if [ -z "$2" ]; then
        q=$MODEL
        extra="-"
    else
        q="$OUT/$name.$1.mixq"
        $MIXQ quantize "$MODEL" --policy "$2" --data fashion-mnist --finetune-epochs "$3" --out "$q" --quiet >"$OUT/$name.$1.log" 2>&1
        extra=$(sed -n 's/^total: .*(\([0-9.]*\) bits\/weight), model size \([0-9.]*\) KiB.* \([0-9.e+]*\) BitOps per image.*/\1 b\/w, \2 KiB, \3 BitOps/p' "$OUT/$name.$1.log")
    fi
    acc=$($MIXQ eval "$q" --data fashion-mnist | sed -n 's/^accuracy //p')
    end=$(date +%s)
    printf "| %s | %s | %s | %s | %s s |\n" "$name" "$1" "$acc" "$extra" $((end - start))
}
echo "| model | policy | test accuracy | size, BitOps/image | wall |"
echo "|---|---|---|---|---|"
row fp32 "" 0
row "W8A8-calib" "$OUT/w8a8.json" 0
row "W4A4-qat$E" "$OUT/w4a4.json" "$E"
row "W3A3-qat$E" "$OUT/w3a3.json" "$E"
row "W2A2-qat$E" "$OUT/w2a2.json" "$E"
row "mix1(2-6b)-qat$E" "$OUT/$name.mix1.json" "$E"
row "mix2(2-8b)-qat$E" "$OUT/$name.mix2.json" "$E"
