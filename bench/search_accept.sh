#!/bin/sh
# Issue-5 acceptance: HAQ vs the best fitting uniform policy vs random search (same number of
# scored candidates) on Fashion-MNIST, for each (model, target, budget) below; every run ends
# with the same final fine-tune of its best policy and reports the test accuracy.
#   sh bench/search_accept.sh [OUT_DIR]      (default runs/search)
# Needs the trained float models of bench/accuracy.sh (runs/accuracy/{lenet5,resnet20}.mixq).
set -eu
OUT=${1:-runs/search}
MIXQ=${MIXQ:-build/release/mixq}
EPISODES=${EPISODES:-60}
WARMUP=${WARMUP:-20}
FINAL=${FINAL:-1}
mkdir -p "$OUT"
SUMMARY="$OUT/summary.md"
echo "| model | target | budget | agent | candidates | search s | cand/min | latency | energy | size | val (subset) | test after fine-tune |" > "$SUMMARY"
echo "|---|---|---|---|---|---|---|---|---|---|---|---|" >> "$SUMMARY"
run() { # model hw budget agent
    m=$1 hw=$2 b=$3 ag=$4
    d="$OUT/$(basename "$m" .mixq)_${hw}_$(echo "$b" | tr '=.' '__')_$ag"
    rm -rf "$d"
    "$MIXQ" search "$m" --data fashion-mnist --agent "$ag" --hw "$hw" --budget "$b" \
        --episodes "$EPISODES" --warmup "$WARMUP" --final-epochs "$FINAL" --out "$d" \
        > "$d.log" 2> "$d.progress" || { echo "FAILED: $d (see $d.progress)"; return; }
    python3 - "$d" "$m" "$hw" "$b" "$ag" >> "$SUMMARY" <<'PY'
import json, sys
d, m, hw, b, ag = sys.argv[1:]
s = json.load(open(d + "/summary.json"))
cpm = s["candidates_scored"] * 60.0 / s["search_s"] if s["search_s"] > 0 else 0
print("| %s | %s | %s | %s | %d | %.0f | %.1f | %.3f | %.3f | %.3f | %.2f | %.2f |" % (
    m.split("/")[-1].replace(".mixq", ""), hw, b, ag, s["candidates_scored"], s["search_s"], cpm,
    s["latency_ratio"], s["energy_ratio"], s["size_ratio"], s["best_val_accuracy"], s["final_test_accuracy"]))
PY
    tail -1 "$SUMMARY"
}
for spec in ${SPECS:-"runs/accuracy/resnet20.mixq bitfusion latency=0.85" "runs/accuracy/resnet20.mixq bitfusion energy=0.85" "runs/accuracy/resnet20.mixq bismo_edge latency=0.5" "runs/accuracy/lenet5.mixq bismo_edge latency=0.75" "runs/accuracy/lenet5.mixq bismo_edge energy=0.8"}; do
    set -- $spec
    for ag in haq uniform random; do run "$1" "$2" "$3" "$ag"; done
done
cat "$SUMMARY"
