#!/usr/bin/python3
"""Generate tests/fixtures/hessian.mqfx: exact Hessians for the Hutchinson trace tests
(tests/test_hawq.c), made with torch.autograd.functional.hessian.

Needs Debian's python3-torch (scripts/deps.sh --torch). CI reads the committed file. Regenerate:
    /usr/bin/python3 scripts/gen_hessian_fixtures.py

Two models, each with its float32 weights (named as mixq names them), inputs, labels (as
floats), the mean softmax cross-entropy loss and its gradient, and from the exact Hessian H of
that loss over every trainable parameter (float64):
  trace.<tensor>   Tr(H_ll) of each weight tensor's diagonal block;
  hstd.<tensor>    the standard deviation of one Hutchinson sample v_l^T (H v)_l with v
                   Rademacher over *all* parameters (what the C estimator draws), so a test can
                   choose enough probes: Var = sum over unordered pairs {i, j}, i != j, of the
                   squared coefficient of v_i v_j (2 H_ij inside the layer, H_ij across);
  v.<tensor>, hv.<tensor>  one fixed Rademacher direction and H v (checks the finite
                   difference itself, probe-free).
Models (graph text in tests/test_hawq.c):
  "lr."   logistic regression: 3x3 inputs, flatten, fc 9 -> 4 with bias; 20 images.
  "cnn."  conv1 1->2 3x3 pad 1 (no bias), bn1 (eval: running statistics), relu, conv2 2->3 3x3
          stride 2 pad 1 (no bias), relu, global average pool, fc 3 -> 4 with bias, partly
          trained (below); 64 images of 5x5, each with every ReLU input at least 3 % of that
          ReLU's input deviation away from 0, so the finite difference (and any small
          perturbation) never crosses a kink, where the exact Hessian is undefined.
"""
import os
import sys

import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from gen_fixtures import Fixture  # noqa: E402  (the MQFX v1 writer)

OUT = os.path.join(HERE, "..", "tests", "fixtures")
gen = torch.Generator().manual_seed(20260719)


def rnd(*shape, lo=-1.0, hi=1.0):
    """float32 uniform values, promoted to float64 for the exact computation."""
    return (torch.rand(*shape, generator=gen, dtype=torch.float32) * (hi - lo) + lo).to(torch.float64)


def unflatten(theta, specs):
    out, o = {}, 0
    for name, shape in specs:
        n = 1
        for d in shape:
            n *= d
        out[name] = theta[o:o + n].reshape(shape)
        o += n
    return out


def exact(fx, prefix, specs, params, loss_fn):
    """Loss, gradient, per-tensor traces, Hutchinson deviations, one v and H v, into fx."""
    theta = torch.cat([params[n].reshape(-1) for n, _ in specs])
    f = lambda t: loss_fn(unflatten(t, specs))  # noqa: E731
    t = theta.clone().requires_grad_()
    loss = f(t)
    (g,) = torch.autograd.grad(loss, t)
    H = torch.autograd.functional.hessian(f, theta)
    H = 0.5 * (H + H.T)
    v = (torch.randint(0, 2, theta.shape, generator=gen) * 2 - 1).to(torch.float64)
    hv = H @ v
    fx.add(prefix + "loss", loss.detach())
    o = 0
    P = theta.numel()
    for name, shape in specs:
        n = params[name].numel()
        sl = slice(o, o + n)
        fx.add(prefix + "grad." + name, g[sl].reshape(shape))
        fx.add(prefix + "v." + name, v[sl].reshape(shape))
        fx.add(prefix + "hv." + name, hv[sl].reshape(shape))
        if name.endswith(".weight") and len(shape) > 1:
            blk = H[sl, sl]
            inside = (2 * blk).pow(2).sum() - (2 * blk.diagonal()).pow(2).sum()  # ordered pairs
            mask = torch.ones(P, dtype=torch.bool)
            mask[sl] = False
            across = H[sl][:, mask].pow(2).sum()
            var = inside / 2 + across
            fx.add(prefix + "trace." + name, blk.trace())
            fx.add(prefix + "hstd." + name, var.sqrt())
            print("%s%s: trace %.6g, one-probe std %.3g (%.1f x trace)" %
                  (prefix, name, blk.trace(), var.sqrt(), var.sqrt() / blk.trace().abs()))
        o += n


