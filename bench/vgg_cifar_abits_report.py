#!/usr/bin/python3
"""The report of bench/vgg_cifar_abits.sh: EBS on CIFAR-10 vgg11 with activations of 2 bits or
more (--a-bit-set), candidates fine-tuned with distillation, against W8A8 on the runtime.
    python3 bench/vgg_cifar_abits_report.py RUN_DIR QAT_EPOCHS BUDGET THREADS OUT.md SEED...
    python3 bench/vgg_cifar_abits_report.py --candidates SEARCH_DIR PREFIX
The second form writes each candidate the search scored (evals.jsonl, in order) as the policy
file PREFIX<k>.json (rewritten only when it changes) and prints "k:best" for the search's pick
(best_policy.json) and "k:other" for the rest."""
import json
import os
import statistics
import sys

from benchutil import acc, cpu_name, grab


def candidates(d):
    """[(w, a, record)] of the search run d, and the layer names in order."""
    best = json.load(open(d + "/best_policy.json"))["layers"]
    names = list(best)
    ev = [json.loads(l) for l in open(d + "/evals.jsonl") if l.strip()]
    return [(e["w"], e["a"], e) for e in ev], names, best


def policy_text(names, w, a):
    return json.dumps({"mixq_policy": 1, "default": {"w_bits": 8, "a_bits": 8},
                       "layers": {n: {"w_bits": x, "a_bits": y} for n, x, y in zip(names, w, a)}},
                      indent=1) + "\n"


def is_best(best, names, w, a):
    return all(best[n]["w_bits"] == x and best[n]["a_bits"] == y for n, x, y in zip(names, w, a))


if sys.argv[1] == "--candidates":
    d, prefix = sys.argv[2], sys.argv[3]
    cands, names, best = candidates(d)
    for k, (w, a, _) in enumerate(cands, 1):
        path, text = "%s%d.json" % (prefix, k), policy_text(names, w, a)
        if not os.path.exists(path) or open(path).read() != text:
            open(path, "w").write(text)
        print("%d:%s" % (k, "best" if is_best(best, names, w, a) else "other"))
    sys.exit(0)

o, qat, budget, threads, out = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
seeds = sys.argv[6:]
fp32 = acc(o + "/fp32.eval.txt")
calib = acc(o + "/calib_w8a8.run.txt")
w8qat = acc(o + "/qat10_w8a8_kd.run.txt")  # bench/vgg_cifar_kd.sh QAT=10, when it ran
rows = [l.split() for l in open(o + "/speed_abits.txt") if l.strip()] \
    if os.path.exists(o + "/speed_abits.txt") else []


def runs_of(batch, name):
    return [float(r[2]) for r in rows if r[0] == batch and r[1] == name]


def paired(batch, name):
    """The median over the rounds of name's images/s over W8A8's in the same round: speed_pairs
    alternates the models, so each round's pair saw the same load on this shared machine (the
    load drifts by tens of % within minutes, which a ratio of separate medians would carry)."""
    a, w = runs_of(batch, name), runs_of(batch, "w8a8")
    return statistics.median(x / y for x, y in zip(a, w)) if a and len(a) == len(w) else None


res = []
for s in seeds:
    d = "%s/abits_s%s" % (o, s)
    cands, names, best = candidates(d)
    summ = json.load(open(d + "/summary.json"))
    for k, (w, a, e) in enumerate(cands, 1):
        n = "s%s_c%d" % (s, k)
        same = grab("%s/qat%d_abits_%s.same" % (o, qat, n), r"as (s\d+_c\d+)")
        ft = same or n  # the candidate whose fine-tune (and timing) this policy has
        q = "%s/qat%d_abits_%s.run.txt" % (o, qat, ft)
        res.append(dict(seed=s, k=k, same=same, pick=is_best(best, names, w, a),
                        pol=", ".join("%s W%dA%d" % (m, x, y) for m, x, y in zip(names, w, a)),
                        lat=e["latency_ratio"], proxy=e["acc"], search_s=summ["search_s"],
                        acc=acc(q), diff=grab(q, r"predictions differing (\d+ of \d+)"),
                        sp=[paired(b, ft) for b in ("1", "64")]))
