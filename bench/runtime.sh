#!/bin/sh
# Runtime benchmarks (`make bench-runtime`): mixq's CPU kernels per layer and whole networks
# against oneDNN int8 / fp32, OpenBLAS and PyTorch, in one invocation.
#   1. bench_layers: every distinct conv GEMM shape of resnet20 (1x28x28), vgg11 (3x32x32) and
#      7 reference layers (bench/bench_layers.c), batch 1 and 64, 1 thread, PASSES (3) passes
#      over all shapes, each figure the median over them (one pass's medians moved by up to 10 %
#      on a shared machine) -> bench/results/runtime_layers.md
#   2. mixq calibrate-cpu: measured per-layer tables for both models (batch 1, 1 thread), kept
#      in $BUILD/ (runtime-cpu-ARCH.json)
#   3. bench/torch_infer.py: PyTorch fp32 peer (skipped with a note if python3 has no torch)
#   4. bench_network: images/s at batch 1 and 64, 1 and 2 threads -> bench/results/runtime_network.md
#   5. 1 -> 2 thread scaling at batch 64, bench_network run SCALE_RUNS times (default 5; on a
#      shared machine one run's 2-thread wall time swings by +-20 %) -> bench/results/runtime_threads.md
#      with every run and the median per configuration
#   6. the CPU's other bit-serial tiers (issue 22: every tier the machine has): bench_layers with
#      MIXQ_BITSERIAL_TIER forced to each tier below the one step 1 ran (vpopcnt > avx512 > avx2,
#      from /proc/cpuinfo's flags), TIER_PASSES passes (default 1) -> bench/results/runtime_layers_TIER.md
# usage: sh bench/runtime.sh [--quick]      (BUILD=dir overrides build/bench; STEPS="2 4" runs only
#                                           those steps, e.g. the networks without the per-layer cells)
# Absolute numbers on a shared machine are noise: read the ratios (same run, same machine).
set -eu
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build/bench}
PY=/usr/bin/python3
QUICK=""
RUNS="--runs 5"
REPS=7
PASSES=${PASSES:-3}
if [ "${1:-}" = "--quick" ]; then QUICK=--quick; RUNS="--runs 3 --min-run 0.02"; REPS=3; PASSES=1; fi
make -s -j2 BUILD="$BUILD" all "$BUILD/bench/bench_layers" "$BUILD/bench/bench_network"
mkdir -p bench/results
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT INT TERM
echo "== runtime bench: $(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //'), $(nproc) CPUs, load $(cut -d' ' -f1 /proc/loadavg)"

STEPS=${STEPS:-1 2 3 4 5 6}
step() { case " $STEPS " in *" $1 "*) return 0;; esac; return 1; }
if step 1; then
echo "== 1/6 per-layer kernels -> bench/results/runtime_layers.md"
"$BUILD/bench/bench_layers" --shapes all --batch 1,64 --passes "$PASSES" $QUICK \
    --out bench/results/runtime_layers.md >/dev/null
fi

if step 2 || step 4 || step 5; then # steps 4 and 5 read the tables
echo "== 2/6 measured CPU tables (mixq calibrate-cpu)"
"$BUILD/mixq" calibrate-cpu --arch resnet20 --in 1,28,28 --threads 1 --reps $REPS \
    --out "$BUILD/runtime-cpu-resnet20.json" 2>&1 | tail -1
"$BUILD/mixq" calibrate-cpu --arch vgg11 --in 3,32,32 --threads 1 --reps $REPS \
    --out "$BUILD/runtime-cpu-vgg11.json" 2>&1 | tail -1
fi

PEER=""
if step 3; then
    echo "== 3/6 PyTorch fp32 peer"
    if $PY -c "import torch" 2>/dev/null; then
        $PY bench/torch_infer.py --batches 1,64 --threads 1,2 $RUNS | tee "$tmp/torch.txt"
        PEER="--peer $tmp/torch.txt"
    else
        echo "   (skipped: $PY has no torch; scripts/deps.sh --torch installs it)"
    fi
fi

