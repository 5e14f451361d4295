"""Inference-speed peer for bench_network.c: PyTorch CPU fp32 images/s of resnet20 (1x28x28) and
vgg11 (3x32x32), random-initialised, eval mode, torch.inference_mode, random N(0,1) input.

Same timing rule as bench_network.c: 2 warm-up forwards, then R runs (median taken), each
repeating the forward until >= MIN_RUN seconds; 1 thread: process CPU time, more threads: wall
time. All 1-thread cells run first. Prints one line per cell:
    torch ARCH BATCH THREADS IMAGES_PER_S
usage: torch_infer.py [--models resnet20,vgg11] [--batches 1,64] [--threads 1,2] [--runs 5]
                      [--min-run 0.1]"""
import argparse
import os
import statistics
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torch_models  # noqa: E402


SHAPES = {"resnet20": (1, 28), "vgg11": (3, 32)}


def build(name):
    c, hw = SHAPES[name]
    return torch_models.build(name, c, hw, 10)


def ints(s):
    return [int(v) for v in s.split(",") if v]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", default="resnet20,vgg11")
    ap.add_argument("--batches", default="1,64")
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--min-run", type=float, default=0.1)
    a = ap.parse_args()
    torch.manual_seed(1)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:
        pass
    print(f"# torch {torch.__version__}, mkldnn {torch.backends.mkldnn.is_available()}",
          flush=True)
    for t in sorted(ints(a.threads)):
        torch.set_num_threads(t)
        clock = time.process_time if t == 1 else time.perf_counter
        for name in [m for m in a.models.split(",") if m]:
            model = build(name).eval()
            c, hw = SHAPES[name]
            for b in ints(a.batches):
                x = torch.randn(b, c, hw, hw)
                with torch.inference_mode():
                    model(x)
                    model(x)
                    t0 = clock()
                    model(x)
                    one = clock() - t0
                    reps = 1 if one >= a.min_run else int(a.min_run / max(one, 1e-6)) + 1
                    runs = []
                    for _ in range(a.runs):
                        t0 = clock()
                        for _ in range(reps):
                            model(x)
                        runs.append((clock() - t0) / reps)
                print(f"torch {name} {b} {t} {b / statistics.median(runs):.1f}", flush=True)


if __name__ == "__main__":
    main()
