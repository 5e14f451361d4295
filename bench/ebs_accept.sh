#!/bin/sh
# EBS's acceptance (issue 18) on resnet20 / Fashion-MNIST, with the paired harness (bench/agents.sh:
# same model, target, budget, seeds and flags for every agent):
#   1. at the BitOps of uniform W2A2, W3A3 and W4A4 (first and last layers at 8/8, the cost from
#      `mixq cost`), ebs against uniform (the best uniform (w, a) pair within the budget), with
#      the same final fine-tune; the claim: ebs's test accuracy beats uniform's at each budget,
#      by >= 0.5 point at W2A2's and W3A3's;
#   2. the search cost: each ebs run's search_s against its final_s (one QAT epoch, the search's
#      own length: --ebs epochs=1 and --final-epochs 1), from summary.json;
#   3. HAQ's harness settings (bismo_edge, latency 0.2): ebs beside the haq and random runs of
#      runs/autoq_res (bench/autoq_accept.sh STEP=3), same seeds.
# Runs already complete are skipped, started ones resumed.
#   sh bench/ebs_accept.sh     (MIXQ=build/release/mixq, SEEDS="1 2 3", WIDTHS="2 3 4", STEP=all|1|3)
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
if run 3; then
    sh bench/agents.sh --model "$M" --hw bismo_edge --budget latency=0.2 --agents 'ebs' --seeds "$SEEDS" \
        --episodes 40 --extra "--warmup 15 $X" --out runs/autoq_res
fi