def logistic(fx):
    N, K = 20, 4
    x = rnd(N, 1, 3, 3, lo=-2, hi=2)
    y = torch.randint(0, K, (N,), generator=gen)
    specs = [("fc.weight", (K, 9)), ("fc.bias", (K,))]
    params = {"fc.weight": rnd(K, 9, lo=-0.5, hi=0.5), "fc.bias": rnd(K, lo=-0.2, hi=0.2)}

    def loss_fn(p):
        return F.cross_entropy(F.linear(x.reshape(N, -1), p["fc.weight"], p["fc.bias"]), y)

    fx.add("lr.x", x)
    fx.add("lr.labels", y)
    for n, _ in specs:
        fx.add("lr." + n, params[n])
    exact(fx, "lr.", specs, params, loss_fn)


def cnn(fx):
    N, K, POOL = 64, 4, 2000
    specs = [("conv1.weight", (2, 1, 3, 3)), ("bn1.weight", (2,)), ("bn1.bias", (2,)),
             ("conv2.weight", (3, 2, 3, 3)), ("fc.weight", (K, 3)), ("fc.bias", (K,))]
    params = {"conv1.weight": rnd(2, 1, 3, 3, lo=-0.6, hi=0.6), "bn1.weight": rnd(2, lo=0.8, hi=1.2),
              "bn1.bias": rnd(2, lo=-0.1, hi=0.1), "conv2.weight": rnd(3, 2, 3, 3, lo=-0.5, hi=0.5),
              "fc.weight": rnd(K, 3, lo=-1, hi=1), "fc.bias": rnd(K, lo=-0.2, hi=0.2)}
    rm, rv = rnd(2, lo=-0.1, hi=0.1), rnd(2, lo=0.5, hi=1.5)

    def pre(p, x):
        """The two ReLU inputs and the logits."""
        z1 = F.batch_norm(F.conv2d(x, p["conv1.weight"], None, 1, 1), rm, rv, p["bn1.weight"], p["bn1.bias"],
                          training=False, eps=1e-5)
        z2 = F.conv2d(F.relu(z1), p["conv2.weight"], None, 2, 1)
        logits = F.linear(F.relu(z2).mean(dim=(2, 3)), p["fc.weight"], p["fc.bias"])
        return z1, z2, logits

    # labels from a teacher (the same net, weights x 1.5) with 20 % flipped, then 100 full-batch
    # SGD steps: a partly trained net, as HAWQ measures (at initialisation the cross-layer terms
    # of the Hessian dominate each layer's Hutchinson samples, 3 to 7 x the trace)
    pool = rnd(POOL, 1, 5, 5, lo=-2, hi=2)
    y = pre({k: 1.5 * v for k, v in params.items()}, pool)[2].argmax(1)
    flip = torch.rand(POOL, generator=gen) < 0.2
    y = torch.where(flip, torch.randint(0, K, (POOL,), generator=gen), y)
    ps = {k: v.clone().requires_grad_() for k, v in params.items()}
    opt = torch.optim.SGD(list(ps.values()), lr=0.5)
    for _ in range(100):
        opt.zero_grad()
        F.cross_entropy(pre(ps, pool)[2], y).backward()
        opt.step()
    params = {k: v.detach().float().double() for k, v in ps.items()}  # float32 values, as stored
    # the first N pool images whose ReLU inputs all lie 3 % of that ReLU's deviation from 0
    z1, z2, _ = pre(params, pool)
    far = (z1.abs().amin(dim=(1, 2, 3)) > 0.03 * z1.std()) & (z2.abs().amin(dim=(1, 2, 3)) > 0.03 * z2.std())
    idx = far.nonzero().flatten()[:N]
    assert idx.numel() == N
    x, y = pool[idx], y[idx]

    def loss_fn(p):
        return F.cross_entropy(pre(p, x)[2], y)

    fx.add("cnn.x", x)
    fx.add("cnn.labels", y)
    for n, _ in specs:
        fx.add("cnn." + n, params[n])
    fx.add("cnn.bn1.running_mean", rm)
    fx.add("cnn.bn1.running_var", rv)
    exact(fx, "cnn.", specs, params, loss_fn)


if __name__ == "__main__":
    fx = Fixture()
    logistic(fx)
    cnn(fx)
    fx.write(os.path.join(OUT, "hessian.mqfx"))
