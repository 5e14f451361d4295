#!/bin/sh
# EBS's acceptance (issue 18) on resnet20 / Fashion-MNIST, with the paired harness (bench/agents.sh:
# same model, target, budget, seeds and flags for every agent):
#   1. at the BitOps of uniform W2A2, W3A3 and W4A4 (first and last layers at 8/8, the cost from
#      `mixq cost`), ebs against uniform (the best uniform (w, a) pair within the budget), with
#      the same final fine-tune; the claim: ebs's test accuracy beats uniform's at each budget,
#      by >= 0.5 point at W2A2's and W3A3's;
#   2. the search cost: each ebs run's search_s against its final_s (one QAT epoch, the search's
#      own length: --ebs epochs=1 and --final-epochs 1), from summary.json;
#   1b. the same at W2A2's and W3A3's BitOps with 1-bit candidates (--bits 1..8, ebs widths
#      1,2,3,4,5,6,8) into runs/ebs/w<b>a<b>_b1 (at W2A2's, widths >= 2 leave one policy: W2A2);
#   3. HAQ's harness settings (bismo_edge, latency 0.2): ebs beside the haq and random runs of
#      runs/autoq_res (bench/autoq_accept.sh STEP=3), same seeds;
#   4. hardware in the loop: vgg11 (runs/vgg/vgg11.mixq) on this CPU's measured table (--hw cpu,
#      mixq calibrate-cpu), budgets latency=0.6 (seeds) and 0.5 (seed 1), widths 1..8, 2 final
#      QAT epochs; then every run's best.mixq timed against W8A8 on the runtime, batch 1 and 64,
#      1 thread, median of 5 alternating runs (bench/cpu_search.sh SKIP_SEARCH=1; time it on a
#      quiet machine: TIME_ONLY=1 re-times without searching); then the budget-0.5 policy
#      (bench/results/vgg11_ebs_cpu_0_5.json, what seeds 1-3 found) on the 3x32x32 vgg11
#      against W8A8 by bench_network (speed only; the 3x32x32 model searched on CIFAR-10 itself:
#      bench/vgg_cifar.sh) -> bench/results/ebs_vgg32.md.
# Runs already complete are skipped, started ones resumed.
#   sh bench/ebs_accept.sh     (MIXQ=build/release/mixq, SEEDS="1 2 3", WIDTHS="2 3 4",
#                               STEP=all|1|1b|3|4)
set -eu
MIXQ=${MIXQ:-build/release/mixq}
SEEDS=${SEEDS:-1 2 3}
WIDTHS=${WIDTHS:-2 3 4}
STEP=${STEP:-all}
export MIXQ
run() { [ "$STEP" = all ] || [ "$STEP" = "$1" ]; }
M=runs/accuracy/resnet20.mixq
[ -f "$M" ] || sh bench/accuracy.sh resnet20
X="--threads 1"
mkdir -p runs/ebs
if run 1; then
    for b in $WIDTHS; do
        P=runs/ebs/uniform_w${b}a${b}.json
        printf '{"mixq_policy": 1, "default": {"w_bits": %d, "a_bits": %d},\n "layers": {"conv1": {"w_bits": 8, "a_bits": 8}, "fc": {"w_bits": 8, "a_bits": 8}}}\n' \
            "$b" "$b" > "$P"
        # the exact ratio, rounded up at 4 decimals (uniform W<b>A<b> itself fits)
        R=$("$MIXQ" cost "$M" --hw bitops --policy "$P" |
            awk '/^total/ {t = $2} /W8A8:/ {sub(/\)/, "", $NF); w = $NF} END {if (t && w) printf "%.4f", int(t / w * 10000 + 0.999999) / 10000}')
        [ -n "$R" ] || { echo "ebs_accept.sh: no BitOps ratio for W${b}A${b} from mixq cost" >&2; exit 1; }
        echo "W${b}A${b} (ends 8/8): BitOps ratio $R"
        sh bench/agents.sh --model "$M" --hw bitops --budget "bitops=$R" --agents 'ebs uniform' --seeds "$SEEDS" \
            --episodes 1 --extra "$X" --out "runs/ebs/w${b}a${b}"
    done
fi
if run 1b; then
    for b in 2 3; do
        R=$(sed -n "s/.*--budget bitops=\([0-9.]*\) .*/\1/p" "runs/ebs/w${b}a${b}/commands.txt" 2>/dev/null | head -n 1)
        [ -n "$R" ] || { echo "ebs_accept.sh: run STEP=1 first (the W${b}A${b} budget is read from runs/ebs/w${b}a${b}/commands.txt)" >&2; exit 1; }
        sh bench/agents.sh --model "$M" --hw bitops --budget "bitops=$R" --agents 'ebs uniform' --seeds "$SEEDS" \
            --episodes 1 --extra "$X --bits 1..8 --bit-set 1,2,3,4,5,6,8" --out "runs/ebs/w${b}a${b}_b1"
    done
fi
if run 3; then
    sh bench/agents.sh --model "$M" --hw bismo_edge --budget latency=0.2 --agents 'ebs' --seeds "$SEEDS" \
        --episodes 40 --extra "--warmup 15 $X" --out runs/autoq_res
fi
if run 4; then
    V=runs/vgg/vgg11.mixq
    [ -f "$V" ] || { echo "ebs_accept.sh: $V not found (make bench-zoo or: mixq train --model vgg11 --data fashion-mnist --out $V)" >&2; exit 1; }
    mkdir -p runs/ebs_vgg
    [ -f runs/ebs_vgg/cpu.json ] || "$MIXQ" calibrate-cpu --model "$V" --out runs/ebs_vgg/cpu.json --threads 1
    if [ "${TIME_ONLY:-0}" != 1 ]; then
        for B in "0.6:$SEEDS" "0.5:1"; do
            MIXQ_CPU_TABLE=runs/ebs_vgg/cpu.json sh bench/agents.sh --model "$V" --hw cpu --budget "latency=${B%%:*}" \
                --agents ebs --seeds "${B#*:}" --episodes 1 \
                --extra "$X --bits 1..8 --bit-set 1,2,3,4,5,6,8 --final-epochs 2" --out runs/ebs_vgg
        done
    fi
    for d in runs/ebs_vgg/vgg11_cpu_latency_*_ebs_s*; do
        [ -f "$d/summary.json" ] || continue
        b=$(echo "$d" | sed 's/.*latency_0_\([0-9]*\)_ebs.*/0.\1/')
        echo "== $d (budget latency=$b)"
        OUT=runs/ebs_vgg AGENT=ebs RUN="$d" SKIP_SEARCH=1 REPS=5 sh bench/cpu_search.sh "$V" "$b" 1 |
            grep -v '^features\|^layer \|^classifier'
        cp runs/ebs_vgg/speed.txt "$d/speed.txt"
    done
    B=${BUILD:-build/release}
    make -s -j2 BUILD="$B" "$B/bench/bench_network"
    [ -f "$B/runtime-cpu-vgg11.json" ] ||
        "$MIXQ" calibrate-cpu --arch vgg11 --in 3,32,32 --threads 1 --out "$B/runtime-cpu-vgg11.json"
    "$B/bench/bench_network" --models vgg11 --policy vgg11=bench/results/vgg11_ebs_cpu_0_5.json \
        --cpu-table "vgg11=$B/runtime-cpu-vgg11.json" --batches 1,64 --threads 1 --runs 5 \
        --out bench/results/ebs_vgg32.md >/dev/null
    grep '^| mixed, auto (measured' bench/results/ebs_vgg32.md
fi
