# clean: NN406
"""The fixed adapter: the classifier is frozen through its parameters (requires_grad_), and the
optimizer is given only the parameters that still train.

Twin of unet_requires_grad_on_module.py (CSCYQJ/MICCAI23-ProtoContra-SFDA issue #18). Rewritten;
only the pattern is kept.
"""

import torch
from torch import nn


class DoubleConv(nn.Module):
    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.double_conv = nn.Sequential(
            nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
            nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.double_conv(x)


class UNet(nn.Module):
    def __init__(self, n_channels: int = 1, n_classes: int = 4) -> None:
        super().__init__()
        self.inc = DoubleConv(n_channels, 16)
        self.down = nn.Sequential(nn.MaxPool2d(2), DoubleConv(16, 32))
        self.up = nn.ConvTranspose2d(32, 16, 2, stride=2)
        self.conv_up = DoubleConv(32, 16)
        self.outc = nn.Conv2d(16, n_classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x1 = self.inc(x)
        x2 = self.down(x1)
        x = self.conv_up(torch.cat([self.up(x2), x1], dim=1))
        return self.outc(x)


class PrototypeAdapter(nn.Module):
    """Adapts a source-trained UNet to a new domain with its classifier kept fixed."""

    def __init__(self) -> None:
        super().__init__()
        self.model = UNet()
        self.model.outc.requires_grad_(False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


model = PrototypeAdapter()
loss_fn = nn.CrossEntropyLoss()
optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-4)
example_input = torch.randn(32, 1, 32, 32)
