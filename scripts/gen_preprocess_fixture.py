#!/usr/bin/python3
"""Generate the input-preprocessing fixture in tests/fixtures/onnx/ (issue 14).

Needs Debian's python3-torch and python3-onnx (scripts/deps.sh --torch). CI does not run this:
the tests read the committed files. Regenerate with:   /usr/bin/python3 scripts/gen_preprocess_fixture.py

A user's model as PyTorch tutorials make them: trained on Fashion-MNIST with torchvision's
ToTensor() alone (inputs pixel / 255 in [0, 1], no Normalize), exported with torch.onnx.export
(eval mode, opset 13, constant folding, input "input", output "logits", dynamic batch axis).
Nothing in the file says how inputs are scaled: mixq must be told (--preprocess unit).

    unit_net.onnx   conv3x3(1->8)+BN+ReLU, MaxPool2d(2), conv3x3(8->16)+BN+ReLU, MaxPool2d(2),
                    flatten, Linear(784->10); trained 500 SGD steps (deterministic: fixed seeds,
                    one thread)

and preprocess_ref.mqfx (MQFX v1, tests/fixture.h) holding:
    unit_net.input          [8,1,28,28]  the first 8 test images as the model takes them (/255)
    unit_net.logits         [8,10]       PyTorch's float32 outputs for them
    unit_net.pred           [10000]      PyTorch's predicted class of every test image
    unit_net.test_accuracy  [1]          PyTorch's accuracy on the 10000 test images, in [0,1]
"""
import os
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import gen_onnx_fixtures as g  # noqa: E402  (data reader, trainer, exporter, ONNX interpreter)
from gen_fixtures import Fixture  # noqa: E402  (the MQFX writer)


class UnitNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 8, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(8)
        self.conv2 = nn.Conv2d(8, 16, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(16)
        self.fc = nn.Linear(16 * 7 * 7, 10)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.bn1(self.conv1(x))), 2)
        x = F.max_pool2d(F.relu(self.bn2(self.conv2(x))), 2)
        return self.fc(torch.flatten(x, 1))


def load_unit(prefix):
    """The split as ToTensor() gives it: pixel / 255, no normalisation."""
    x = torch.from_numpy(g.read_idx(os.path.join(g.DATA, prefix + "-images-idx3-ubyte.gz")).copy())
    y = torch.from_numpy(g.read_idx(os.path.join(g.DATA, prefix + "-labels-idx1-ubyte.gz")).copy())
    return (x.float().unsqueeze(1) / 255.0).contiguous(), y.long()


def main():
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    xtr, ytr = load_unit("train")
    xte, yte = load_unit("t10k")
    torch.manual_seed(7)
    model = UnitNet()
    g.train(model, xtr, ytr, 500, 107)
    model.eval()
    with torch.no_grad():
        xref = xte[:g.N_REF].clone()
        logits = model(xref)
        pred = torch.cat([model(xte[i:i + 500]).argmax(1) for i in range(0, xte.shape[0], 500)])
    acc = (pred == yte).float().mean().item()
    m = g.export(model, "unit_net")
    err = (g.run_onnx(m, xref) - logits).abs().max().item()
    print("  ONNX reference interpreter vs PyTorch: max |diff| %.3g" % err)
    assert err < 1e-4, err
    print("  test accuracy %.4f (ToTensor() inputs)" % acc)
    fx = Fixture()
    fx.add("unit_net.input", xref)
    fx.add("unit_net.logits", logits)
    fx.add("unit_net.pred", pred.float())
    fx.add("unit_net.test_accuracy", torch.tensor([acc]))
    fx.write(os.path.join(g.OUT, "preprocess_ref.mqfx"))


if __name__ == "__main__":
    sys.exit(main())
