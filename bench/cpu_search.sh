#!/bin/sh
# Hardware in the loop on this CPU (issues 6, 18): calibrate the model's layer shapes (mixq
# calibrate-cpu), let an agent (HAQ by default) search against that measured latency (--hw cpu)
# at a fraction of uniform W8A8, then time the searched model end to end on the runtime against
# the same model quantized W8A8, batch 1 and batch 64, one thread, alternating, median of REPS
# runs each.
#   sh bench/cpu_search.sh MODEL [BUDGET] [EPISODES]       (results in $OUT, default runs/cpu_search)
#   AGENT=ebs EXTRA="--bit-set 1,2,3,4,5,6,8 --final-epochs 2" sh bench/cpu_search.sh ...
#                                                           (another agent, more mixq search flags;
#                                                           its run goes to $OUT/$AGENT)
#   SKIP_SEARCH=1 sh bench/cpu_search.sh ...                (only re-time the earlier run's models;
#                                                           RUN=dir times that run directory's
#                                                           best.mixq instead of $OUT/$AGENT's)
#   DATA=DIR sh bench/cpu_search.sh ...                    (another dataset than fashion-mnist, e.g.
#                                                           runs/data/cifar10 for a 3x32x32 model)
# Prints the table's cost ratio of the searched policy, its measured ratio and both accuracies.
# Time the runs on a quiet machine: the ratio is all that is compared.
set -eu
M=${1:-runs/vgg/vgg11.mixq}
B=${2:-0.6}
EP=${3:-40}
REPS=${REPS:-5}
MIXQ=${MIXQ:-build/release/mixq}
OUT=${OUT:-runs/cpu_search}
AGENT=${AGENT:-haq}
DATA=${DATA:-fashion-mnist}
R=${RUN:-$OUT/$AGENT}
mkdir -p "$OUT"
T="$OUT/cpu.json"
export MIXQ_CPU_TABLE="$T"
if [ "${SKIP_SEARCH:-0}" = 1 ]; then # re-time an earlier run
    [ -f "$R/summary.json" ] || { echo "cpu_search.sh: $R/summary.json not found (no finished run to time)" >&2; exit 1; }
    [ -f "$T" ] || { echo "cpu_search.sh: $T not found (the run's cpu table)" >&2; exit 1; }
    start=0 end=$(python3 -c "import json; print(round(json.load(open('$R/summary.json'))['search_s']))")
else
    "$MIXQ" calibrate-cpu --model "$M" --out "$T" --threads 1
    rm -rf "$R"
    start=$(date +%s)
    # shellcheck disable=SC2086 # EXTRA is a list of flags
    "$MIXQ" search "$M" --data "$DATA" --agent "$AGENT" --hw cpu --budget "latency=$B" --bits 1..8 \
        --episodes "$EP" --warmup "$((EP / 3))" --finetune-images 1024 --final-epochs 1 --seed 1 ${EXTRA:-} \
        --out "$R" > "$OUT/search_$AGENT.log" 2>&1
    end=$(date +%s)
    tail -n 25 "$OUT/search_$AGENT.log"
fi
# the W8A8 reference and its accuracy, made once per model (several runs timed against one OUT
# share them: bench/ebs_accept.sh STEP=4)
W="$OUT/w8a8.mixq"
if [ ! "$W" -nt "$M" ]; then
    echo '{"mixq_policy": 1, "default": {"w_bits": 8, "a_bits": 8}}' > "$OUT/w8a8.json"
    "$MIXQ" quantize "$M" --policy "$OUT/w8a8.json" --data "$DATA" --out "$W" --quiet
fi
[ "$OUT/w8a8.run.txt" -nt "$W" ] ||
    "$MIXQ" run "$W" --data "$DATA" --threads 1 --layers | tail -n 16 > "$OUT/w8a8.run.txt"
"$MIXQ" cost "$R/best.mixq" --hw cpu | tail -n 3
# accuracy: runtime vs fake-quantized on every test image
echo "== $R/best.mixq"
"$MIXQ" run "$R/best.mixq" --data "$DATA" --threads 1 --layers | tail -n 16
echo "== $W"
cat "$OUT/w8a8.run.txt"
# speed: alternate the two models, REPS times per batch size
. "$(dirname "$0")/speed.sh"
speed_pairs "$OUT/speed.txt" "$DATA" "$REPS" "searched=$R/best.mixq" "w8a8=$W"
python3 - "$OUT" "$B" "$((end - start))" "$R" "$AGENT" <<'EOF'
import json, statistics, sys
out, budget, wall, run, agent = sys.argv[1], float(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5]
rows = [l.split() for l in open(out + "/speed.txt") if l.strip()]
s = json.load(open(run + "/summary.json"))
print("%s on --hw cpu, budget latency=%.2f x W8A8: table latency ratio %.3f, %d candidates in %d s"
      % (agent, budget, s["latency_ratio"], s["candidates_scored"], wall))
print("test accuracy after the final fine-tune: %.2f%%" % s["final_test_accuracy"])
for b in ("1", "64"):
    h = statistics.median(float(r[2]) for r in rows if r[0] == b and r[1] == "searched")
    w = statistics.median(float(r[2]) for r in rows if r[0] == b and r[1] == "w8a8")
    print("batch %-3s searched %.1f img/s, W8A8 %.1f img/s: measured latency ratio %.3f, speed-up %.2fx (%s the budget)"
          % (b, h, w, w / h, h / w, "fits" if w / h <= budget else "OVER"))
EOF
