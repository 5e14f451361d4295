#!/bin/sh
# Issue 22: EBS on CIFAR-10 vgg11 with 1-bit weights allowed and activations of 2 bits or more
# (--a-bit-set), distilled fine-tunes, against W8A8 on the int8 runtime.
#   1. the float model and W8A8 calibrated of bench/vgg_cifar_kd.sh (vgg11 trained EPOCHS (20)
#      epochs, runs/vgg_cifar<EPOCHS>/: that script makes them);
#   2. this CPU's measured table for its layer shapes (mixq calibrate-cpu, batch 1, 1 thread);
#   3. EBS on --hw cpu, budget latency=BUDGET (0.5), for each seed of SEEDS ("1 2"): weights from
#      1,2,3,4,5,6,8, activations from 2,3,4,5,6,8; per candidate a 2 048-image fine-tune, both
#      fine-tunes distilled from the float model (--distill 0.5); 1 thread per run, PAR (2) at a
#      time -> $O/abits_s<seed>/ (a finished run is kept, a started one resumed);
#   4. each distinct policy the runs picked (CANDIDATES=all: every candidate they scored, the
#      argmax and the budget-filled one; or names, "s1_c1 s1_c2") fine-tuned QAT (10) epochs,
#      distilled (mixq quantize --teacher), THREADS (2) threads -> $O/qat<QAT>_abits_s<seed>_c<k>.mixq (one an earlier
#      one equals gets a .same note instead), and run on the 10 000 test images;
#   5. speed: each fine-tuned model against W8A8 calibrated on the runtime, 1 thread, batch 1
#      and 64, alternating, REPS (5) rounds, the median of the rounds' ratios -> REPORT
#      (bench/results/vgg_cifar_abits.md).
#   sh bench/vgg_cifar_abits.sh     (make bench-vgg-cifar-abits; ~1.2 h on a 2-core machine)
set -eu
MIXQ=${MIXQ:-build/release/mixq}
EPOCHS=${EPOCHS:-20}
SEEDS=${SEEDS:-1 2}
BUDGET=${BUDGET:-0.5}
QAT=${QAT:-10}
PAR=${PAR:-2}
THREADS=${THREADS:-2}
REPS=${REPS:-5}
CANDIDATES=${CANDIDATES:-best}
D=runs/data/cifar10
O=runs/vgg_cifar$EPOCHS
V=$O/vgg11.mixq
R=${REPORT:-bench/results/vgg_cifar_abits.md}
export MIXQ
. "$(dirname "$0")/vgg_cifar_need.sh"
vgg_cifar_need vgg_cifar_abits.sh
. "$(dirname "$0")/par.sh"
for s in $SEEDS; do
    d=$O/abits_s$s
    [ -f "$d/summary.json" ] && continue
    r=''
    [ -f "$d/config.json" ] && r=--resume
    # shellcheck disable=SC2086 # r is a flag or nothing
    MIXQ_CPU_TABLE="$O/cpu.json" "$MIXQ" search "$V" --data "$D" --agent ebs --hw cpu \
        --budget "latency=$BUDGET" --episodes 1 --seed "$s" --finetune-images 2048 --final-epochs 0 \
        --threads 1 --bits 1..8 --bit-set 1,2,3,4,5,6,8 --a-bit-set 2,3,4,5,6,8 --distill 0.5 \
        --out "$d" $r > "$d.log" 2>&1 &
    par_started
done
par_wait
[ "$fail" = 0 ] || { echo "vgg_cifar_abits.sh: a search failed (see $O/abits_s*.log)" >&2; exit 1; }
# the candidates each search scored (its best and the budget-filled one) as policy files
# $O/abits_s<seed>_c<k>.json; CANDIDATES=best (default): the search's pick, all: every one, or
# names ("s1_c1 s1_c2")
todo='' seen='' models=''
for s in $SEEDS; do
    for c in $(python3 bench/vgg_cifar_abits_report.py --candidates "$O/abits_s$s" "$O/abits_s${s}_c"); do
        n=s${s}_c${c%%:*}
        p=$O/abits_$n.json q=$O/qat${QAT}_abits_$n
        # one equal to an earlier candidate gets a .same note (its fine-tune is that one's)
        same=''
        for f in $seen; do cmp -s "$O/abits_$f.json" "$p" && same=$f && break; done
        if [ -n "$same" ]; then
            echo "the same policy as $same" > "$q.same"
            continue
        fi
        rm -f "$q.same"
        seen="$seen $n"
        case " $CANDIDATES " in
            " all "|*" $n "*) todo="$todo $n" ;;
            " best ") if [ "${c#*:}" = best ]; then todo="$todo $n"; fi ;;
        esac
    done
done
# each distinct policy of todo fine-tuned, THREADS (2) threads each, then run on the test images
for n in $todo; do
    p=$O/abits_$n.json q=$O/qat${QAT}_abits_$n
    if [ ! "$q.mixq" -nt "$p" ]; then
        "$MIXQ" quantize "$V" --policy "$p" --data "$D" --finetune-epochs "$QAT" --threads "$THREADS" \
            --teacher "$V" --out "$q.mixq" > "$q.log" 2>&1 ||
            { echo "vgg_cifar_abits.sh: a fine-tune failed (see $q.log)" >&2; exit 1; }
    fi
    [ "$q.run.txt" -nt "$q.mixq" ] || "$MIXQ" run "$q.mixq" --data "$D" --threads 2 > "$q.run.txt"
    echo "$q: $(grep '^accuracy' "$q.run.txt" | head -n 1)"
    models="$models $n=$q.mixq"
done
[ "$O/calib_w8a8.run.txt" -nt "$O/calib_w8a8.mixq" ] ||
    "$MIXQ" run "$O/calib_w8a8.mixq" --data "$D" --threads 2 > "$O/calib_w8a8.run.txt"
. "$(dirname "$0")/speed.sh"
# shellcheck disable=SC2086 # one NAME=FILE per seed
speed_pairs "$O/speed_abits.txt" "$D" "$REPS" $models "w8a8=$O/calib_w8a8.mixq"
# shellcheck disable=SC2086 # one argument per seed
python3 bench/vgg_cifar_abits_report.py "$O" "$QAT" "$BUDGET" "$THREADS" "$R" $SEEDS
cat "$R"
