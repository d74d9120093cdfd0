"""A segmentation UNet trained with torch.optim.Adam(weight_decay=1e-4) over every parameter:
Adam's weight_decay is L2 added to the gradient and then divided by the adaptive scale (not the
decoupled decay of AdamW), and here it also decays the BatchNorm weights and all biases.

Modeled on mapbox/robosat pull request #166 ("Removes adam's l2 regularization until fixed":
pytorch's Adam weight decay is L2 regularization, not what was wanted). Rewritten; only the
pattern is kept.
"""

import torch
from torch import nn


def block(num_in: int, num_out: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(num_in, num_out, kernel_size=3, padding=1, bias=False),
        nn.BatchNorm2d(num_out),
        nn.ReLU(inplace=True),
        nn.Conv2d(num_out, num_out, kernel_size=3, padding=1, bias=False),
        nn.BatchNorm2d(num_out),
        nn.ReLU(inplace=True),
    )


class UNet(nn.Module):
    def __init__(self, num_classes: int = 2, num_filters: int = 16) -> None:
        super().__init__()
        self.enc0 = block(3, num_filters)
        self.enc1 = block(num_filters, num_filters * 2)
        self.pool = nn.MaxPool2d(2)
        self.up = nn.Upsample(scale_factor=2, mode="nearest")
        self.dec0 = block(num_filters * 3, num_filters)
        self.final = nn.Conv2d(num_filters, num_classes, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        enc0 = self.enc0(x)
        enc1 = self.enc1(self.pool(enc0))
        dec0 = self.dec0(torch.cat([enc0, self.up(enc1)], dim=1))
        return self.final(dec0)


model = UNet()
loss_fn = nn.CrossEntropyLoss()
optimizer = torch.optim.Adam(model.parameters(), lr=1e-4, weight_decay=1e-4)  # expect: NN501, NN502
example_input = torch.randn(32, 3, 32, 32)
