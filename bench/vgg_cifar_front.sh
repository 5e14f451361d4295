#!/bin/sh
# Issue 22: points of the latency-accuracy front of CIFAR-10 vgg11 around 2x W8A8's speed. Each
# policy of POLICIES (NAME=FILE ...; default: three candidates of bench/vgg_cifar_abits.sh's
# searches, committed under bench/results/, and a hand probe) is
#   1. fine-tuned QAT (10) epochs distilled from the float model, as bench/vgg_cifar_abits.sh
#      does, when its NAME is in FINETUNE (default: every one), PAR (2) at a time, THREADS (1)
#      threads each, and run on the 10 000 test images (accuracy; predictions against fake
#      quantization); a fine-tune done is not redone;
#   2. otherwise only calibrated (its speed is the policy's: the same kernels and epilogues);
#   3. timed on the runtime against W8A8 calibrated: 1 thread, batch 1 (2 000 images) and 64
#      (10 000), all models alternating, REPS (5) rounds; the median of the rounds' ratios;
#   4. costed on this CPU's measured table (runs/vgg_cifar<EPOCHS>/cpu.json, `mixq calibrate-cpu`).
# Needs the float model and W8A8 calibrated of bench/vgg_cifar_kd.sh (runs/vgg_cifar<EPOCHS>/).
# Writes REPORT (bench/results/vgg_cifar_front.md).
#   sh bench/vgg_cifar_front.sh     (make bench-vgg-cifar-front; ~1.6 h on a 2-core machine for
#                                    two fine-tunes side by side)
set -eu
MIXQ=${MIXQ:-build/release/mixq}
EPOCHS=${EPOCHS:-20}
QAT=${QAT:-10}
PAR=${PAR:-2}
THREADS=${THREADS:-1}
REPS=${REPS:-5}
R=bench/results
POLICIES=${POLICIES:-s1_c1=$R/vgg11_cifar_ebs_abits_s1_c1.json s1_c2=$R/vgg11_cifar_ebs_abits_s1_c2.json s2_c2=$R/vgg11_cifar_ebs_abits_s2_c2.json a3_4_8=$R/vgg11_cifar_probe_a3_4_8.json}
FINETUNE=${FINETUNE:-all}
D=runs/data/cifar10
O=runs/vgg_cifar$EPOCHS
V=$O/vgg11.mixq
REPORT=${REPORT:-$R/vgg_cifar_front.md}
export MIXQ
. "$(dirname "$0")/vgg_cifar_need.sh"
vgg_cifar_need vgg_cifar_front.sh
[ "$O/fp32.eval.txt" -nt "$V" ] || "$MIXQ" eval "$V" --data "$D" --threads 2 > "$O/fp32.eval.txt"
[ "$O/calib_w8a8.run.txt" -nt "$O/calib_w8a8.mixq" ] ||
    "$MIXQ" run "$O/calib_w8a8.mixq" --data "$D" --threads 2 > "$O/calib_w8a8.run.txt"
. "$(dirname "$0")/par.sh"
models='' names='' tuned=''
for np in $POLICIES; do
    n=${np%%=*} p=${np#*=}
    [ -f "$p" ] || { echo "vgg_cifar_front.sh: $n: no policy file $p" >&2; exit 1; }
    cp "$p" "$O/front_$n.json"
    "$MIXQ" cost "$V" --hw "$O/cpu.json" --policy "$p" > "$O/front_$n.cost.txt"
    names="$names $n"
    case " $FINETUNE " in
        " all "|*" $n "*)
            q=$O/qat${QAT}_front_$n
            tuned="$tuned $q"
            if [ ! "$q.mixq" -nt "$p" ]; then
                "$MIXQ" quantize "$V" --policy "$p" --data "$D" --finetune-epochs "$QAT" \
                    --threads "$THREADS" --teacher "$V" --out "$q.mixq" > "$q.log" 2>&1 &
                par_started
            fi
            models="$models $n=$q.mixq" ;;
        *)
            q=$O/calib_front_$n
            [ "$q.mixq" -nt "$p" ] || "$MIXQ" quantize "$V" --policy "$p" --data "$D" \
                --threads 2 --out "$q.mixq" > "$q.log" 2>&1 ||
                { echo "vgg_cifar_front.sh: calibrating $n failed (see $q.log)" >&2; exit 1; }
            models="$models $n=$q.mixq" ;;
    esac
done
par_wait
[ "$fail" = 0 ] || { echo "vgg_cifar_front.sh: a fine-tune failed (see $O/qat${QAT}_front_*.log)" >&2; exit 1; }
for q in $tuned; do
    [ "$q.run.txt" -nt "$q.mixq" ] || "$MIXQ" run "$q.mixq" --data "$D" --threads 2 > "$q.run.txt"
done
. "$(dirname "$0")/speed.sh"
# shellcheck disable=SC2086 # one NAME=FILE per policy
speed_pairs "$O/speed_front.txt" "$D" "$REPS" $models "w8a8=$O/calib_w8a8.mixq"
# shellcheck disable=SC2086 # one argument per policy
python3 bench/vgg_cifar_front_report.py "$O" "$QAT" "$REPORT" $names
cat "$REPORT"
