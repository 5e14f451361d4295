#!/usr/bin/python3
"""The report of bench/vgg_cifar_front.sh: policies of CIFAR-10 vgg11 around 2x W8A8's speed,
fine-tuned with distillation (or only calibrated), against W8A8 on the runtime.
    python3 bench/vgg_cifar_front_report.py RUN_DIR QAT_EPOCHS OUT.md "NAME:SEED..." NAME...
The fourth argument lists the fine-tuned (policy, seed) pairs; the names after it, every policy
in the table's order."""
import json
import os
import statistics
import sys

from benchutil import acc, cpu_name, grab

o, qat, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
finetuned = [(x.split(":")[0], int(x.split(":")[1])) for x in sys.argv[4].split()]
names = sys.argv[5:]
fp32 = acc(o + "/fp32.eval.txt")
calib = acc(o + "/calib_w8a8.run.txt")
w8qat = acc(o + "/qat10_w8a8_kd.run.txt")  # bench/vgg_cifar_kd.sh QAT=10, when it ran here
W8QAT_COMMITTED = 89.57  # bench/results/vgg_cifar_kd_qat10.md, the same float model
rows = [l.split() for l in open(o + "/speed_front.txt") if l.strip()]
held = open(o + "/vgg11.holdout.txt").read().strip() if os.path.exists(o + "/vgg11.holdout.txt") else ""


def runs_of(batch, name):
    return [float(r[2]) for r in rows if r[0] == batch and r[1] == name]


def paired(batch, name):
    """Median, lowest and highest over the rounds of name's images/s over W8A8's in the same
    round (speed_pairs alternates the models, so a round's pair saw the same load)."""
    a, w = runs_of(batch, name), runs_of(batch, "w8a8")
    if not a or len(a) != len(w):
        return None
    r = sorted(x / y for x, y in zip(a, w))
    return statistics.median(r), r[0], r[-1]


def policy_text(path):
    p = json.load(open(path))
    if not p.get("layers"):
        return "every layer W%dA%d" % (p["default"]["w_bits"], p["default"]["a_bits"])
    return ", ".join("%s W%dA%d" % (k, v["w_bits"], v["a_bits"]) for k, v in p["layers"].items())


def model(n, seed):
    """The file stem of policy n fine-tuned with seed (bench/vgg_cifar_front.sh's names)."""
    return "%s/qat%d%s_front_%s" % (o, qat, "" if seed == 1 else "s%d" % seed, n)


def seeds_of(n):
    return [s for m, s in finetuned if m == n]


def fmt(v, f="%.2f"):
    return f % v if v is not None else "-"


base = w8qat if w8qat is not None else W8QAT_COMMITTED


def w8qat_of(seed):
    """W8A8 fine-tuned the same way with this seed: w8a8_qat's run here, else (seed 1) the
    committed figure; with where it came from."""
    t = acc(model("w8a8_qat", seed) + ".run.txt")
    if t is not None:
        return t, "w8a8_qat, seed %d" % seed
    if seed == 1:
        return base, "bench/results/vgg_cifar_kd_qat10.md" if w8qat is None else "qat10_w8a8_kd"
    return None, "-"


