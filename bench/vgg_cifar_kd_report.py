#!/usr/bin/python3
"""The report of bench/vgg_cifar_kd.sh: a searched CIFAR-10 vgg11 policy and W8A8 fine-tuned the
same ways, on the integer runtime.
    python3 bench/vgg_cifar_kd_report.py RUN_DIR QAT_EPOCHS FLOAT_EPOCHS POLICY.json OUT.md"""
import json
import os
import re
import statistics
import sys

from benchutil import acc, cpu_name, grab

o, qat, epochs, policy, out = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5]
cpu = cpu_name()
fp32 = acc(o + "/fp32.eval.txt")
calib = acc(o + "/calib_w8a8.run.txt")
val = None
if os.path.exists(o + "/vgg11.train.log"):  # the last validation figure of the training log
    v = re.findall(r"val_acc(?:uracy)? ([0-9.]+)%", open(o + "/vgg11.train.log").read())
    val = v[-1] if v else None
pol = json.load(open(policy))
layers = pol.get("layers", {})
bits = ", ".join("%s W%dA%d" % (k, v["w_bits"], v["a_bits"]) for k, v in layers.items())

speed = {}
if os.path.exists(o + "/speed.txt"):
    rows = [l.split() for l in open(o + "/speed.txt") if l.strip()]
    for b in ("1", "64"):
        s = [float(r[2]) for r in rows if r[0] == b and r[1] == "searched"]
        w = [float(r[2]) for r in rows if r[0] == b and r[1] == "w8a8"]
        if s and w:
            speed[b] = (statistics.median(s), statistics.median(w), len(s))

runs = {}
for p in ("mixed", "w8a8"):
    for k in ("kd", "ce"):
        t = "%s/qat%d_%s_%s.run.txt" % (o, qat, p, k)
        a = acc(t)
        if a is not None:
            runs[p, k] = (a, grab(t, r"predictions differing (\d+ of \d+)"))

how = {"kd": "QAT %d, distilled from the float model (W 0.5, T 1)" % qat,
       "ce": "QAT %d, cross-entropy only" % qat}
with open(out, "w") as f:
    f.write("# Searched vgg11 (3x32x32) on CIFAR-10 from a float model trained %d epochs, "
            "with and without distillation (issue 22)\n\n" % epochs)
    f.write("- CPU: %s, as `/proc/cpuinfo` names it; `sh bench/vgg_cifar_kd.sh` (`make "
            "bench-vgg-cifar-kd`) reproduces this file.\n" % cpu)
    f.write("- Float model: vgg11 with BN trained %d epochs by `mixq train` (SGD, cosine, 1 warm-up "
            "epoch, crop + flip, 45 000 images; 5 000 held out): validation %s %%, FP32 test "
            "**%.2f %%**; W8A8 calibrated on it (no fine-tune), on the int8 runtime: **%.2f %%**.\n"
            % (epochs, val or "?", fp32 or 0, calib or 0))
    f.write("- Policy: `%s`, the budget-0.5 seed-1 policy of EBS on `--hw cpu` "
            "(`bench/results/ebs_vgg_cifar.md`, searched on the 8-epoch float model of the same "
            "architecture): %s.\n" % (policy, bits))
    f.write("- Fine-tunes: `mixq quantize --finetune-epochs %d` from the float model (lr 0.01 "
            "cosine, 1 thread); \"distilled\": `--teacher` the float model, loss 0.5 CE + 0.5 KL "
            "(temperature 1, LSQ's setting). Accuracy: the integer runtime on all 10 000 test "
            "images (`mixq run`).\n" % qat)
    if speed:
        f.write("- Speed: the policy's model over W8A8's, images/s on the runtime, 1 thread, "
                "alternating runs, median of %d each (batch 1: 2 000 images, batch 64: "
                "10 000).\n" % speed[next(iter(speed))][2])
    f.write("\n| model | fine-tune | runtime test % | - FP32 | - W8A8 calibrated | - W8A8 same "
            "fine-tune | predictions differing from fake quant | speed-up b1 | speed-up b64 |\n")
    f.write("|---|---|---:|---:|---:|---:|---|---:|---:|\n")
    if calib is not None:
        f.write("| W8A8 | calibration only | %.2f | %+.2f | - | - | %s | 1.00x | 1.00x |\n"
                % (calib, calib - (fp32 or 0),
                   grab(o + "/calib_w8a8.run.txt", r"predictions differing (\d+ of \d+)")))
    for (p, k), (a, diff) in sorted(runs.items(), key=lambda x: (x[0][0] != "w8a8", x[0][1])):
        w = runs.get(("w8a8", k))
        same = "%+.2f" % (a - w[0]) if w and p == "mixed" else "-"
        sp = ["%.2fx" % (speed[b][0] / speed[b][1]) if p == "mixed" and b in speed else
              ("1.00x" if p == "w8a8" else "-") for b in ("1", "64")]
        f.write("| %s | %s | %.2f | %+.2f | %+.2f | %s | %s | %s | %s |\n"
                % ("searched" if p == "mixed" else "W8A8", how[k], a, a - (fp32 or 0),
                   a - (calib or 0), same, diff, sp[0], sp[1]))
    missing = ["%s %s" % ("searched" if p == "mixed" else "W8A8", how[k])
               for p in ("mixed", "w8a8") for k in ("kd", "ce") if (p, k) not in runs]
    if missing:
        f.write("\nNot run (`JOBS`): %s.\n" % "; ".join(missing))
    best_w8 = max([v[0] for (p, _), v in runs.items() if p == "w8a8"] + [calib or 0])
    mixed = {k: v[0] for (p, k), v in runs.items() if p == "mixed"}
    if mixed:
        k, a = max(mixed.items(), key=lambda x: x[1])
        f.write("\n**The searched policy's best fine-tune** (%s): %.2f %%, %+.2f points against "
                "the best W8A8 here (%.2f %%)" % (how[k], a, a - best_w8, best_w8))
        if speed:
            f.write(", at %.2fx (batch 1) and %.2fx (batch 64) the speed of W8A8"
                    % tuple(speed[b][0] / speed[b][1] for b in ("1", "64")))
        f.write(".\n")
