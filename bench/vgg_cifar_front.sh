#!/bin/sh
# Issue 22: points of the latency-accuracy front of CIFAR-10 vgg11 around 2x W8A8's speed. Each
# policy of POLICIES (NAME=FILE ...; default: three candidates of bench/vgg_cifar_abits.sh's
# searches, committed under bench/results/, a hand probe, and W8A8 itself as w8a8_qat, the
# baseline fine-tuned the same way) is
#   1. fine-tuned QAT (10) epochs distilled from the float model, as bench/vgg_cifar_abits.sh
#      does, when FINETUNE names it: "NAME" (seed 1) or "NAME:S,S..." (those fine-tune seeds),
#      or "all" (default: every policy, seed 1); PAR (2) fine-tunes at a time, THREADS (1) threads
#      each; each fine-tuned model runs on the 10 000 test images (accuracy; predictions against
#      fake quantization); a fine-tune done is not redone, one killed resumes from its checkpoint
#      (NAME.ckpt beside its model, written after every epoch) to the same model;
#   2. otherwise only calibrated (its speed is the policy's: the same kernels and epilogues);
#   3. timed on the runtime against W8A8 calibrated (a fine-tuned policy: its first seed's model):
#      1 thread, batch 1 (2 000 images) and 64 (10 000), all models alternating, REPS (5) rounds;
#      the median of the rounds' ratios;
#   4. costed on this CPU's measured table (runs/vgg_cifar<EPOCHS>/cpu.json, `mixq calibrate-cpu`).
# The report pairs each fine-tuned policy's seeds with w8a8_qat's same seed.
# Needs the float model and W8A8 calibrated of bench/vgg_cifar_kd.sh (runs/vgg_cifar<EPOCHS>/).
# Writes REPORT (bench/results/vgg_cifar_front.md).
#   sh bench/vgg_cifar_front.sh     (make bench-vgg-cifar-front; ~85 min per pair of fine-tunes
#                                    side by side on a 2-core machine)
set -eu
MIXQ=${MIXQ:-build/release/mixq}
EPOCHS=${EPOCHS:-20}
QAT=${QAT:-10}
PAR=${PAR:-2}
THREADS=${THREADS:-1}
REPS=${REPS:-5}
R=bench/results
FINETUNE=${FINETUNE:-all}
D=runs/data/cifar10
O=runs/vgg_cifar$EPOCHS
POLICIES=${POLICIES:-s1_c1=$R/vgg11_cifar_ebs_abits_s1_c1.json s1_c2=$R/vgg11_cifar_ebs_abits_s1_c2.json s2_c2=$R/vgg11_cifar_ebs_abits_s2_c2.json a3_4_8=$R/vgg11_cifar_probe_a3_4_8.json w8a8_qat=$O/w8a8.json}
V=$O/vgg11.mixq
REPORT=${REPORT:-$R/vgg_cifar_front.md}
export MIXQ
. "$(dirname "$0")/vgg_cifar_need.sh"
vgg_cifar_need vgg_cifar_front.sh
[ "$O/fp32.eval.txt" -nt "$V" ] || "$MIXQ" eval "$V" --data "$D" --threads 2 > "$O/fp32.eval.txt"
# whether the float model records the images it held out (the fine-tunes then validate on them)
"$MIXQ" info "$V" | grep '^held out:' > "$O/vgg11.holdout.txt" || :
[ "$O/calib_w8a8.run.txt" -nt "$O/calib_w8a8.mixq" ] ||
    "$MIXQ" run "$O/calib_w8a8.mixq" --data "$D" --threads 2 > "$O/calib_w8a8.run.txt"
. "$(dirname "$0")/par.sh"
models='' names='' tuned='' finetuned=''
for np in $POLICIES; do
    n=${np%%=*} p=${np#*=}
    [ -f "$p" ] || { echo "vgg_cifar_front.sh: $n: no policy file $p" >&2; exit 1; }
    cp "$p" "$O/front_$n.json"
    "$MIXQ" cost "$V" --hw "$O/cpu.json" --policy "$p" > "$O/front_$n.cost.txt"
    names="$names $n"
    # FINETUNE's entry for n: "n" (seed 1) or "n:S,S..." (those seeds); "all": every policy, seed 1
    seeds=''
    for f in $FINETUNE; do
        case $f in
            all|"$n") seeds=1 ;;
            "$n":*) seeds=$(echo "${f#*:}" | tr , ' ') ;;
        esac
    done
    if [ -n "$seeds" ]; then
        first=''
        for s in $seeds; do
            q=$O/qat${QAT}_front_$n
            [ "$s" = 1 ] || q=$O/qat${QAT}s${s}_front_$n
            first=${first:-$q}
            tuned="$tuned $q"
            if [ ! "$q.mixq" -nt "$p" ]; then
                # a fine-tune killed (with its session) resumes from its last epoch's checkpoint
                r=''
                [ -f "$q.ckpt" ] && r=--resume
                "$MIXQ" quantize "$V" --policy "$p" --data "$D" --finetune-epochs "$QAT" \
                    --threads "$THREADS" --teacher "$V" --seed "$s" --checkpoint "$q.ckpt" $r \
                    --out "$q.mixq" >> "$q.log" 2>&1 &
                par_started
            fi
            finetuned="$finetuned $n:$s"
        done
        models="$models $n=$first.mixq" # timed: the first seed's model
    else
        q=$O/calib_front_$n
        [ "$q.mixq" -nt "$p" ] || "$MIXQ" quantize "$V" --policy "$p" --data "$D" \
            --threads 2 --out "$q.mixq" > "$q.log" 2>&1 ||
            { echo "vgg_cifar_front.sh: calibrating $n failed (see $q.log)" >&2; exit 1; }
        models="$models $n=$q.mixq"
    fi
done
par_wait
[ "$fail" = 0 ] || { echo "vgg_cifar_front.sh: a fine-tune failed (see $O/qat${QAT}*_front_*.log)" >&2; exit 1; }
for q in $tuned; do
    [ "$q.run.txt" -nt "$q.mixq" ] || "$MIXQ" run "$q.mixq" --data "$D" --threads 2 > "$q.run.txt"
done
. "$(dirname "$0")/speed.sh"
# shellcheck disable=SC2086 # one NAME=FILE per policy
speed_pairs "$O/speed_front.txt" "$D" "$REPS" $models "w8a8=$O/calib_w8a8.mixq"
# shellcheck disable=SC2086 # one argument per policy
python3 bench/vgg_cifar_front_report.py "$O" "$QAT" "$REPORT" "$finetuned" $names
cat "$REPORT"