lines = [
    "# CIFAR-10 vgg11 around 2x W8A8's speed: front points (issue 22)\n",
    "- CPU: %s, as `/proc/cpuinfo` names it; `sh bench/vgg_cifar_front.sh` (`make bench-vgg-cifar-front`) reproduces this file." % cpu_name(),
    "- Float model: vgg11 trained 20 epochs (bench/vgg_cifar_kd.sh): FP32 test %s %%; W8A8 calibrated on the int8 runtime %s %%; W8A8 fine-tuned %d distilled epochs %s %%%s." % (
        fmt(fp32), fmt(calib), qat, fmt(base),
        "" if w8qat is not None else " (bench/results/vgg_cifar_kd_qat10.md: fine-tuned from a float model trained by the same command and seed, which gave the same validation, FP32 and W8A8 test accuracy as this one)"),
    "- Fine-tune: `mixq quantize --finetune-epochs %d --teacher` the float model (0.5 CE + 0.5 KL, T 1), as bench/vgg_cifar_abits.sh. Accuracy: the integer runtime on all 10 000 test images. Table latency: `mixq cost --hw cpu.json` (this CPU's measured table, batch 1)." % qat,
    "- Speed: images/s over W8A8 calibrated's on the runtime, 1 thread, all models alternating, %d rounds (batch 1: 2 000 images, batch 64: 10 000); the median of the rounds' ratios, lowest-highest in brackets. A policy not fine-tuned here is timed calibrated only (the same kernels and epilogues); s1_c1 and s1_c2 were fine-tuned the same way in bench/results/vgg_cifar_abits.md." % (len(runs_of("1", "w8a8"))),
    "",
    "| name | policy (W/A per layer) | table latency | fine-tune | val %% | runtime test %% | - W8A8 calibrated | - W8A8 QAT %d | predictions differing from fake quant | speed-up b1 | speed-up b64 |" % qat,
    "|---|---|---:|---|---:|---:|---:|---:|---|---:|---:|",
]
for n in names:
    sd = seeds_of(n)
    q = model(n, sd[0]) if sd else None
    tuned = q is not None and os.path.exists(q + ".run.txt")
    lat = grab("%s/front_%s.cost.txt" % (o, n), r"latency ([0-9.]+)x")
    t = acc(q + ".run.txt") if tuned else None
    b1 = w8qat_of(sd[0])[0] if tuned else None  # W8A8 QAT with the timed model's seed
    val = grab(q + ".log", r"of QAT: val_accuracy ([0-9.]+)%") if tuned else None
    diff = grab(q + ".run.txt", r"predictions differing (\d+ of \d+)") if tuned else None
    sp = [paired(b, n) for b in ("1", "64")]
    spt = ["%.2fx (%.2f-%.2f)" % s if s else "-" for s in sp]
    lines.append("| %s | %s | %sx | %s | %s | %s | %s | %s | %s | %s | %s |" % (
        n, policy_text("%s/front_%s.json" % (o, n)), lat or "-",
        "QAT %d, distilled, seed %d" % (qat, sd[0]) if tuned else "calibrated only (timing)",
        val or "-", fmt(t), "%+.2f" % (t - calib) if t is not None and calib else "-",
        "%+.2f" % (t - b1) if t is not None and b1 is not None else "-",
        diff or "-", spt[0], spt[1]))

multi = [n for n in names if n != "w8a8_qat" and len(seeds_of(n)) > 1]
if multi:
    lines += [
        "",
        "## Fine-tune seeds, paired with W8A8 fine-tuned by the same seed",
        "",
        "The seed (`mixq quantize --seed`) sets the fine-tune's random streams; the float model is the same. " + (
            "The float model records the images it held out (`%s`), and every seed's fine-tune validates on those, so the validation figures compare too. " % held
            if held and "not recorded" not in held else
            "The float model predates the record of the images it held out (`mixq info`: `held out: not recorded`), so each seed's fine-tune also took its seed's validation split: a validation figure of a seed other than 1 is partly on images the float model trained on (it held out seed 1's), and only the test figures compare. ")
        + "Difference: the policy's test accuracy minus W8A8 QAT %d's with the same seed." % qat,
        "",
        "| name | seed | val %% | runtime test %% | W8A8 QAT %d, same seed | from | difference |" % qat,
        "|---|---:|---:|---:|---:|---|---:|",
    ]
    for n in multi:
        tests, diffs = [], []
        for sd in seeds_of(n):
            q = model(n, sd)
            t = acc(q + ".run.txt")
            val = grab(q + ".log", r"of QAT: val_accuracy ([0-9.]+)%")
            b, src = w8qat_of(sd)
            if t is not None:
                tests.append(t)
            if t is not None and b is not None:
                diffs.append(t - b)
            lines.append("| %s | %d | %s | %s | %s | %s | %s |" % (
                n, sd, val or "-", fmt(t), fmt(b), src,
                "%+.2f" % (t - b) if t is not None and b is not None else "-"))
        if len(tests) > 1:
            lines.append("| %s | mean ± sd | | %.2f ± %.2f | | | %s |" % (
                n, statistics.mean(tests), statistics.stdev(tests),
                "%+.2f ± %.2f" % (statistics.mean(diffs), statistics.stdev(diffs))
                if len(diffs) > 1 else "-"))
text = "\n".join(lines) + "\n"
open(out, "w").write(text)
