#!/usr/bin/python3
"""Generate the ONNX importer fixtures in tests/fixtures/onnx/.

Needs Debian's python3-torch and python3-onnx (scripts/deps.sh --torch). CI does not run this:
the tests read the committed files. Regenerate with:
    /usr/bin/python3 scripts/gen_onnx_fixtures.py [base] [ops]
(both groups by default; a group rewrites only its own files: "base" the first four models and
onnx_ref.mqfx, "ops" the last four and onnx_ops_ref.mqfx. Training is deterministic on one
machine, but the weights a re-run gives elsewhere may differ, reference logits with them.)

It trains small CNNs briefly on Fashion-MNIST (fixed seeds, one thread) and exports them with
torch.onnx.export (eval mode, opset 13, constant folding, input "input", output "logits",
dynamic batch axis, PyTorch's default module-derived names):

    resnet_tiny.onnx  conv3x3+BN+ReLU, two residual basic blocks (the second with stride 2 and a
                      1x1 conv+BN shortcut), global average pool, flatten, Linear(16->10)
    dw_tiny.onnx      conv3x3+BN+ReLU6, depthwise-separable block (ReLU6), MaxPool2d(2),
                      depthwise stride-2 conv+BN+ReLU6, pointwise+BN+ReLU, AvgPool2d(2),
                      flatten, Dropout, Linear(288->10)
    bad_pad.onnx      ZeroPad2d((0,1,0,1)) then an unpadded stride-2 conv (asymmetric padding: a
                      Pad node in front of the Conv), ReLU, flatten, Linear(392->10); untrained
                      (seeded init). PyTorch 1.13 computes the Pad's `pads` input with a
                      subgraph of Constant/ConstantOfShape/Concat/Reshape/Slice(step -1)/
                      Transpose/Reshape/Cast nodes that its constant folding cannot fold.
    pad_folded.onnx   bad_pad.onnx with that subgraph folded here into one int64 initializer
                      "/pad/Pad_pads" = [0,0,0,0, 0,0,1,1] (what onnx-simplifier would give)
    mbv2_tiny.onnx    MobileNet-V2/V3 style: conv3x3+BN+ReLU6; an inverted residual (expand 1x1
                      x3, depthwise 3x3, ReLU6, linear 1x1 bottleneck, residual add); a stride-2
                      inverted residual with hard swish and a squeeze-and-excitation block
                      (GAP, 1x1 conv, ReLU, 1x1 conv, Hardsigmoid, `scale * x`: the per-channel
                      factor first); a residual one with hard swish and SE; 1x1 conv+BN+hard
                      swish, GAP, flatten, Linear(32->10). At opset 13 PyTorch writes Hardswish
                      as HardSigmoid(alpha 1/6) + Mul and Hardsigmoid as HardSigmoid.
    mbv2_tiny_op14.onnx  the same model at opset 14: Hardswish as the HardSwish operator
    squeeze_tiny.onnx SqueezeNet style: conv3x3+ReLU, MaxPool2d(2), two Fire modules (squeeze
                      1x1, expand 1x1 and 3x3, ReLU, Concat), MaxPool2d(3, 2), a Fire module,
                      Dropout, conv1x1 to 10 classes, ReLU, global average pool, flatten;
                      torchvision's SqueezeNet initialisation (Kaiming-uniform convs, the last
                      conv N(0, 0.01), zero biases: PyTorch's default dies at 2.3026 here)
    asym_tiny.onnx    asymmetric padding and non-square kernels: ZeroPad2d((0,1,0,1)) + 3x3
                      stride-2 conv (the Pad from the ConstantOfShape/Slice chain), 1x3 and 3x1
                      convs (pads (0,1) / (1,0)), a 3x3 conv with strides (2,1), ZeroPad2d((1,0,
                      0,1)) + AvgPool2d(2), then three branches concatenated: 1x1 conv+Sigmoid,
                      1x3 conv+ReLU, MaxPool2d((3,1), 1, (1,0)); flatten, Linear(->10)

and writes onnx_ref.mqfx ("base") and onnx_ops_ref.mqfx ("ops") (MQFX v1, the format of
tests/fixture.h) holding, per model M:
    M.input          [8,1,28,28]  the first 8 Fashion-MNIST test images, normalised
                                  ((x/255 - 0.2860) / 0.3530)
    M.logits         [8,10]       PyTorch's float32 eval-mode outputs for M.input
    M.labels         [8]          the images' labels, as floats
    M.test_accuracy  [1]          PyTorch's accuracy on the 10000 test images, in [0,1]
                                  (resnet_tiny and dw_tiny only)
with M in resnet_tiny, dw_tiny, bad_pad (onnx_ref.mqfx) and mbv2_tiny, squeeze_tiny, asym_tiny
(onnx_ops_ref.mqfx); test_accuracy for the trained ones. pad_folded.onnx has bad_pad's weights: test it against the bad_pad.*
tensors; mbv2_tiny_op14.onnx has mbv2_tiny's: test it against the mbv2_tiny.* tensors.

Each exported graph is also run by a small reference interpreter here (torch.nn.functional on
the ONNX initializers), and must reproduce M.logits, so the files are self-consistent.
"""
import gzip
import os
import struct
import sys
import warnings

