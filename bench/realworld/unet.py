"""A U-Net for segmentation, the way Pytorch-UNet writes it (double convolutions, max-pool down,
transposed-convolution up with a skip concatenation, padded to the skip's size).

Pattern: milesial/Pytorch-UNet, unet/unet_parts.py (DoubleConv, Down, Up, OutConv) and
unet/unet_model.py (UNet(n_channels, n_classes, bilinear)); rewritten here, sizes as train.py
builds it (3 channels, 2 classes).
"""

import torch
import torch.nn.functional as F
from torch import nn


def double_conv(inputs: int, outputs: int, middle: int | None = None) -> nn.Sequential:
    middle = middle or outputs
    return nn.Sequential(
        nn.Conv2d(inputs, middle, kernel_size=3, padding=1, bias=False),
        nn.BatchNorm2d(middle),
        nn.ReLU(inplace=True),
        nn.Conv2d(middle, outputs, kernel_size=3, padding=1, bias=False),
        nn.BatchNorm2d(outputs),
        nn.ReLU(inplace=True),
    )


class Down(nn.Module):
    def __init__(self, inputs: int, outputs: int) -> None:
        super().__init__()
        self.pool_conv = nn.Sequential(nn.MaxPool2d(2), double_conv(inputs, outputs))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool_conv(x)


class Up(nn.Module):
    def __init__(self, inputs: int, outputs: int) -> None:
        super().__init__()
        self.up = nn.ConvTranspose2d(inputs, inputs // 2, kernel_size=2, stride=2)
        self.conv = double_conv(inputs, outputs)

    def forward(self, low: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        low = self.up(low)
        dy, dx = skip.size(2) - low.size(2), skip.size(3) - low.size(3)
        low = F.pad(low, [dx // 2, dx - dx // 2, dy // 2, dy - dy // 2])
        return self.conv(torch.cat([skip, low], dim=1))


class UNet(nn.Module):
    def __init__(self, n_channels: int, n_classes: int) -> None:
        super().__init__()
        self.inc = double_conv(n_channels, 64)
        self.down1, self.down2, self.down3, self.down4 = Down(64, 128), Down(128, 256), Down(256, 512), Down(512, 1024)
        self.up1, self.up2, self.up3, self.up4 = Up(1024, 512), Up(512, 256), Up(256, 128), Up(128, 64)
        self.outc = nn.Conv2d(64, n_classes, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x1 = self.inc(x)
        x2 = self.down1(x1)
        x3 = self.down2(x2)
        x4 = self.down3(x3)
        x = self.up1(self.down4(x4), x4)
        x = self.up2(x, x3)
        x = self.up3(x, x2)
        return self.outc(self.up4(x, x1))


model = UNet(n_channels=3, n_classes=2)
