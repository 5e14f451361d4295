#!/bin/sh
# AutoQ's acceptance (issue 16) on resnet20 / Fashion-MNIST, with the paired harness
# (bench/agents.sh: same model, target, seeds, episodes and flags for every agent):
#   1. accuracy mode (--mode accuracy --max-drop 0.3, no budget) on bismo_edge: autoq against
#      haq; the claim is >= 30 % lower latency and energy than HAQ's best policy;
#   2. the same on this CPU's measured latency (--hw cpu, table from mixq calibrate-cpu);
#   3. resource mode at bismo_edge latency=0.2: autoq against haq and random;
#   4. the best per-kernel models on the CPU runtime (bench/releq.sh: predictions against fake
#      quantization, speed against W8A8).
# Runs already complete are skipped, started ones resumed.
#   sh bench/autoq_accept.sh        (MIXQ=build/release/mixq, EPISODES=60, SEEDS="1 2 3", STEP=all|1|2|3|4)
set -eu
MIXQ=${MIXQ:-build/release/mixq}
EP=${EPISODES:-60}
SEEDS=${SEEDS:-1 2 3}
STEP=${STEP:-all}
export MIXQ
run() { [ "$STEP" = all ] || [ "$STEP" = "$1" ]; }
M=runs/accuracy/resnet20.mixq
[ -f "$M" ] || sh bench/accuracy.sh resnet20
X="--warmup 15 --threads 1"
if run 1; then
    sh bench/agents.sh --model "$M" --hw bismo_edge --budget none --agents 'autoq haq' --seeds "$SEEDS" \
        --episodes "$EP" --extra "--mode accuracy --max-drop 0.3 $X" --out runs/autoq_acc
fi
if run 2; then
    mkdir -p runs/autoq_cpu
    [ -f runs/autoq_cpu/cpu.json ] || "$MIXQ" calibrate-cpu --model "$M" --out runs/autoq_cpu/cpu.json --threads 1
    MIXQ_CPU_TABLE=runs/autoq_cpu/cpu.json sh bench/agents.sh --model "$M" --hw cpu --budget none \
        --agents 'autoq haq' --seeds "$SEEDS" --episodes "$EP" --extra "--mode accuracy --max-drop 0.3 --bits 1..8 $X" \
        --out runs/autoq_cpu
fi
if run 3; then
    sh bench/agents.sh --model "$M" --hw bismo_edge --budget latency=0.2 --agents 'autoq haq random' \
        --seeds "$SEEDS" --episodes "$EP" --extra "$X" --out runs/autoq_res
fi
if run 4; then
    sh bench/releq.sh runs/autoq_acc/*_s? runs/autoq_res/*autoq_s? | tee runs/autoq_acc/runtime.md
fi
