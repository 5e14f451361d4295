#!/bin/sh
# Issue 22: the searched 3x32x32 vgg11 on CIFAR-10 against an equally trained W8A8, from a float
# model trained longer than bench/vgg_cifar.sh's 8 epochs, with and without distillation.
#   1. CIFAR-10 into runs/data/cifar10 (bench/cifar10.sh);
#   2. vgg11 (3x32x32, BN) trained in FP32: EPOCHS (20) epochs, SGD, cosine, 1 warm-up epoch,
#      crop + flip, 5 000 training images held out, 2 threads -> runs/vgg_cifar<EPOCHS>/vgg11.mixq
#      (skipped when it is there); its FP32 test accuracy, and W8A8 calibrated on it;
#   3. POLICY (default: the budget-0.5 seed-1 policy EBS found on --hw cpu in bench/vgg_cifar.sh,
#      committed as bench/results/vgg11_cifar_ebs_0_5_s1.json) and W8A8 each fine-tuned QAT (3)
#      epochs by `mixq quantize`, distilled from the float model (--teacher, weight 0.5,
#      temperature 1) and not (plain cross-entropy): JOBS ("mixed:kd mixed:ce w8a8:kd w8a8:ce")
#      in that order, PAR (2) at a time, 1 thread each; a fine-tune done is not redone;
#   4. every model on the integer runtime on the 10 000 test images (runtime accuracy, and 0
#      predictions different from fake quantization);
#   5. speed: POLICY's model against W8A8's on the runtime, 1 thread, batch 1 (2 000 images) and
#      64 (10 000), alternating, median of REPS (5) runs each -> REPORT
#      (bench/results/vgg_cifar_kd.md).
#   sh bench/vgg_cifar_kd.sh       (make bench-vgg-cifar-kd; ~2.5 h on a 2-core machine)
set -eu
MIXQ=${MIXQ:-build/release/mixq}
EPOCHS=${EPOCHS:-20}
QAT=${QAT:-3}
PAR=${PAR:-2}
REPS=${REPS:-5}
POLICY=${POLICY:-bench/results/vgg11_cifar_ebs_0_5_s1.json}
JOBS=${JOBS:-mixed:kd mixed:ce w8a8:kd w8a8:ce}
D=runs/data/cifar10
O=runs/vgg_cifar$EPOCHS
V=$O/vgg11.mixq
R=${REPORT:-bench/results/vgg_cifar_kd.md}
sh bench/cifar10.sh "$D"
mkdir -p "$O"
if [ ! -f "$V" ]; then
    "$MIXQ" train --model vgg11 --data "$D" --out "$V" --epochs "$EPOCHS" --warmup 1 --threads 2 \
        > "$O/vgg11.train.log" 2>&1 || { tail -n 5 "$O/vgg11.train.log" >&2; exit 1; }
fi
[ "$O/fp32.eval.txt" -nt "$V" ] || "$MIXQ" eval "$V" --data "$D" --threads 2 > "$O/fp32.eval.txt"
echo '{"mixq_policy": 1, "default": {"w_bits": 8, "a_bits": 8}}' > "$O/w8a8.json"
cp "$POLICY" "$O/mixed.json"
if [ ! "$O/calib_w8a8.mixq" -nt "$V" ]; then
    "$MIXQ" quantize "$V" --policy "$O/w8a8.json" --data "$D" --out "$O/calib_w8a8.mixq" --quiet \
        > "$O/calib_w8a8.log"
fi
. "$(dirname "$0")/par.sh"
for j in $JOBS; do
    p=${j%%:*} k=${j#*:}
    q="$O/qat${QAT}_${p}_$k"
    [ "$q.mixq" -nt "$V" ] && continue
    t=''
    [ "$k" = kd ] && t="--teacher $V"
    # shellcheck disable=SC2086 # t is a flag and its value or nothing
    "$MIXQ" quantize "$V" --policy "$O/$p.json" --data "$D" --finetune-epochs "$QAT" --threads 1 \
        $t --out "$q.mixq" > "$q.log" 2>&1 &
    par_started
done
par_wait
[ "$fail" = 0 ] || { echo "vgg_cifar_kd.sh: a fine-tune failed (see $O/qat*.log)" >&2; exit 1; }
for q in "$O"/calib_w8a8.mixq "$O"/qat"$QAT"_*.mixq; do
    [ -f "$q" ] || continue
    [ "${q%.mixq}.run.txt" -nt "$q" ] || "$MIXQ" run "$q" --data "$D" --threads 2 > "${q%.mixq}.run.txt"
    echo "$q: $(grep '^accuracy' "${q%.mixq}.run.txt" | head -n 1)"
done
# speed: the policy's model (any of its fine-tunes: the same layers and bits) against W8A8's
. "$(dirname "$0")/speed.sh"
speed_pairs "$O/speed.txt" "$D" "$REPS" "searched=$(ls "$O"/qat"$QAT"_mixed_*.mixq | head -n 1)" \
    "w8a8=$O/calib_w8a8.mixq"
python3 bench/vgg_cifar_kd_report.py "$O" "$QAT" "$EPOCHS" "$POLICY" "$R"
cat "$R"
