#!/bin/sh
# Hardware in the loop on this CPU (issue 6): calibrate the model's layer shapes (mixq
# calibrate-cpu), let HAQ search against that measured latency (--hw cpu) at a fraction of
# uniform W8A8, then time the searched model end to end on the runtime against the same model
# quantized W8A8, batch 1 and batch 64, one thread, alternating, median of REPS runs each.
#   sh bench/cpu_search.sh MODEL [BUDGET] [EPISODES]       (results in $OUT, default runs/cpu_search)
#   SKIP_SEARCH=1 sh bench/cpu_search.sh ...                (only re-time the earlier run's models)
# Prints the table's cost ratio of the searched policy, its measured ratio and both accuracies.
# Time the runs on a quiet machine: the ratio is all that is compared.
set -eu
M=${1:-runs/vgg/vgg11.mixq}
B=${2:-0.6}
EP=${3:-40}
REPS=${REPS:-5}
MIXQ=${MIXQ:-build/release/mixq}
OUT=${OUT:-runs/cpu_search}
mkdir -p "$OUT"
T="$OUT/cpu.json"
export MIXQ_CPU_TABLE="$T"
if [ "${SKIP_SEARCH:-0}" = 1 ]; then # re-time an earlier run
    start=0 end=$(python3 -c "import json; print(round(json.load(open('$OUT/haq/summary.json'))['search_s']))")
else
    "$MIXQ" calibrate-cpu --model "$M" --out "$T" --threads 1
    rm -rf "$OUT/haq"
    start=$(date +%s)
    "$MIXQ" search "$M" --data fashion-mnist --agent haq --hw cpu --budget "latency=$B" --bits 1..8 \
        --episodes "$EP" --warmup "$((EP / 3))" --finetune-images 1024 --final-epochs 1 --seed 1 \
        --out "$OUT/haq" > "$OUT/search.log" 2>&1
    end=$(date +%s)
fi
tail -n 25 "$OUT/search.log"
echo '{"mixq_policy": 1, "default": {"w_bits": 8, "a_bits": 8}}' > "$OUT/w8a8.json"
"$MIXQ" quantize "$M" --policy "$OUT/w8a8.json" --data fashion-mnist --out "$OUT/w8a8.mixq" --quiet
"$MIXQ" cost "$OUT/haq/best.mixq" --hw cpu | tail -n 3
# accuracy: runtime vs fake-quantized on every test image
for q in haq/best w8a8; do
    echo "== $q"
    "$MIXQ" run "$OUT/$q.mixq" --data fashion-mnist --threads 1 --layers | tail -n 16
done
# speed: alternate the two models, REPS times per batch size
: > "$OUT/speed.txt"
for b in 1 64; do
    n=$([ "$b" = 1 ] && echo 2000 || echo 10000)
    for r in $(seq "$REPS"); do
        for q in haq/best w8a8; do
            ips=$("$MIXQ" run "$OUT/$q.mixq" --data fashion-mnist --threads 1 --batch "$b" --images "$n" \
                --no-compare | sed -n 's/^throughput \([0-9.]*\) images.*/\1/p')
            echo "$b $q $ips" >> "$OUT/speed.txt"
        done
    done
done
python3 - "$OUT" "$B" "$((end - start))" <<'EOF'
import json, statistics, sys
out, budget, wall = sys.argv[1], float(sys.argv[2]), int(sys.argv[3])
rows = [l.split() for l in open(out + "/speed.txt") if l.strip()]
s = json.load(open(out + "/haq/summary.json"))
print("HAQ on --hw cpu, budget latency=%.2f x W8A8: table latency ratio %.3f, %d candidates in %d s"
      % (budget, s["latency_ratio"], s["candidates_scored"], wall))
print("test accuracy after the final fine-tune: %.2f%%" % s["final_test_accuracy"])
for b in ("1", "64"):
    h = statistics.median(float(r[2]) for r in rows if r[0] == b and r[1] == "haq/best")
    w = statistics.median(float(r[2]) for r in rows if r[0] == b and r[1] == "w8a8")
    print("batch %-3s searched %.1f img/s, W8A8 %.1f img/s: measured latency ratio %.3f (%s the budget)"
          % (b, h, w, w / h, "fits" if w / h <= budget else "OVER"))
EOF