if step 4; then
echo "== 4/6 whole networks -> bench/results/runtime_network.md"
"$BUILD/bench/bench_network" --batches 1,64 --threads 1,2 $RUNS \
    --cpu-table "resnet20=$BUILD/runtime-cpu-resnet20.json" \
    --cpu-table "vgg11=$BUILD/runtime-cpu-vgg11.json" \
    $PEER --out bench/results/runtime_network.md >/dev/null
[ -n "$PEER" ] || echo "PyTorch peer skipped ($(step 3 && echo "$PY has no torch" || echo "STEPS without 3"))." >>bench/results/runtime_network.md
fi
if step 5; then
    N=${SCALE_RUNS:-5}
    echo "== 5/6 thread scaling, batch 64, $N runs -> bench/results/runtime_threads.md"
    for k in $(seq 1 "$N"); do
        "$BUILD/bench/bench_network" --batches 64 --threads 1,2 $RUNS \
            --cpu-table "resnet20=$BUILD/runtime-cpu-resnet20.json" \
            --cpu-table "vgg11=$BUILD/runtime-cpu-vgg11.json" --out "$tmp/scale$k.md" >/dev/null
    done
    $PY - "$N" "$tmp" <<'PYEOF' >bench/results/runtime_threads.md
import re, statistics, sys
n, tmp = int(sys.argv[1]), sys.argv[2]
runs = {}  # (model, configuration) -> [scaling per run]
order = []
for k in range(1, n + 1):
    model = None
    in_scaling = False
    for line in open(f"{tmp}/scale{k}.md"):
        m = re.match(r"### (\S+)", line)
        if m:
            model, in_scaling = m.group(1), False
        if line.startswith("Thread scaling"):
            in_scaling = True
            continue
        if in_scaling and line.startswith("| ") and not line.startswith("| configuration"):
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            key = (model, cells[0])
            if key not in runs:
                runs[key] = []
                order.append(key)
            runs[key].append(float(cells[-1].rstrip("x")))
        elif in_scaling and not line.strip():
            pass
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
print("## 1 -> 2 thread scaling, batch 64\n")
print(f"- CPU: {cpu}; bench_network run {n} times in a row (each: median of 5 runs per cell, "
      "round-robin), 1 thread in process CPU time, 2 threads in wall time")
print("- scaling = images/s at 2 threads over 1 thread; the median over the runs is the figure, "
      "the runs show how much a shared machine moves it\n")
print("| model | configuration | " + " | ".join(f"run {k}" for k in range(1, n + 1)) + " | median |")
print("|---|---|" + "--:|" * (n + 1))
for key in order:
    v = runs[key]
    print(f"| {key[0]} | {key[1]} | " + " | ".join(f"{x:.2f}x" for x in v) + f" | **{statistics.median(v):.2f}x** |")
PYEOF
fi
if step 6; then
    flags=$(grep -m1 '^flags' /proc/cpuinfo)
    has() { case " $flags " in *" $1 "*) return 0;; esac; return 1; }
    tiers="" # below step 1's (the best) tier: without AVX-512BW, the AVX2 tier is step 1's own
    if has avx512bw; then has avx512_vpopcntdq && tiers="avx512"; tiers="$tiers avx2"; fi
    for t in $tiers; do
        echo "== 6/6 the $t tier (MIXQ_BITSERIAL_TIER=$t) -> bench/results/runtime_layers_$t.md"
        if MIXQ_BITSERIAL_TIER=$t "$BUILD/bench/bench_layers" --shapes all --batch 1,64 \
            --passes "${TIER_PASSES:-1}" $QUICK --out "$tmp/layers_$t.md" >"$tmp/layers_$t.log" 2>&1; then
            mv "$tmp/layers_$t.md" "bench/results/runtime_layers_$t.md"
        else
            echo "   (skipped: $(tail -n 1 "$tmp/layers_$t.log"))"
        fi
    done
fi
echo "== done: bench/results/runtime_layers.md, bench/results/runtime_network.md, bench/results/runtime_threads.md (and runtime_layers_TIER.md)"
