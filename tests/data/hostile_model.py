"""A model whose submodule name carries every character an output format must escape.

`add_module` accepts any name without a dot; the name reaches the finding's module and message.
"""

import torch
from torch import nn

HOSTILE = 'conv%0A,x=1::warning title=a:b\r\n<tag attr="v">&amp;]]>\x1b[31m\x00\ud800 ünï'


class Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.add_module(HOSTILE, nn.Conv2d(3, 8, 3))
        self.bn = nn.BatchNorm2d(8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn(getattr(self, HOSTILE)(x))


model = Net()
example_input = torch.randn(16, 3, 8, 8)
