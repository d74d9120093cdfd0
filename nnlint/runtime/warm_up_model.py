"""A small model that the CLI lints once in its own process before forking the children that lint
the user's files (nnlint/isolation.py): the first lint in a process fills caches (torch's dispatch
and fx's generated code, nnlint's rule tables, source lookups) that every forked child would
otherwise fill again. Layers of the kinds most model files use, called both ways (modules and
torch.nn.functional), so that the common paths are the warm ones. Never imported by nnlint itself.
"""

import torch
import torch.nn.functional as F
from torch import nn


class WarmUpNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1, bias=False)
        self.norm = nn.BatchNorm2d(8)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.drop = nn.Dropout(0.1)
        self.head = nn.Linear(8, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.norm(self.conv(x)))
        x = torch.flatten(self.pool(x), 1)
        return self.head(self.drop(x))


model = WarmUpNet()
example_input = torch.randn(2, 3, 8, 8)