reps = len(runs_of("1", "w8a8"))
with open(out, "w") as f:
    f.write("# EBS on CIFAR-10 vgg11 with activations of 2 bits or more (issue 22)\n\n")
    f.write("- CPU: %s, as `/proc/cpuinfo` names it; `sh bench/vgg_cifar_abits.sh` (`make "
            "bench-vgg-cifar-abits`) reproduces this file.\n" % cpu_name())
    f.write("- Float model and W8A8: those of `bench/results/vgg_cifar_kd.md` (vgg11 trained 20 "
            "epochs; FP32 test %.2f %%, W8A8 calibrated on the int8 runtime %.2f %%%s).\n"
            % (fp32 or 0, calib or 0, ", W8A8 fine-tuned 10 distilled epochs %.2f %%" % w8qat
               if w8qat is not None else ""))
    f.write("- Search: `mixq search --agent ebs --hw cpu --budget latency=%s` on this CPU's "
            "measured table (`mixq calibrate-cpu`, batch 1), `--bits 1..8 --bit-set "
            "1,2,3,4,5,6,8 --a-bit-set 2,3,4,5,6,8` (weights from 1 bit, activations from 2), a "
            "2 048-image fine-tune per candidate (its score: \"proxy val\", 2 000 validation "
            "images), distilled from the float model (`--distill 0.5`), 1 thread per run, two "
            "runs side by side. Each search scores two candidates: the strengths' argmax and "
            "the same raised to fill the budget; \"pick\" is the one it keeps.\n" % budget)
    f.write("- Fine-tune of each distinct policy: `mixq quantize --finetune-epochs %d --teacher` "
            "the float model (0.5 CE + 0.5 KL, T 1), %s threads. Accuracy: the integer runtime on "
            "all 10 000 test images. Speed: images/s over W8A8 calibrated's on the runtime, 1 "
            "thread, the models alternating, %d rounds (batch 1: 2 000 images, batch 64: 10 000); "
            "the median of the rounds' ratios.\n\n" % (qat, threads, reps))
    ref = " - W8A8 QAT 10 |" if w8qat is not None else ""
    f.write("| seed | candidate | policy (W/A per layer) | table latency | proxy val %% | runtime "
            "test %% (QAT %d) | - W8A8 calibrated |%s predictions differing from fake quant | "
            "speed-up b1 | speed-up b64 |\n" % (qat, ref))
    f.write("|---|---|---|---:|---:|---:|---:|%s---|---:|---:|\n" % ("---:|" if ref else ""))
    for r in res:
        a = r["acc"]
        f.write("| %s | %d%s%s | %s | %.3fx | %.2f | %s | %s |%s %s | %s | %s |\n" % (
            r["seed"], r["k"], " (pick)" if r["pick"] else "",
            " = %s" % r["same"] if r["same"] else "", r["pol"], r["lat"], r["proxy"],
            "%.2f" % a if a is not None else "not fine-tuned",
            "%+.2f" % (a - calib) if a is not None and calib else "-",
            (" %+.2f |" % (a - w8qat) if a is not None else " - |") if ref else "",
            r["diff"] or "-", *("%.2fx" % x if x else "-" for x in r["sp"])))
    f.write("\nSearch wall time: %s s per run (1 thread, two side by side).\n"
            % ", ".join("seed %s %.0f" % (s, next(r["search_s"] for r in res if r["seed"] == s))
                        for s in seeds))
    done = [r for r in res if r["acc"] is not None and not r["same"]]
    if done:
        b = max(done, key=lambda r: r["acc"])
        f.write("\n**Best fine-tuned point:** seed %s candidate %d, %.2f %% (%+.2f points against "
                "W8A8 calibrated%s)" % (b["seed"], b["k"], b["acc"], b["acc"] - (calib or 0),
                                        ", %+.2f against W8A8 QAT 10" % (b["acc"] - w8qat)
                                        if w8qat is not None else ""))
        if b["sp"][0] and b["sp"][1]:
            f.write(" at %.2fx (batch 1) and %.2fx (batch 64) W8A8's speed" % tuple(b["sp"]))
        f.write(".\n")
