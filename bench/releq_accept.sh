#!/bin/sh
# ReLeQ's acceptance (issue 17), every run as committed in bench/results/releq.md:
#   1. paired comparisons (bench/agents.sh) of releq against haq and random at an equal number of
#      proposals: lenet5 at size=0.4 (100 episodes), resnet20 at bismo_edge latency=0.5 (40
#      episodes, the budget and settings of bench/results/agents_r20_05.md), seeds 1 2 3;
#   2. ReLeQ's own setting, no budget (the shaped reward alone): lenet5 (300 episodes) and
#      resnet20 (40) seeds 1 2 3, vgg11 (30) seed 1;
#   3. bench/releq.sh over every releq run: accuracy against FP32, weight bits per layer, the
#      speed-up over 8-bit weights on the hardware models and measured on this CPU's runtime.
# Models: runs/accuracy/{lenet5,resnet20}.mixq (bench/accuracy.sh) and runs/vgg/vgg11.mixq
# (trained here if missing: mixq train --model vgg11 --epochs 4 --lr 0.05, about 40 min on one
# thread). Runs already complete are skipped, started ones resumed. Takes hours on 2 cores;
# STEP=3 only re-measures (on a quiet machine: the speed ratios are what is compared).
#   sh bench/releq_accept.sh          (MIXQ=build/release/mixq, STEP=all|1|2|3, REPS=3)
set -eu
MIXQ=${MIXQ:-build/release/mixq}
STEP=${STEP:-all}
export MIXQ
run() { [ "$STEP" = all ] || [ "$STEP" = "$1" ]; }
[ -f runs/accuracy/lenet5.mixq ] || sh bench/accuracy.sh lenet5
[ -f runs/accuracy/resnet20.mixq ] || sh bench/accuracy.sh resnet20
if [ ! -f runs/vgg/vgg11.mixq ]; then
    mkdir -p runs/vgg
    "$MIXQ" train --model vgg11 --data fashion-mnist --out runs/vgg/vgg11.mixq --epochs 4 --lr 0.05 --threads 1
fi
if run 1; then
    sh bench/agents.sh --preset lenet5 --budget size=0.4 --agents 'releq haq random' --seeds '1 2 3' \
        --episodes 100 --extra '--threads 1' --out runs/agents_l5_s04
    sh bench/agents.sh --preset resnet20 --budget latency=0.5 --agents 'releq haq random' --seeds '1 2 3' \
        --episodes 40 --extra '--warmup 15 --threads 1' --out runs/agents_r20_05
fi
own() { # model seed episodes
    d=runs/releq_own/$(basename "$1" .mixq)_s$2
    mkdir -p runs/releq_own
    [ -f "$d/summary.json" ] && return 0
    r=""
    [ -f "$d/config.json" ] && r=--resume
    "$MIXQ" search "$1" --data fashion-mnist --agent releq --hw bismo_edge --episodes "$3" --seed "$2" \
        --finetune-images 2048 --final-epochs 1 --threads 1 --out "$d" $r > "$d.log" 2>&1
}
if run 2; then
    for s in 1 2 3; do own runs/accuracy/lenet5.mixq "$s" 300; done
    for s in 1 2 3; do own runs/accuracy/resnet20.mixq "$s" 40; done
    own runs/vgg/vgg11.mixq 1 30
fi
if run 3; then
    sh bench/releq.sh runs/agents_l5_s04/*_releq_s? runs/agents_r20_05/*_releq_s? runs/releq_own/*_s? \
        | tee runs/releq_own/releq.md
fi
