#!/bin/sh
# HAQ vs random vs uniform over several seeds on one (model, target, budget), with a short
# per-candidate fine-tune (2048 images) and a 1-epoch final QAT; the report in $OUT/report.md:
#   sh bench/search_seeds.sh MODEL HW BUDGET [SEEDS] [EPISODES]    (OUT=runs/seeds by default)
# A thin wrapper: bench/agents.sh runs it (and takes more agents, budgets and flags).
set -eu
exec sh "$(dirname "$0")/agents.sh" --model "${1:-runs/accuracy/lenet5.mixq}" --hw "${2:-bismo_edge}" \
    --budget "${3:-latency=0.75}" --seeds "${4:-1 2 3}" --episodes "${5:-100}" \
    --agents "haq random uniform" --out "${OUT:-runs/seeds}"
