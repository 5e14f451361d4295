#!/bin/sh
# Candidate scoring over MPI (issue 21), measured on this machine; writes bench/results/mpi.md.
#   1. the per-message cost: bench/mpi_pingpong.c (mpicc), round trips of mixq's task sizes;
#   2. a 40-candidate random search on lenet5 with 1 process and with 2 ranks at the same
#      --parallel (default 2), each rank --threads 1: wall times, and the files compared.
# Usage: sh bench/mpi.sh   (env: MODEL [runs/accuracy/lenet5.mixq], EPISODES [40], PARALLEL [2],
#   FT [2048: --finetune-images], OUT [runs/mpi], RESULT [bench/results/mpi.md])
set -eu
cd "$(dirname "$0")/.."
MIXQ=${MIXQ:-build/release/mixq}
MODEL=${MODEL:-runs/accuracy/lenet5.mixq}
EPISODES=${EPISODES:-40}
PARALLEL=${PARALLEL:-2}
FT=${FT:-2048}
OUT=${OUT:-runs/mpi}
RESULT=${RESULT:-bench/results/mpi.md}
[ -f "$MODEL" ] || { echo "bench/mpi.sh: $MODEL missing (sh bench/accuracy.sh lenet5 trains it)" >&2; exit 2; }
command -v mpirun >/dev/null || { echo "bench/mpi.sh: mpirun missing (scripts/deps.sh)" >&2; exit 2; }
MPIRUN="mpirun --oversubscribe"
[ "$(id -u)" = 0 ] && MPIRUN="$MPIRUN --allow-run-as-root"
mkdir -p build/bench "$OUT"
mpicc -O2 -std=c11 -o build/bench/mpi_pingpong bench/mpi_pingpong.c
pp=$($MPIRUN -np 2 build/bench/mpi_pingpong 5000)
ARGS="$MODEL --data fashion-mnist --agent random --hw bismo_edge --budget latency=0.8 --episodes $EPISODES
      --finetune-images $FT --final-epochs 0 --threads 1 --parallel $PARALLEL --report-every 0 --quiet"
rm -rf "$OUT/r1" "$OUT/r2"
load0=$(cut -d' ' -f1 /proc/loadavg)
t0=$(date +%s.%N); $MIXQ search $ARGS --out "$OUT/r1" > "$OUT/r1.log" 2>&1; t1=$(date +%s.%N)
$MPIRUN -np 2 $MIXQ search $ARGS --out "$OUT/r2" > "$OUT/r2.log" 2>&1; t2=$(date +%s.%N)
load1=$(cut -d' ' -f1 /proc/loadavg)
same=yes
for f in evals.jsonl best_policy.json pareto.csv; do cmp -s "$OUT/r1/$f" "$OUT/r2/$f" || same="no ($f differs)"; done
calc() { awk "BEGIN { printf \"%.${2:-1}f\", $1 }"; }
w1=$(calc "$t1 - $t0"); w2=$(calc "$t2 - $t1")
s1=$(sed -n 's/.*"search_s": \([0-9.]*\).*/\1/p' "$OUT/r1/summary.json")
s2=$(sed -n 's/.*"search_s": \([0-9.]*\).*/\1/p' "$OUT/r2/summary.json")
cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)
{
    echo "# Candidate scoring over MPI (issue 21)"
    echo
    echo "\`sh bench/mpi.sh\` on $(date -u '+%Y-%m-%d %H:%M UTC'), mixq $(git rev-parse --short HEAD 2>/dev/null || echo '?'),"
    echo "$cpu, $(nproc) logical CPUs, $($MPIRUN --version | head -1); 1-min load $load0 before, $load1 after."
    echo
    echo "## Per-message cost (shared memory, one node)"
    echo
    echo '```'
    echo "$pp"
    echo '```'
    echo
    echo "## $EPISODES-candidate random search on $(basename "$MODEL"), --parallel $PARALLEL, --threads 1 per rank"
    echo
    echo "\`mixq search $(echo $ARGS)\`"
    echo
    echo "| ranks | wall s (command) | search s (summary.json) | per candidate s |"
    echo "|---:|---:|---:|---:|"
    echo "| 1 | $w1 | $s1 | $(calc "$s1 / $EPISODES" 3) |"
    echo "| 2 | $w2 | $s2 | $(calc "$s2 / $EPISODES" 3) |"
    echo
    echo "Speed-up of the search: $(calc "$s1 / $s2" 2)x (wall, startup included: $(calc "$w1 / $w2" 2)x)."
    echo "evals.jsonl, best_policy.json and pareto.csv identical: $same."
} > "$RESULT"
cat "$RESULT"
