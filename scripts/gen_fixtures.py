#!/usr/bin/python3
"""Generate the PyTorch reference fixtures read by tests/test_torch_ref.c.

Needs Debian's python3-torch (scripts/deps.sh --torch). CI does not run this: it reads the
committed files in tests/fixtures/. Regenerate with:   /usr/bin/python3 scripts/gen_fixtures.py

References are computed in float64 from float32 inputs and stored as float32.

File format (MQFX v1, little-endian):
    "MQFX"  u32 version = 1  u32 count
    count x { u32 name_len, name bytes (no NUL), u32 ndim, u32 dims[ndim], f32 data[prod(dims)] }
"""
import math
import os
import struct
import sys

import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "bench"))
from torch_models import ResNet20  # noqa: E402

OUT = os.path.join(HERE, "..", "tests", "fixtures")


class Fixture:
    def __init__(self):
        self.items = []

    def add(self, name, t):
        t = torch.as_tensor(t).detach().to(torch.float32).contiguous()
        if t.dim() == 0:
            t = t.reshape(1)
        self.items.append((name, t))

    def write(self, path):
        with open(path, "wb") as f:
            f.write(b"MQFX")
            f.write(struct.pack("<II", 1, len(self.items)))
            for name, t in self.items:
                nb = name.encode()
                f.write(struct.pack("<I", len(nb)))
                f.write(nb)
                f.write(struct.pack("<I", t.dim()))
                f.write(struct.pack("<%dI" % t.dim(), *t.shape))
                f.write(t.numpy().astype("<f4").tobytes())
        print("wrote %s (%d tensors, %d bytes)" % (path, len(self.items), os.path.getsize(path)))


gen = torch.Generator().manual_seed(20261124)


def rnd(*shape, lo=-1.0, hi=1.0):
    """float32 uniform values, then promoted to float64 for the reference computation."""
    x = torch.rand(*shape, generator=gen, dtype=torch.float32) * (hi - lo) + lo
    return x.to(torch.float64)


def away_from(x, points, gap=1e-2):
    """Push values away from kinks (ReLU at 0, ReLU6 at 6) so finite precision cannot flip them."""
    for p in points:
        near = (x - p).abs() < gap
        x = torch.where(near, x + 2 * gap * torch.sign(x - p + 1e-9), x)
    return x


