#!/bin/sh
# HAWQ on a trained model (issue 19), on one thread by default (THREADS):
#  1. `mixq search --agent hawq` with the default Hessian settings (256 images, at most 100
#     probes), a sweep of 10 budgets on bismo_edge latency from 0.2x to 0.9x of W8A8, no
#     fine-tunes (--final-epochs 0), candidates scored on 200 validation images: the trace
#     pass's time (hessian.json), the activation errors' calibrations, every GLPK solve
#     (sweep.csv) and the whole search (summary.json);
#  2. build/release/bench/bench_hawq on that run: the Spearman rank correlation over the layers
#     between Omega_l(b) and the accuracy drop of quantizing layer l alone to b bits (the rest
#     8/8), b = 2 and 3, calibration-only scores on 1000 validation images. PAIRS=all (default)
#     scores both pairings (HAWQ-V2's weight term against w=b,a=8; the agent's Omega against
#     w=a=b), PAIRS=weights or PAIRS=both one of them (half the candidates).
# Writes bench/results/hawq_spearman.md. resnet20 on Fashion-MNIST on one core of a shared
# 2-core machine: step 1 about 6 minutes, step 2 about 6 s a candidate (1 + 88 with PAIRS=all).
#   sh bench/hawq_spearman.sh [MODEL]          (default runs/accuracy/resnet20.mixq)
set -eu
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build/release}
MODEL=${1:-runs/accuracy/resnet20.mixq}
OUT=${OUT:-runs/hawq_spearman}
RES=${RES:-bench/results/hawq_spearman.md}
THREADS=${THREADS:-1}
PAIRS=${PAIRS:-all}
[ -f "$MODEL" ] || { echo "hawq_spearman.sh: no $MODEL (sh bench/accuracy.sh resnet20 trains it)" >&2; exit 1; }
[ -x "$BUILD/bench/bench_hawq" ] || make -s "$BUILD/bench/bench_hawq"
mkdir -p "$OUT" "$(dirname "$RES")"
rm -rf "$OUT/sweep"
t0=$(date +%s)
"$BUILD/mixq" search "$MODEL" --data fashion-mnist --agent hawq --hw bismo_edge --budget latency=0.9 \
    --sweep 10 --sweep-from 0.2 --final-epochs 0 --eval-images 200 --threads "$THREADS" --quiet \
    --out "$OUT/sweep" > "$OUT/sweep.log"
t1=$(date +%s)
tmp=$(mktemp)
MIXQ_THREADS=$THREADS "$BUILD/bench/bench_hawq" "$MODEL" "$OUT/sweep" --bits 2,3 --pairs "$PAIRS" --eval 1000 > "$tmp"
t2=$(date +%s)
python3 - "$OUT/sweep" "$tmp" "$RES" "$MODEL" "$THREADS" $((t1 - t0)) $((t2 - t1)) "$PAIRS" <<'EOF'
import csv, json, sys
run, spear, res, model, threads, s1, s2, pairs = sys.argv[1:9]
h = json.load(open(run + "/hessian.json"))
summ = json.load(open(run + "/summary.json"))
rows = list(csv.DictReader(open(run + "/sweep.csv")))
ilp = sum(float(r["ilp_s"]) for r in rows)
with open(res, "w") as f:
    f.write("# HAWQ on %s: timings and sensitivity against damage (issue 19)\n\n" % model)
    f.write("`sh bench/hawq_spearman.sh %s` (THREADS=%s, PAIRS=%s), one core of a 2-core machine shared with "
            "other jobs.\n\n" % (model, threads, pairs))
    f.write("## Timings\n\n")
    f.write("Search: `--agent hawq --hw bismo_edge --budget latency=0.9 --sweep 10 --sweep-from 0.2 "
            "--final-epochs 0 --eval-images 200 --threads %s` (default Hessian settings: %d images in batches "
            "of %d, at most %d probes).\n\n" % (threads, h["settings"]["images"], h["settings"]["batch"],
                                                h["settings"]["max_probes"]))
    f.write("| part | seconds |\n|---|---|\n")
    f.write("| trace pass (%d probes%s, eps %.3g) | %.1f |\n" % (h["probes"], ", converged" if h["converged"] else "",
                                                               h["eps"], h["seconds"]))
    f.write("| activation errors (calibrations at every width) | %.1f |\n" % h.get("act_seconds", float("nan")))
    f.write("| 10 GLPK solves (sum) | %.3f |\n" % ilp)
    f.write("| search in all (traces, 10 solves, 10 candidates scored on 200 images) | %.1f |\n" % summ["search_s"])
    f.write("| the command, with the final calibration and test scoring | %s |\n\n" % s1)
    f.write("| budget (latency x W8A8) | sum Omega | binaries | solve s | val acc (200) | latency | energy | size |\n")
    f.write("|---|---|---|---|---|---|---|---|\n")
    for r in rows:
        f.write("| %.3f | %.4g | %s | %.4f | %.2f | %.3f | %.3f | %.3f |\n" % (
            float(r["budget_ratio"]), float(r["omega"]), r["binaries"], float(r["ilp_s"]), float(r["acc"]),
            float(r["latency_ratio"]), float(r["energy_ratio"]), float(r["size_ratio"])))
    f.write("\n## Sensitivity against measured damage (%s s)\n\n" % s2)
    f.write(open(spear).read().split("\n", 2)[2])
EOF
rm -f "$tmp"
echo "wrote $RES"
