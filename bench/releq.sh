#!/bin/sh
# ReLeQ's acceptance figures (issue 17) for finished search runs (mixq search --agent releq, or any
# agent: the same figures for HAQ's or random's policies). Per run directory:
#   - test accuracy after the final fine-tune against the float model's, and the drop;
#   - the average weight bits (over every weight of the searched layers and in all) and the bits
#     per layer;
#   - the speed-up over the same model at 8-bit weights on the hardware models: stripes as mixq
#     models it (activations serial, weights bit-parallel: a weights-only policy gains nothing),
#     stripes with the weights as the serial operand (the policy transposed, w <-> a: how ReLeQ
#     reads a bit-serial accelerator), loom (both serial) and bismo_edge;
#   - measured on this CPU's runtime, one thread, median of REPS alternating runs (batch 1 over
#     1000 test images, batch 64 over 4096): the searched model on the bit-serial kernels against
#     the same model at W8 (its activation widths kept) on the bit-serial kernels (ReLeQ's own
#     baseline), and against uniform W8A8 on the int8 (VNNI) kernels; the searched model with
#     --kernel auto (per layer the faster kernel in this CPU's table) against W8A8 int8 as well;
#   - 0 predictions differing between the runtime and fake quantization (or the count).
#
#   sh bench/releq.sh RUN_DIR [RUN_DIR ...]           tables on stdout (markdown)
#   REPS=5 (default 3) THREADS=1 (default) MIXQ=build/release/mixq
#   REPORT_ONLY=1: runs measured before (speed.txt, hw.txt) are only reported again
# The float model, data set and float test accuracy come from each run's config.json; runs of
# one model share the W8A8 reference, the float accuracy and this CPU's measured table (mixq
# calibrate-cpu, for --kernel auto), built once into RUN_DIR/../releq_ref/<model>/. Time on a quiet
# machine: the ratios are what is compared.
set -eu
MIXQ=${MIXQ:-build/release/mixq}
REPS=${REPS:-3}
THREADS=${THREADS:-1}
[ $# -ge 1 ] || { sed -n '2,/^set -eu/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//' >&2; exit 2; }

cfg() { python3 -c "import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])" "$1/config.json" "$2"; }
ips() { # model kernel batch images -> images/s
    n=$4
    "$MIXQ" run "$1" --data "$DATA" --kernel "$2" --batch "$3" --images "$n" --threads "$THREADS" \
        --cpu-table "$ref/cpu.json" --no-compare | sed -n 's/^throughput \([0-9.]*\) images.*/\1/p'
}
for d in "$@"; do
    [ -f "$d/summary.json" ] && [ -f "$d/best.mixq" ] || { echo "releq.sh: $d: no finished run (summary.json, best.mixq)" >&2; exit 1; }
    [ -n "${REPORT_ONLY:-}" ] && [ -s "$d/speed.txt" ] && [ -s "$d/hw.txt" ] && continue
    M=$(cfg "$d" model)
    DATA=$(cfg "$d" data)
    ref="$(dirname "$d")/releq_ref/$(basename "$M" .mixq)"
    mkdir -p "$ref"
    if [ ! -f "$ref/fp32.txt" ]; then
        "$MIXQ" eval "$M" --data "$DATA" | sed -n 's/^accuracy \([0-9.]*\)%.*/\1/p' > "$ref/fp32.txt"
        [ -s "$ref/fp32.txt" ] || "$MIXQ" eval "$M" --data "$DATA" | tail -n 3 >&2
    fi
    if [ ! -f "$ref/w8a8.mixq" ]; then
        echo '{"mixq_policy": 1, "default": {"w_bits": 8, "a_bits": 8}}' > "$ref/w8a8.json"
        "$MIXQ" quantize "$M" --policy "$ref/w8a8.json" --data "$DATA" --out "$ref/w8a8.mixq" --quiet \
            > "$ref/w8a8.log" 2>&1 || { cat "$ref/w8a8.log" >&2; exit 1; }
    fi
    # this CPU's measured table (batch 1, one thread): what --kernel auto picks from
    [ -f "$ref/cpu.json" ] || "$MIXQ" calibrate-cpu --model "$M" --out "$ref/cpu.json" --threads 1 > "$ref/cpu.log" 2>&1
    # the same model at W8 with the run's activation widths, and the policy transposed (w <-> a)
    python3 - "$d/best_policy.json" "$d/w8.json" "$d/transposed.json" <<'EOF'
import json, sys
p = json.load(open(sys.argv[1]))
def w8(e): return {"w_bits": 8, "a_bits": e.get("a_bits", 8)}
def tr(e):
    w = e.get("w_bits", 8)
    if isinstance(w, list): w = max(w)
    return {"w_bits": e.get("a_bits", 8), "a_bits": w}
q = dict(p, default=w8(p["default"]), layers={k: w8(v) for k, v in p.get("layers", {}).items()})
json.dump(q, open(sys.argv[2], "w"), indent=1)
q = dict(p, default=tr(p["default"]), layers={k: tr(v) for k, v in p.get("layers", {}).items()})
json.dump(q, open(sys.argv[3], "w"), indent=1)
EOF
    "$MIXQ" quantize "$M" --policy "$d/w8.json" --data "$DATA" --out "$d/w8.mixq" --quiet > "$d/w8.log" 2>&1 ||
        { cat "$d/w8.log" >&2; exit 1; }
    # hardware models: ratio of the policy to the same model at W8 (activations as searched)
    : > "$d/hw.txt"
    for t in stripes loom bismo_edge; do
        a=$("$MIXQ" cost "$M" --hw "$t" --policy "$d/best_policy.json" --csv | tail -n 1)
        b=$("$MIXQ" cost "$M" --hw "$t" --policy "$d/w8.json" --csv | tail -n 1)
        echo "$t|$a|$b" >> "$d/hw.txt"
    done
    a=$("$MIXQ" cost "$M" --hw stripes --policy "$d/transposed.json" --csv | tail -n 1)
    b=$("$MIXQ" cost "$M" --hw stripes --policy "$d/w8.json" --csv | tail -n 1)
    echo "stripes_wserial|$a|$b" >> "$d/hw.txt"
    "$MIXQ" policy show "$M" "$d/best_policy.json" > "$d/policy.txt"
    "$MIXQ" run "$d/best.mixq" --data "$DATA" --kernel bitserial --threads "$THREADS" > "$d/run_compare.txt"
    # speed: alternate the models, REPS times per batch size
    : > "$d/speed.txt"
    for b in 1 64; do
        n=$([ "$b" = 1 ] && echo 1000 || echo 4096)
        for r in $(seq "$REPS"); do
            echo "$b best-bitserial $(ips "$d/best.mixq" bitserial "$b" "$n")" >> "$d/speed.txt"
            echo "$b w8-bitserial $(ips "$d/w8.mixq" bitserial "$b" "$n")" >> "$d/speed.txt"
            echo "$b best-auto $(ips "$d/best.mixq" auto "$b" "$n")" >> "$d/speed.txt"
            echo "$b w8a8-int8 $(ips "$ref/w8a8.mixq" int8 "$b" "$n")" >> "$d/speed.txt"
        done
    done
done
python3 - "$@" <<'EOF'
import json, os, re, statistics, sys
cpu = "?"
for l in open("/proc/cpuinfo"):
    if l.startswith("model name"): cpu = l.split(":", 1)[1].strip(); break
print("CPU: %s; runtime timed on %s thread(s), medians of alternating runs\n" % (cpu, os.environ.get("THREADS", "1")))
print("| run | fp32 test % | final test % | drop | w bits: layer mean (searched) / per weight (all) | stripes | stripes, w serial | loom | bismo_edge | CPU: bit-serial vs W8 bit-serial (b1 / b64) | bit-serial vs int8 W8A8 | auto vs int8 W8A8 | runtime vs fake-quant |")
print("|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|")
per = {}
for d in sys.argv[1:]:
    d = d.rstrip("/")
    s = json.load(open(d + "/summary.json"))
    c = json.load(open(d + "/config.json"))
    ref = os.path.join(os.path.dirname(d), "releq_ref", os.path.basename(c["model"])[:-len(".mixq")])
    fp = float(open(ref + "/fp32.txt").read().strip() or "nan")
    hw = {}
    for l in open(d + "/hw.txt"):
        t, a, b = l.strip().split("|")
        hw[t] = float(b.split(",")[7]) / float(a.split(",")[7])  # latency_s of the totals rows
    rows, allbits = [], "?"
    for l in open(d + "/policy.txt"):
        f = l.split()
        if len(f) >= 9 and f[1] in ("conv", "linear"):  # a per-kernel layer: "lo..hi avg mean"
            rows.append((f[0], f[4], f[5]) if f[3] == "avg" else (f[0], f[2], f[3]))
        m = re.search(r"\(([0-9.]+) bits/weight\)", l)
        if m: allbits = m.group(1)
    srch = rows[1:-1] if c.get("pin_ends", True) else rows
    def num(x):
        try: return float(x)
        except ValueError: return float("nan")  # a per-kernel range
    mean = statistics.mean(num(w) for _, w, _ in srch) if srch else float("nan")
    per[d] = rows
    sp = [l.split() for l in open(d + "/speed.txt") if l.strip()]
    def med(b, k): return statistics.median(float(r[2]) for r in sp if r[0] == b and r[1] == k and len(r) > 2)
    def rat(k1, k2): return "%.2fx / %.2fx" % (med("1", k1) / med("1", k2), med("64", k1) / med("64", k2))
    m = re.search(r"predictions differing (\d+) of (\d+)", open(d + "/run_compare.txt").read())
    print("| %s | %.2f | %.2f | %+.2f | %.2f / %s | %.2fx | %.2fx | %.2fx | %.2fx | %s | %s | %s | %s |" % (
        os.path.basename(d), fp, s["final_test_accuracy"], s["final_test_accuracy"] - fp, mean, allbits,
        hw["stripes"], hw["stripes_wserial"], hw["loom"], hw["bismo_edge"],
        rat("best-bitserial", "w8-bitserial"), rat("best-bitserial", "w8a8-int8"), rat("best-auto", "w8a8-int8"),
        ("%s of %s differ" % m.groups()) if m else "?"))
print("\nSpeed-ups are W8's latency over the policy's (hardware models: the same model at 8-bit weights,"
      " activations as searched; CPU: images/s ratios). Bits per layer (W/A; the first and last pinned"
      " unless --no-pin):")
for d, rows in per.items():
    print("- %s: %s" % (os.path.basename(d), " ".join("%s W%s/A%s" % r for r in rows)))
EOF