import numpy as np
import onnx
import torch
import torch.nn as nn
import torch.nn.functional as F
from onnx import numpy_helper

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "tests", "fixtures", "onnx")
DATA = "/usr/share/datasets/fashion-mnist"
MEAN, STD = 0.2860, 0.3530
OPSET = 13
N_REF = 8

sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "bench"))
from gen_fixtures import Fixture  # noqa: E402  (the MQFX writer)
from torch_models import BasicBlock  # noqa: E402  (the same block as bench/ and the fixtures)


# ----------------------------------------------------------------------------------------- data

def read_idx(path):
    with gzip.open(path, "rb") as f:
        raw = f.read()
    magic, = struct.unpack(">I", raw[:4])
    nd = magic & 0xFF
    dims = struct.unpack(">%dI" % nd, raw[4:4 + 4 * nd])
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * nd).reshape(dims)


def load_split(prefix):
    x = read_idx(os.path.join(DATA, prefix + "-images-idx3-ubyte.gz"))
    y = read_idx(os.path.join(DATA, prefix + "-labels-idx1-ubyte.gz"))
    x = torch.from_numpy(x.astype(np.float32)).unsqueeze(1)
    x = (x / 255.0 - MEAN) / STD
    return x.contiguous(), torch.from_numpy(y.astype(np.int64))


# --------------------------------------------------------------------------------------- models

