#!/usr/bin/env python3
"""Write a random per-kernel mixed-precision policy for a model file.
   random_policy.py MODEL.mixq SEED [MIN_BITS MAX_BITS] > policy.json
Every conv/linear layer gets granularity "kernel" with one random weight bit width per output
channel in [MIN_BITS, MAX_BITS] (default 2..6) and random activation bits in [4, 8]; the first and
last layers are pinned at 8 bits. Layer names and channel counts come from `mixq info`."""
import json
import random
import subprocess
import sys

model, seed = sys.argv[1], int(sys.argv[2])
lo, hi = (int(sys.argv[3]), int(sys.argv[4])) if len(sys.argv) > 4 else (2, 6)
mixq = "build/release/mixq"
out = subprocess.run([mixq, "info", model], check=True, capture_output=True, text=True).stdout
layers = []
for line in out.splitlines():
    f = line.split()
    if len(f) >= 7 and f[0].isdigit() and f[2] in ("conv", "linear"):
        layers.append((f[1], int(f[4].split("x")[0])))
rng = random.Random(seed)
pol = {"mixq_policy": 1, "comment": f"random per-kernel mix, seed {seed}, {lo}..{hi} bits",
       "layers": {}}
for i, (name, k) in enumerate(layers):
    if i == 0 or i == len(layers) - 1:
        pol["layers"][name] = {"w_bits": 8, "a_bits": 8}
    else:
        pol["layers"][name] = {"w_bits": [rng.randint(lo, hi) for _ in range(k)],
                               "a_bits": rng.randint(4, 8), "granularity": "kernel"}
json.dump(pol, sys.stdout)
print()