def conv_case(fx, name, N, C, H, W, K, R, stride, pad, groups, bias):
    x = rnd(N, C, H, W).requires_grad_()
    w = rnd(K, C // groups, R, R, lo=-0.5, hi=0.5).requires_grad_()
    b = rnd(K).requires_grad_() if bias else None
    y = F.conv2d(x, w, b, stride, pad, 1, groups)
    dy = rnd(*y.shape)
    y.backward(dy)
    fx.add(name + ".cfg", torch.tensor([N, C, H, W, K, R, stride, pad, groups, bias]))
    for k, v in (("x", x), ("w", w), ("dy", dy), ("y", y), ("dx", x.grad), ("dw", w.grad)):
        fx.add(name + "." + k, v)
    if bias:
        fx.add(name + ".b", b)
        fx.add(name + ".db", b.grad)


def linear_case(fx, name, N, IN, OUT):
    x = rnd(N, IN).requires_grad_()
    w = rnd(OUT, IN, lo=-0.5, hi=0.5).requires_grad_()
    b = rnd(OUT).requires_grad_()
    y = F.linear(x, w, b)
    dy = rnd(N, OUT)
    y.backward(dy)
    fx.add(name + ".cfg", torch.tensor([N, IN, OUT]))
    for k, v in (("x", x), ("w", w), ("b", b), ("dy", dy), ("y", y), ("dx", x.grad),
                 ("dw", w.grad), ("db", b.grad)):
        fx.add(name + "." + k, v)


def bn_case(fx, name, N, C, H, W, training):
    x = (rnd(N, C, H, W) * 2 + 0.5).requires_grad_()
    g = rnd(C, lo=0.5, hi=1.5).requires_grad_()
    be = rnd(C, lo=-0.5, hi=0.5).requires_grad_()
    rm0, rv0 = rnd(C, lo=-0.2, hi=0.2), rnd(C, lo=0.5, hi=2.0)
    rm, rv = rm0.clone(), rv0.clone()
    y = F.batch_norm(x, rm, rv, g, be, training=bool(training), momentum=0.1, eps=1e-5)
    dy = rnd(*y.shape)
    y.backward(dy)
    fx.add(name + ".cfg", torch.tensor([N, C, H, W, training]))
    for k, v in (("x", x), ("gamma", g), ("beta", be), ("run_mean0", rm0), ("run_var0", rv0),
                 ("dy", dy), ("y", y), ("dx", x.grad), ("dgamma", g.grad), ("dbeta", be.grad),
                 ("run_mean", rm), ("run_var", rv)):
        fx.add(name + "." + k, v)


def act_case(fx, name, kind, n):
    x = rnd(n, lo=-3.0, hi=8.0)
    x = away_from(x, (0.0, 6.0)).requires_grad_()
    y = F.relu(x) if kind == 0 else F.relu6(x)
    dy = rnd(n)
    y.backward(dy)
    fx.add(name + ".cfg", torch.tensor([kind, n]))
    for k, v in (("x", x), ("dy", dy), ("y", y), ("dx", x.grad)):
        fx.add(name + "." + k, v)


def pool_case(fx, name, kind, N, C, H, W, k, stride, pad):
    x = rnd(N, C, H, W).requires_grad_()
    if kind == 0:
        y = F.max_pool2d(x, k, stride, pad)
    elif kind == 1:
        y = F.avg_pool2d(x, k, stride, pad, count_include_pad=True)
    else:
        y = F.adaptive_avg_pool2d(x, 1)
    dy = rnd(*y.shape)
    y.backward(dy)
    fx.add(name + ".cfg", torch.tensor([kind, N, C, H, W, k, stride, pad]))
    for kk, v in (("x", x), ("dy", dy), ("y", y), ("dx", x.grad)):
        fx.add(name + "." + kk, v)


def ce_case(fx, name, N, K, eps):
    z = (rnd(N, K) * 4).requires_grad_()
    labels = torch.randint(0, K, (N,), generator=gen)
    loss = F.cross_entropy(z, labels, label_smoothing=eps)
    loss.backward()
    fx.add(name + ".cfg", torch.tensor([N, K, eps]))
    for k, v in (("logits", z), ("labels", labels), ("loss", loss), ("dlogits", z.grad)):
        fx.add(name + "." + k, v)


def kd_case(fx, name, N, K, T):
    # its own generator: the cases before it and the other fixtures keep their values
    g = torch.Generator().manual_seed(20261206 + N * K)
    z = (torch.rand(N, K, generator=g) * 8 - 4).to(torch.float64).requires_grad_()
    t = (torch.rand(N, K, generator=g) * 8 - 4).to(torch.float64)
    loss = F.kl_div(F.log_softmax(z / T, 1), F.softmax(t / T, 1), reduction="batchmean") * T * T
    loss.backward()
    fx.add(name + ".cfg", torch.tensor([N, K, T]))
    for k, v in (("logits", z), ("teacher", t), ("loss", loss), ("dlogits", z.grad)):
        fx.add(name + "." + k, v)


def layers():
    fx = Fixture()
    #                         N  C   H   W   K  R  s  p  g  bias
    conv_case(fx, "conv_basic", 2, 3, 7, 6, 4, 3, 1, 1, 1, 1)
    conv_case(fx, "conv_strided_grouped", 2, 4, 9, 8, 6, 3, 2, 1, 2, 0)
    conv_case(fx, "conv_depthwise", 2, 6, 7, 7, 6, 3, 1, 1, 6, 1)
    conv_case(fx, "conv_depthwise_s2_mult2", 2, 4, 8, 9, 8, 3, 2, 1, 4, 0)
    conv_case(fx, "conv_5x5_pad2", 1, 2, 11, 10, 3, 5, 1, 2, 1, 1)
    conv_case(fx, "conv_1x1_s2", 3, 5, 7, 7, 7, 1, 2, 0, 1, 0)
    conv_case(fx, "conv_many_images", 40, 3, 5, 5, 4, 3, 1, 1, 1, 1)
    linear_case(fx, "linear", 5, 13, 7)
    bn_case(fx, "bn_train", 3, 5, 4, 3, 1)
    bn_case(fx, "bn_eval", 3, 5, 4, 3, 0)
    act_case(fx, "relu", 0, 257)
    act_case(fx, "relu6", 1, 257)
    pool_case(fx, "maxpool_k2s2", 0, 2, 3, 7, 6, 2, 2, 0)
    pool_case(fx, "maxpool_k3s2p1", 0, 2, 3, 9, 8, 3, 2, 1)
    pool_case(fx, "avgpool_k2s2", 1, 2, 3, 8, 6, 2, 2, 0)
    pool_case(fx, "avgpool_k3s1p1", 1, 2, 3, 5, 7, 3, 1, 1)
    pool_case(fx, "gap", 2, 3, 4, 5, 3, 0, 0, 0)
    ce_case(fx, "ce", 6, 5, 0.0)
    ce_case(fx, "ce_smooth", 6, 5, 0.1)
    kd_case(fx, "kd_t1", 6, 5, 1.0)
    kd_case(fx, "kd_t4", 5, 7, 4.0)
    fx.write(os.path.join(OUT, "layers.mqfx"))


def name_hash(name):
    """Per-tensor phase, computed identically in tests/test_torch_ref.c."""
    h = 0
    for i, ch in enumerate(name.encode()):
        h = (h + ch * (i + 1)) % 1000
    return h


def formula_init(name, t):
    """Deterministic parameter values: a * sin(0.37 i + 0.011 h + 0.5) (+ offset)."""
    n = t.numel()
    i = torch.arange(n, dtype=torch.float64)
    s = torch.sin(0.37 * i + 0.011 * name_hash(name) + 0.5)
    if name.endswith("running_mean"):
        v = 0.05 * s
    elif name.endswith("running_var"):
        v = 1.0 + 0.2 * s
    elif t.dim() > 1:                         # conv / linear weight
        fan_in = n // t.shape[0]
        v = math.sqrt(3.0 / fan_in) * s
    elif name.endswith("weight"):             # batch-norm scale (the only 1-D weights)
        v = 1.0 + 0.1 * s
    else:                                     # batch-norm shift, linear bias
        v = 0.1 * s
    # round through float32 so both sides start from identical float32 values
    return v.to(torch.float32).to(torch.float64).reshape(t.shape)


def summarize(fx, key, t):
    t = t.detach().reshape(-1)
    if t.numel() <= 4096:
        fx.add(key, t)
    else:
        fx.add(key + ".head", t[:1024])
        fx.add(key + ".stats", torch.stack([t.sum(), (t * t).sum(), t.abs().sum()]))


def resnet20_step():
    """One SGD training step of resnet20 on 8 images of 1x16x16 (train-mode batch norm)."""
    fx = Fixture()
    model = ResNet20(in_c=1, classes=10).to(torch.float64)
    with torch.no_grad():
        for name, t in list(model.named_parameters()) + list(model.named_buffers()):
            if name.endswith("num_batches_tracked"):
                continue
            t.copy_(formula_init(name, t))
    x = rnd(8, 1, 16, 16, lo=-1.5, hi=2.0)
    labels = torch.tensor([3, 1, 4, 1, 5, 9, 2, 6])
    model.train()
    logits = model(x)
    loss = F.cross_entropy(logits, labels)
    loss.backward()
    fx.add("cfg", torch.tensor([8, 1, 16, 16, 10, 0.1, 0.9, 5e-4]))
    fx.add("x", x)
    fx.add("labels", labels)
    fx.add("logits", logits)
    fx.add("loss", loss)
    decay = [p for n, p in model.named_parameters() if p.dim() > 1]
    other = [p for n, p in model.named_parameters() if p.dim() <= 1]
    opt = torch.optim.SGD([{"params": decay, "weight_decay": 5e-4},
                           {"params": other, "weight_decay": 0.0}], lr=0.1, momentum=0.9)
    for name, p in model.named_parameters():
        summarize(fx, "grad." + name, p.grad)
    opt.step()
    for name, p in model.named_parameters():
        summarize(fx, "new." + name, p)
    for name, t in model.named_buffers():
        if not name.endswith("num_batches_tracked"):
            summarize(fx, "new." + name, t)
    fx.write(os.path.join(OUT, "resnet20_step.mqfx"))


def f32(v):
    """Round a Python float to float32 (the C side computes in float32)."""
    return float(torch.tensor(v, dtype=torch.float32))


def act_quant_case(fx, name, n, bits, signed, alpha):
    """torch.fake_quantize_per_tensor_affine (STE mask) and its learnable twin (LSQ scale grad)."""
    qmax = (1 << (bits - 1)) - 1 if signed else (1 << bits) - 1
    qmin = -qmax if signed else 0
    alpha = f32(alpha)
    s = float(torch.tensor(alpha, dtype=torch.float32) / torch.tensor(float(qmax), dtype=torch.float32))
    x = (rnd(n, lo=-1.5 if signed else -0.5, hi=1.3) * alpha * 1.2).float().requires_grad_()
    y = torch.fake_quantize_per_tensor_affine(x, s, 0, qmin, qmax)
    dy = rnd(n).float()
    y.backward(dy)
    xs = x.detach().clone().requires_grad_()
    sc = torch.tensor([s], requires_grad=True)
    zp = torch.tensor([0.0])
    y2 = torch._fake_quantize_learnable_per_tensor_affine(xs, sc, zp, qmin, qmax, 1.0)
    y2.backward(dy)
    fx.add(name + ".cfg", torch.tensor([n, bits, signed, alpha]))
    for k, v in (("x", x), ("dy", dy), ("y", y), ("dx", x.grad), ("dscale", sc.grad)):
        fx.add(name + "." + k, v)


def weight_quant_case(fx, name, K, inner, bits, shrink):
    """Per-channel symmetric fake quantization: scale_k = shrink * max|w_k| / n."""
    n = (1 << (bits - 1)) - 1
    w = (rnd(K, inner) * 0.3).float().requires_grad_()
    mx = w.detach().abs().amax(dim=1)
    scale = (mx * shrink) / n                       # float32 arithmetic, as in C
    y = torch.fake_quantize_per_channel_affine(w, scale, torch.zeros(K, dtype=torch.int32), 0, -n, n)
    dy = rnd(K, inner).float()
    y.backward(dy)
    fx.add(name + ".cfg", torch.tensor([K, inner, bits]))
    for k, v in (("w", w), ("scale", scale), ("dy", dy), ("y", y), ("dw", w.grad)):
        fx.add(name + "." + k, v)


def weight_lsq_case(fx, name, K, inner, bits, shrink):
    """LSQ scale gradients per channel: torch._fake_quantize_learnable_per_channel_affine with
    LSQ's factor 1/sqrt(inner * n)."""
    n = (1 << (bits - 1)) - 1
    w = (rnd(K, inner) * 0.3).float()
    scale = ((w.abs().amax(dim=1) * shrink) / n).requires_grad_()
    zp = torch.zeros(K)
    wg = w.clone().requires_grad_()
    y = torch._fake_quantize_learnable_per_channel_affine(wg, scale, zp, 0, -n, n,
                                                          1.0 / math.sqrt(inner * n))
    dy = rnd(K, inner).float()
    y.backward(dy)
    fx.add(name + ".cfg", torch.tensor([K, inner, bits]))
    for k, v in (("w", w), ("scale", scale), ("dy", dy), ("y", y), ("dscale", scale.grad)):
        fx.add(name + "." + k, v)


def quant():
    fx = Fixture()
    act_quant_case(fx, "act_u3", 1000, 3, 0, 2.7)
    act_quant_case(fx, "act_u8", 1000, 8, 0, 5.9)
    act_quant_case(fx, "act_s4", 1000, 4, 1, 1.7)
    act_quant_case(fx, "act_u2", 333, 2, 0, 0.9)
    weight_quant_case(fx, "w_c4", 6, 75, 4, 1.0)
    weight_quant_case(fx, "w_c2_clipped", 5, 40, 2, 0.6)
    weight_quant_case(fx, "w_c8", 3, 100, 8, 1.0)
    weight_lsq_case(fx, "w_lsq4", 6, 75, 4, 0.7)
    fx.write(os.path.join(OUT, "quant.mqfx"))


if __name__ == "__main__":
    torch.set_num_threads(1)
    os.makedirs(OUT, exist_ok=True)
    layers()
    resnet20_step()
    quant()