class ResNetTiny(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 8, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(8)
        self.layer1 = nn.Sequential(BasicBlock(8, 8, 1))
        self.layer2 = nn.Sequential(BasicBlock(8, 16, 2))
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(16, 10)

    def forward(self, x):
        x = F.relu(self.bn1(self.conv1(x)))
        x = self.layer2(self.layer1(x))
        x = torch.flatten(self.avgpool(x), 1)
        return self.fc(x)


class DwTiny(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 8, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(8)
        self.dw1 = nn.Conv2d(8, 8, 3, 1, 1, groups=8, bias=False)
        self.dw1_bn = nn.BatchNorm2d(8)
        self.pw1 = nn.Conv2d(8, 16, 1, bias=False)
        self.pw1_bn = nn.BatchNorm2d(16)
        self.pool1 = nn.MaxPool2d(2)
        self.dw2 = nn.Conv2d(16, 16, 3, 2, 1, groups=16, bias=False)
        self.dw2_bn = nn.BatchNorm2d(16)
        self.pw2 = nn.Conv2d(16, 32, 1, bias=False)
        self.pw2_bn = nn.BatchNorm2d(32)
        self.pool2 = nn.AvgPool2d(2)          # 7x7 -> 3x3 (floor)
        self.relu6 = nn.ReLU6()
        self.relu = nn.ReLU()
        self.dropout = nn.Dropout(0.2)
        self.fc = nn.Linear(32 * 3 * 3, 10)

    def forward(self, x):
        x = self.relu6(self.bn1(self.conv1(x)))
        x = self.relu6(self.dw1_bn(self.dw1(x)))
        x = self.relu6(self.pw1_bn(self.pw1(x)))
        x = self.pool1(x)
        x = self.relu6(self.dw2_bn(self.dw2(x)))
        x = self.relu(self.pw2_bn(self.pw2(x)))
        x = torch.flatten(self.pool2(x), 1)
        return self.fc(self.dropout(x))


class SE(nn.Module):
    """Squeeze-and-excitation as torchvision's MobileNetV3 (scale * input)."""

    def __init__(self, c, r):
        super().__init__()
        self.fc1 = nn.Conv2d(c, r, 1)
        self.fc2 = nn.Conv2d(r, c, 1)
        self.gate = nn.Hardsigmoid()

    def forward(self, x):
        s = F.adaptive_avg_pool2d(x, 1)
        s = self.gate(self.fc2(F.relu(self.fc1(s))))
        return s * x


class InvertedResidual(nn.Module):
    """MobileNetV2's block (expand 1x1, depthwise 3x3, linear 1x1), with V3's options: hard swish
    instead of ReLU6 and squeeze-and-excitation after the depthwise conv."""

    def __init__(self, cin, cout, expand, stride, hswish=False, se=False):
        super().__init__()
        hid = cin * expand
        act = nn.Hardswish if hswish else nn.ReLU6
        self.expand = nn.Sequential(nn.Conv2d(cin, hid, 1, bias=False), nn.BatchNorm2d(hid), act())
        self.dw = nn.Sequential(nn.Conv2d(hid, hid, 3, stride, 1, groups=hid, bias=False),
                                nn.BatchNorm2d(hid), act())
        self.se = SE(hid, max(4, hid // 4)) if se else nn.Identity()
        self.project = nn.Sequential(nn.Conv2d(hid, cout, 1, bias=False), nn.BatchNorm2d(cout))
        self.residual = stride == 1 and cin == cout

    def forward(self, x):
        y = self.project(self.se(self.dw(self.expand(x))))
        return x + y if self.residual else y


class Mbv2Tiny(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(1, 8, 3, 1, 1, bias=False), nn.BatchNorm2d(8), nn.ReLU6())
        self.block1 = InvertedResidual(8, 8, 3, 1)
        self.block2 = InvertedResidual(8, 16, 3, 2, hswish=True, se=True)
        self.block3 = InvertedResidual(16, 16, 2, 1, hswish=True, se=True)
        self.head = nn.Sequential(nn.Conv2d(16, 32, 1, bias=False), nn.BatchNorm2d(32), nn.Hardswish())
        self.fc = nn.Linear(32, 10)

    def forward(self, x):
        x = self.block3(self.block2(self.block1(self.stem(x))))
        x = torch.flatten(F.adaptive_avg_pool2d(self.head(x), 1), 1)
        return self.fc(x)


class Fire(nn.Module):
    def __init__(self, cin, squeeze, e1, e3):
        super().__init__()
        self.squeeze = nn.Conv2d(cin, squeeze, 1)
        self.expand1x1 = nn.Conv2d(squeeze, e1, 1)
        self.expand3x3 = nn.Conv2d(squeeze, e3, 3, padding=1)

    def forward(self, x):
        x = F.relu(self.squeeze(x))
        return torch.cat([F.relu(self.expand1x1(x)), F.relu(self.expand3x3(x))], 1)


class SqueezeTiny(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 16, 3, 1, 1)
        self.fire2 = Fire(16, 4, 8, 8)
        self.fire3 = Fire(16, 4, 8, 8)
        self.fire4 = Fire(16, 8, 16, 16)
        self.dropout = nn.Dropout(0.2)
        self.conv10 = nn.Conv2d(32, 10, 1)
        for mod in self.modules():
            if isinstance(mod, nn.Conv2d):
                if mod is self.conv10:
                    nn.init.normal_(mod.weight, 0, 0.01)
                else:
                    nn.init.kaiming_uniform_(mod.weight)
                nn.init.constant_(mod.bias, 0)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)          # 14x14
        x = F.max_pool2d(self.fire3(self.fire2(x)), 3, 2)   # 6x6
        x = F.relu(self.conv10(self.dropout(self.fire4(x))))
        return torch.flatten(F.adaptive_avg_pool2d(x, 1), 1)


class AsymTiny(nn.Module):
    def __init__(self):
        super().__init__()
        self.pad1 = nn.ZeroPad2d((0, 1, 0, 1))              # (left, right, top, bottom)
        self.conv1 = nn.Conv2d(1, 8, 3, 2, 0)               # 29x29 -> 14x14
        self.conv1x3 = nn.Conv2d(8, 8, (1, 3), 1, (0, 1), bias=False)
        self.bn1x3 = nn.BatchNorm2d(8)
        self.conv3x1 = nn.Conv2d(8, 8, (3, 1), 1, (1, 0), bias=False)
        self.bn3x1 = nn.BatchNorm2d(8)
        self.conv_s21 = nn.Conv2d(8, 12, 3, (2, 1), 1)       # 14x14 -> 7x14
        self.pad2 = nn.ZeroPad2d((1, 0, 0, 1))              # 7x14 -> 8x15
        self.pool = nn.AvgPool2d(2)                         # -> 4x7
        self.b1 = nn.Conv2d(12, 6, 1)
        self.b2 = nn.Conv2d(12, 6, (1, 3), 1, (0, 1))
        self.b3 = nn.MaxPool2d((3, 1), 1, (1, 0))
        self.fc = nn.Linear((6 + 6 + 12) * 4 * 7, 10)

    def forward(self, x):
        x = F.relu(self.conv1(self.pad1(x)))
        x = F.relu(self.bn1x3(self.conv1x3(x)))
        x = F.relu(self.bn3x1(self.conv3x1(x)))
        x = self.pool(self.pad2(F.relu(self.conv_s21(x))))
        x = torch.cat([torch.sigmoid(self.b1(x)), F.relu(self.b2(x)), self.b3(x)], 1)
        return self.fc(torch.flatten(x, 1))


class BadPad(nn.Module):
    def __init__(self):
        super().__init__()
        self.pad = nn.ZeroPad2d((0, 1, 0, 1))  # (left, right, top, bottom): 28x28 -> 29x29
        self.conv = nn.Conv2d(1, 2, 3, 2, 0)   # -> 14x14; the last row/column reads the pad
        self.fc = nn.Linear(2 * 14 * 14, 10)

    def forward(self, x):
        x = F.relu(self.conv(self.pad(x)))
        return self.fc(torch.flatten(x, 1))


# ------------------------------------------------------------------------------------- training

def train(model, xtr, ytr, steps, seed, batch=64, lr=0.05):
    g = torch.Generator().manual_seed(seed)
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9, weight_decay=5e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps)
    model.train()
    for step in range(steps):
        idx = torch.randint(0, xtr.shape[0], (batch,), generator=g)
        loss = F.cross_entropy(model(xtr[idx]), ytr[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        if step % 100 == 0 or step == steps - 1:
            print("  step %4d  loss %.4f" % (step, loss.item()))
    model.eval()


@torch.no_grad()
def accuracy(model, x, y):
    model.eval()
    correct = 0
    for i in range(0, x.shape[0], 500):
        correct += (model(x[i:i + 500]).argmax(1) == y[i:i + 500]).sum().item()
    return correct / x.shape[0]


# --------------------------------------------------------------------------------------- export

def export(model, name, opset=OPSET):
    path = os.path.join(OUT, name + ".onnx")
    model.eval()
    torch.onnx.export(model, torch.zeros(1, 1, 28, 28), path, export_params=True,
                      opset_version=opset, do_constant_folding=True,
                      training=torch.onnx.TrainingMode.EVAL,
                      input_names=["input"], output_names=["logits"],
                      dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}})
    m = onnx.load(path)
    onnx.checker.check_model(m)
    print("exported %s (%d bytes), ops: %s" % (path, os.path.getsize(path),
                                               [n.op_type for n in m.graph.node]))
    return m


def attr_dict(node):
    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


def describe(m):
    """Print everything the C importer is written against."""
    print("  ir_version %d, opsets %s, producer %s %s" % (
        m.ir_version, [(o.domain or "ai.onnx", o.version) for o in m.opset_import],
        m.producer_name, m.producer_version))

    def vi(v):
        t = v.type.tensor_type
        dims = [d.dim_param if d.dim_param else d.dim_value for d in t.shape.dim]
        return "%s %s %s" % (v.name, onnx.TensorProto.DataType.Name(t.elem_type), dims)

    for v in m.graph.input:
        print("  graph input  " + vi(v))
    for v in m.graph.output:
        print("  graph output " + vi(v))
    for t in m.graph.initializer:
        a = numpy_helper.to_array(t)
        extra = (" = %s" % a.tolist()) if a.size <= 4 else ""
        print("  initializer %-28s %-7s %s%s" % (t.name, onnx.TensorProto.DataType.Name(t.data_type),
                                               list(t.dims), extra))
    for n in m.graph.node:
        at = attr_dict(n)
        if n.op_type in ("Constant", "ConstantOfShape"):
            v = numpy_helper.to_array(at["value"])
            at = {"value": "%s%s %s" % (v.dtype, list(v.shape), v.tolist())}
        print("  %-18s %-32s in=%s out=%s %s" % (n.op_type, n.name, list(n.input), list(n.output),
                                               at if at else ""))


# ------------------------------------------------------------------- reference ONNX interpreter

DTYPES = {onnx.TensorProto.FLOAT: torch.float32, onnx.TensorProto.INT64: torch.int64}


def run_onnx(m, x, want=None):
    """Minimal interpreter for the ops these exports use (float32 NCHW activations, plus the
    int64 shape arithmetic PyTorch emits in front of Pad). Returns the graph output, or the value
    named `want`."""
    env = {t.name: torch.from_numpy(numpy_helper.to_array(t).copy()) for t in m.graph.initializer}
    env[m.graph.input[0].name] = x
    for n in m.graph.node:
        a = attr_dict(n)
        i = [env[s] if s else None for s in n.input]
        op = n.op_type
        if op == "Constant":
            y = torch.from_numpy(numpy_helper.to_array(a["value"]).copy())
        elif op == "Conv":
            p = list(a.get("pads", [0, 0, 0, 0]))
            assert a.get("auto_pad", b"NOTSET") in (b"NOTSET", "NOTSET")
            xin = F.pad(i[0], (p[1], p[3], p[0], p[2]))
            y = F.conv2d(xin, i[1], i[2] if len(i) > 2 else None, list(a.get("strides", [1, 1])),
                         0, list(a.get("dilations", [1, 1])), a.get("group", 1))
        elif op == "Relu":
            y = F.relu(i[0])
        elif op == "Sigmoid":
            y = torch.sigmoid(i[0])
        elif op == "HardSigmoid":
            y = torch.clamp(a.get("alpha", 0.2) * i[0] + a.get("beta", 0.5), 0, 1)
        elif op == "HardSwish":
            y = i[0] * torch.clamp(i[0] / 6 + 0.5, 0, 1)
        elif op == "Mul":
            y = i[0] * i[1]
        elif op == "Clip":
            lo = i[1] if len(i) > 1 and i[1] is not None else None
            hi = i[2] if len(i) > 2 and i[2] is not None else None
            y = torch.clamp(i[0], lo.item() if lo is not None else None,
                            hi.item() if hi is not None else None)
        elif op == "Add":
            y = i[0] + i[1]
        elif op == "GlobalAveragePool":
            y = i[0].mean(dim=(2, 3), keepdim=True)
        elif op in ("MaxPool", "AveragePool"):
            k = list(a["kernel_shape"])
            s = list(a.get("strides", [1, 1]))
            p = list(a.get("pads", [0, 0, 0, 0]))
            assert not a.get("ceil_mode", 0)
            if op == "MaxPool":
                xin = F.pad(i[0], (p[1], p[3], p[0], p[2]), value=-float("inf"))
                y = F.max_pool2d(xin, k, s, 0)
            else:
                assert a.get("count_include_pad", 0) or not any(p)
                y = F.avg_pool2d(F.pad(i[0], (p[1], p[3], p[0], p[2])), k, s, 0)
        elif op == "Flatten":
            ax = a.get("axis", 1)
            y = i[0].reshape(int(np.prod(i[0].shape[:ax])), -1)
        elif op == "Reshape":
            shape = [int(v) for v in i[1].tolist()]
            shape = [i[0].shape[d] if v == 0 else v for d, v in enumerate(shape)]
            y = i[0].reshape(shape)
        elif op == "Gemm":
            A, B = i[0], i[1]
            if a.get("transA", 0):
                A = A.t()
            if a.get("transB", 0):
                B = B.t()
            y = a.get("alpha", 1.0) * (A @ B)
            if len(i) > 2 and i[2] is not None:
                y = y + a.get("beta", 1.0) * i[2]
        elif op == "Pad":
            assert a.get("mode", b"constant") in (b"constant", "constant")
            p = [int(v) for v in i[1].tolist()]           # [x1_begin.., x1_end..]
            r = len(p) // 2
            val = i[2].item() if len(i) > 2 and i[2] is not None else 0.0
            tp = []
            for d in reversed(range(r)):
                tp += [p[d], p[d + r]]
            y = F.pad(i[0], tp, value=val)
        elif op == "ConstantOfShape":
            v = numpy_helper.to_array(a["value"]).reshape(-1)[0]
            y = torch.from_numpy(np.full([int(d) for d in i[0].tolist()], v))
        elif op == "Concat":
            y = torch.cat(i, a["axis"])
        elif op == "Slice":
            d = i[0].numpy()
            axes = i[3].tolist() if len(i) > 3 and i[3] is not None else list(range(len(i[1])))
            steps = i[4].tolist() if len(i) > 4 and i[4] is not None else [1] * len(axes)
            sl = [slice(None)] * d.ndim
            for ax, st, en, sp in zip(axes, i[1].tolist(), i[2].tolist(), steps):
                sl[ax] = slice(st, en, sp)
            y = torch.from_numpy(d[tuple(sl)].copy())
        elif op == "Transpose":
            y = i[0].permute(list(a["perm"])).contiguous()
        elif op == "Cast":
            y = i[0].to(DTYPES[a["to"]])
        elif op == "Identity":
            y = i[0]
        else:
            raise NotImplementedError(op)
        env[n.output[0]] = y
    return env[want if want else m.graph.output[0].name]


def fold_pad_pads(m, x):
    """A copy of m where every Pad's `pads` input is an int64 initializer (named after the Pad)
    and the shape-arithmetic nodes that computed it are removed: the form onnx-simplifier or
    onnxruntime's constant folding would give."""
    m2 = onnx.ModelProto()
    m2.CopyFrom(m)
    g = m2.graph
    for n in g.node:
        if n.op_type == "Pad":
            pads = run_onnx(m, x, want=n.input[1]).to(torch.int64).numpy()
            name = n.name + "_pads"
            g.initializer.append(numpy_helper.from_array(pads, name))
            n.input[1] = name
    while True:                                            # drop nodes nobody reads
        used = {s for n in g.node for s in n.input} | {o.name for o in g.output}
        dead = [n for n in g.node if not any(o in used for o in n.output)]
        if not dead:
            break
        for n in dead:
            g.node.remove(n)
    onnx.checker.check_model(m2)
    return m2


# ----------------------------------------------------------------------------------------- main

def main():
    warnings.filterwarnings("ignore", message="Constant folding - Only steps=1")
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    os.makedirs(OUT, exist_ok=True)
    xtr, ytr = load_split("train")
    xte, yte = load_split("t10k")
    print("train %s, test %s" % (tuple(xtr.shape), tuple(xte.shape)))
    xref, yref = xte[:N_REF].clone(), yte[:N_REF].clone()

    groups = {"base": ("onnx_ref.mqfx", (("resnet_tiny", ResNetTiny, 1, 600),
                                         ("dw_tiny", DwTiny, 2, 600),
                                         ("bad_pad", BadPad, 3, 0))),
              "ops": ("onnx_ops_ref.mqfx", (("mbv2_tiny", Mbv2Tiny, 4, 600),
                                            ("squeeze_tiny", SqueezeTiny, 5, 600),
                                            ("asym_tiny", AsymTiny, 6, 600)))}
    wanted = sys.argv[1:] or list(groups)
    for g in wanted:
        if g not in groups:
            sys.exit("unknown group %r: base or ops" % g)
    for g in wanted:
        gen_group(groups[g][0], groups[g][1], xtr, ytr, xte, yte, xref, yref)


def gen_group(fxname, models_, xtr, ytr, xte, yte, xref, yref):
    fx = Fixture()
    for name, cls, seed, steps in models_:
        print("== %s" % name)
        torch.manual_seed(seed)
        model = cls()
        if steps:
            train(model, xtr, ytr, steps, seed + 100)
        model.eval()
        with torch.no_grad():
            logits = model(xref)
        m = export(model, name)
        describe(m)
        models = [(name, m)]
        if name == "bad_pad":
            m2 = fold_pad_pads(m, xref)
            onnx.save(m2, os.path.join(OUT, "pad_folded.onnx"))
            print("== pad_folded (bad_pad with the Pad's pads folded to an initializer), "
                  "%d bytes" % os.path.getsize(os.path.join(OUT, "pad_folded.onnx")))
            describe(m2)
            models.append(("pad_folded", m2))
        if name == "mbv2_tiny":
            m14 = export(model, "mbv2_tiny_op14", opset=14)
            describe(m14)
            models.append(("mbv2_tiny_op14", m14))
        for mname, mm in models:
            got = run_onnx(mm, xref)
            err = (got - logits).abs().max().item()
            print("  %s: ONNX reference interpreter vs PyTorch: max |diff| %.3g" % (mname, err))
            assert err < 1e-4, err
        fx.add(name + ".input", xref)
        fx.add(name + ".logits", logits)
        fx.add(name + ".labels", yref)
        if steps:
            acc = accuracy(model, xte, yte)
            print("  test accuracy %.4f" % acc)
            assert acc > 0.5, "%s did not learn" % name
            fx.add(name + ".test_accuracy", torch.tensor([acc]))
        print("  params %d" % sum(p.numel() for p in model.parameters()))
    fx.write(os.path.join(OUT, fxname))


if __name__ == "__main__":
    sys.exit(main())
