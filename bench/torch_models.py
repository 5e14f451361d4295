"""PyTorch twins of the mixq zoo models (same layers, names and shapes as src/nn/zoo.c)."""
import torch
import torch.nn as nn
import torch.nn.functional as F


class LeNet5(nn.Module):
    """LeNet-5 with ReLU, max pooling and batch norm after each conv (mixq's lenet5)."""

    def __init__(self, in_c=1, hw=28, classes=10):
        super().__init__()
        pad = min(2, (32 - hw + 1) // 2) if hw < 32 else 0
        self.conv1 = nn.Conv2d(in_c, 6, 5, padding=pad)
        self.bn1 = nn.BatchNorm2d(6)
        self.conv2 = nn.Conv2d(6, 16, 5)
        self.bn2 = nn.BatchNorm2d(16)
        s = (hw + 2 * pad - 4) // 2
        s = s - 4
        if s >= 2:
            s //= 2
            self.pool2 = True
        else:
            self.pool2 = False
        self.fc1 = nn.Linear(16 * s * s, 120)
        self.fc2 = nn.Linear(120, 84)
        self.fc3 = nn.Linear(84, classes)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.bn1(self.conv1(x))), 2)
        x = F.relu(self.bn2(self.conv2(x)))
        if self.pool2:
            x = F.max_pool2d(x, 2)
        x = torch.flatten(x, 1)
        return self.fc3(F.relu(self.fc2(F.relu(self.fc1(x)))))


class BasicBlock(nn.Module):
    def __init__(self, cin, planes, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = None
        if stride != 1 or cin != planes:
            self.downsample = nn.Sequential(nn.Conv2d(cin, planes, 1, stride, bias=False),
                                            nn.BatchNorm2d(planes))

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        sc = x if self.downsample is None else self.downsample(x)
        return F.relu(out + sc)


class ResNet20(nn.Module):
    def __init__(self, in_c=1, classes=10):
        super().__init__()
        self.conv1 = nn.Conv2d(in_c, 16, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        layers, cin = [], 16
        for i, planes in enumerate((16, 32, 64)):
            blocks = []
            for b in range(3):
                stride = 2 if (i > 0 and b == 0) else 1
                blocks.append(BasicBlock(cin, planes, stride))
                cin = planes
            layers.append(nn.Sequential(*blocks))
        self.layer1, self.layer2, self.layer3 = layers
        self.fc = nn.Linear(64, classes)

    def forward(self, x):
        x = F.relu(self.bn1(self.conv1(x)))
        x = self.layer3(self.layer2(self.layer1(x)))
        x = torch.flatten(F.adaptive_avg_pool2d(x, 1), 1)
        return self.fc(x)


class VGG11(nn.Module):
    """mixq's vgg11 (src/nn/zoo.c): torchvision vgg11_bn features, a max pool skipped when the
    map is already 1x1, classifier = one Linear(512 * h * w, classes)."""

    def __init__(self, in_c=3, hw=32, classes=10):
        super().__init__()
        layers, c, s = [], in_c, hw
        for v in (64, -1, 128, -1, 256, 256, -1, 512, 512, -1, 512, 512, -1):
            if v < 0:
                if s >= 2:
                    layers.append(nn.MaxPool2d(2, 2))
                    s //= 2
                else:
                    layers.append(nn.Identity())
                continue
            layers += [nn.Conv2d(c, v, 3, 1, 1), nn.BatchNorm2d(v), nn.ReLU(inplace=True)]
            c = v
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Linear(512 * s * s, classes)

    def forward(self, x):
        return self.classifier(torch.flatten(self.features(x), 1))


def build(name, in_c=1, hw=28, classes=10):
    if name == "lenet5":
        return LeNet5(in_c, hw, classes)
    if name == "resnet20":
        return ResNet20(in_c, classes)
    if name == "vgg11":
        return VGG11(in_c, hw, classes)
    raise ValueError("no PyTorch twin for " + name)
