#!/bin/sh
# Which of HAQ's exploration fixes matters (issue: HAQ stopped exploring in `make demo`).
# The demo's search (lenet5 trained as the demo trains it, bismo_edge, latency=0.75, 40 episodes,
# 15 warm-up, calibration-only scoring) with each fix alone, all of them, and none (HAQ's own
# algorithm), over several seeds. Reports distinct candidates among the episodes, cache hits,
# the best validation accuracy (scoring subset), the best policy's test accuracy (calibrated, no
# fine-tune), and the search's wall time. Writes bench/results/haq_exploration.md.
#   sh bench/haq_exploration.sh [SEEDS] [EPISODES]      (defaults "1 2 3", 40)
#   REPORT_ONLY=1 sh bench/haq_exploration.sh ...       the report from the runs already there
set -eu
cd "$(dirname "$0")/.."
MIXQ=${MIXQ:-build/release/mixq}
SEEDS=${1:-"1 2 3"}
EP=${2:-40}
OUT=${OUT:-runs/haq_exploration}
RES=${RES:-bench/results/haq_exploration.md}
mkdir -p "$OUT"
M="$OUT/lenet5.mixq"
[ -f "$M" ] || "$MIXQ" train --model lenet5 --data fashion-mnist --epochs 5 --lr 0.05 --no-augment --out "$M" >/dev/null
# name|--rl settings (empty: the defaults)
VARIANTS="haq-original|sigma_min=0,penalty=0,redraw=0,store=pre
sigma_min-only|penalty=0,redraw=0,store=pre
penalty-only|sigma_min=0,redraw=0,store=pre
store_post-only|sigma_min=0,penalty=0,redraw=0,store=post
redraw-only|sigma_min=0,penalty=0,store=pre
no-redraw|redraw=0
all-defaults|
random|"
rows=$(mktemp)
# one row of the table from a finished run directory
row() {
    python3 -c 'import json, sys
d, name, seed = sys.argv[1:]
s = json.load(open(d + "/summary.json"))
print("|".join([name, seed, str(s["distinct_candidates"]), str(s["cache_hits"]), "%.2f" % s["best_val_accuracy"],
                "%.2f" % s["final_test_accuracy"], "%.3f" % s["latency_ratio"], "%.1f" % s["search_s"]]))' "$@" >>"$rows"
}
echo "$VARIANTS" | while IFS='|' read -r name rl; do
    for seed in $SEEDS; do
        d="$OUT/${name}_s$seed"
        if [ -z "${REPORT_ONLY:-}" ]; then
            rm -rf "$d"
            agent=haq
            [ "$name" = random ] && agent=random
            set -- --agent "$agent"
            [ -n "$rl" ] && set -- "$@" --rl "$rl"
            "$MIXQ" search "$M" --data fashion-mnist "$@" --hw bismo_edge --budget latency=0.75 --episodes "$EP" \
                --warmup 15 --final-epochs 0 --seed "$seed" --out "$d" --quiet >"$d.log" 2>&1 || { echo "FAILED $d"; continue; }
        fi
        row "$d" "$name" "$seed"
    done
done
cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)
python3 - "$rows" "$EP" "$SEEDS" "$cpu" >"$RES" <<'EOF'
import sys, statistics as st
rows = [l.strip().split("|") for l in open(sys.argv[1]) if l.strip()]
ep, seeds, cpu = sys.argv[2], sys.argv[3], sys.argv[4]
print("# HAQ exploration: which fix matters\n")
print("`sh bench/haq_exploration.sh \"%s\" %s` on %s: lenet5 (5 epochs, as `make demo` trains it), "
      "bismo_edge, latency=0.75, %s episodes, 15 warm-up, calibration-only scoring, no final fine-tune "
      "(test accuracy is the best policy calibrated). Seeds: %s.\n" % (seeds, ep, cpu, ep, seeds))
print("| variant | distinct / %s (mean, per seed) | cache hits | best val %% (mean ± sd) | test %% (mean ± sd) | latency ratio | search s |" % ep)
print("|---|---|---|---|---|---|---|")
order = []
for r in rows:
    if r[0] not in order: order.append(r[0])
def ms(v):
    return "%.2f ± %.2f" % (st.mean(v), st.stdev(v)) if len(v) > 1 else "%.2f" % v[0]
for name in order:
    rs = [r for r in rows if r[0] == name]
    dist = [int(r[2]) for r in rs]; hits = [int(r[3]) for r in rs]
    print("| %s | %.1f (%s) | %.1f | %s | %s | %.3f | %.0f |" % (name, st.mean(dist), " ".join(map(str, dist)),
          st.mean(hits), ms([float(r[4]) for r in rs]), ms([float(r[5]) for r in rs]),
          st.mean([float(r[6]) for r in rs]), st.mean([float(r[7]) for r in rs])))
EOF
rm -f "$rows"
cat "$RES"
