"""Training-speed benchmark, PyTorch side (twin of bench_train.c): images/s of full training
steps on random data. Usage: torch_train.py MODEL --threads T --batch B --steps S --repeats R
[--hw H] [--channels C]"""
import argparse
import statistics
import time

import torch
import torch.nn.functional as F

import torch_models

ap = argparse.ArgumentParser()
ap.add_argument("model")
ap.add_argument("--threads", type=int, default=2)
ap.add_argument("--batch", type=int, default=128)
ap.add_argument("--steps", type=int, default=10)
ap.add_argument("--repeats", type=int, default=5)
ap.add_argument("--hw", type=int, default=28)
ap.add_argument("--channels", type=int, default=1)
a = ap.parse_args()
torch.set_num_threads(a.threads)
torch.manual_seed(1)
model = torch_models.build(a.model, a.channels, a.hw, 10)
model.train()
opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
x = torch.rand(a.batch, a.channels, a.hw, a.hw) - 0.5
y = torch.arange(a.batch) % 10


def step():
    opt.zero_grad(set_to_none=True)
    loss = F.cross_entropy(model(x), y)
    loss.backward()
    opt.step()


for _ in range(2):
    step()
rates = []
for r in range(a.repeats):
    t0 = time.perf_counter()
    for _ in range(a.steps):
        step()
    dt = time.perf_counter() - t0
    rates.append(a.steps * a.batch / dt)
    print(f"repeat {r + 1}: {rates[-1]:.1f} images/s")
print(f"median_images_per_s {statistics.median(rates):.1f}")
print(f"torch {torch.__version__} threads {torch.get_num_threads()} mkldnn {torch.backends.mkldnn.is_available()}")
