# clean: NN108
"""The fixed DeepLab-style trunk: the TensorFlow decay 0.999 written as PyTorch's momentum 0.001.

Twin of deeplab_resnet_bn_momentum.py (kazuto1011/deeplab-pytorch issue #79, the fix the
maintainer applied). Rewritten; only the pattern is kept.
"""

import torch
from torch import nn

_BATCH_NORM = nn.BatchNorm2d


class _ConvBnReLU(nn.Sequential):
    def __init__(self, in_ch: int, out_ch: int, kernel_size: int, stride: int, padding: int, relu: bool = True) -> None:
        super().__init__()
        self.add_module("conv", nn.Conv2d(in_ch, out_ch, kernel_size, stride, padding, bias=False))
        self.add_module("bn", _BATCH_NORM(out_ch, eps=1e-5, momentum=1 - 0.999))
        if relu:
            self.add_module("relu", nn.ReLU())


class _Bottleneck(nn.Module):
    def __init__(self, in_ch: int, out_ch: int, stride: int) -> None:
        super().__init__()
        mid = out_ch // 4
        self.reduce = _ConvBnReLU(in_ch, mid, 1, stride, 0)
        self.conv3x3 = _ConvBnReLU(mid, mid, 3, 1, 1)
        self.increase = _ConvBnReLU(mid, out_ch, 1, 1, 0, relu=False)
        self.shortcut = _ConvBnReLU(in_ch, out_ch, 1, stride, 0, relu=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.increase(self.conv3x3(self.reduce(x))) + self.shortcut(x))


class DeepLabTrunk(nn.Sequential):
    def __init__(self, n_classes: int = 21) -> None:
        super().__init__()
        self.add_module("stem", _ConvBnReLU(3, 32, 7, 2, 3))
        self.add_module("pool", nn.MaxPool2d(3, 2, 1, ceil_mode=True))
        for index, (in_ch, out_ch, stride) in enumerate([(32, 64, 1), (64, 128, 2)]):
            self.add_module(f"layer{index + 1}", _Bottleneck(in_ch, out_ch, stride))
        self.add_module("aspp", nn.Conv2d(128, n_classes, 3, padding=1))


model = DeepLabTrunk()
loss_fn = nn.CrossEntropyLoss(ignore_index=255)
optimizer = torch.optim.SGD(model.parameters(), lr=2.5e-4, momentum=0.9)
example_input = torch.randn(32, 3, 64, 64)
