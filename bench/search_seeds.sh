#!/bin/sh
# HAQ vs random vs uniform over several seeds on one (model, target, budget), with a short
# per-candidate fine-tune so scores track post-fine-tune accuracy:
#   sh bench/search_seeds.sh MODEL HW BUDGET [SEEDS] [EPISODES]    (summary in runs/seeds/)
set -eu
M=${1:-runs/accuracy/lenet5.mixq}
HW=${2:-bismo_edge}
B=${3:-latency=0.75}
SEEDS=${4:-"1 2 3"}
EP=${5:-100}
MIXQ=${MIXQ:-build/release/mixq}
OUT=${OUT:-runs/seeds}
mkdir -p "$OUT"
for seed in $SEEDS; do
    for ag in haq random uniform; do
        d="$OUT/$(basename "$M" .mixq)_${HW}_$(echo "$B" | tr '=.' '__')_${ag}_s$seed"
        rm -rf "$d"
        "$MIXQ" search "$M" --data fashion-mnist --agent "$ag" --hw "$HW" --budget "$B" --episodes "$EP" \
            --warmup 20 --finetune-images 2048 --final-epochs 1 --seed "$seed" --out "$d" > "$d.log" 2>&1 || echo "FAILED $d"
        python3 -c "import json,sys; s=json.load(open(sys.argv[1]+'/summary.json')); print('%-8s seed %s: val(sub) %.2f  test %.2f  latency %.3f energy %.3f size %.3f  cand %d  %.0fs' % (sys.argv[2], sys.argv[3], s['best_val_accuracy'], s['final_test_accuracy'], s['latency_ratio'], s['energy_ratio'], s['size_ratio'], s['candidates_scored'], s['search_s']))" "$d" "$ag" "$seed" | tee -a "$OUT/summary.txt"
    done
done
