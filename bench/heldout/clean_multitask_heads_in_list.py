# clean: NN405
"""The fixed multi-task classifier: the per-task heads live in an nn.ModuleList.

Twin of multitask_heads_in_list.py (pytorch/pytorch issues #15005 and #715). Rewritten; only the
pattern is kept.
"""

import torch
from torch import nn


class MultiTaskNet(nn.Module):
    def __init__(self, input_features: int = 100, num_classes: tuple[int, ...] = (5, 2, 10, 3)) -> None:
        super().__init__()
        self.shared = nn.Sequential(nn.Linear(input_features, 64), nn.ReLU())
        self.softmaxes = nn.ModuleList()
        for classes in num_classes:
            self.softmaxes.append(nn.Linear(64, classes))

    def forward(self, batch_in: torch.Tensor) -> list[torch.Tensor]:
        shared = self.shared(batch_in)
        return [head(shared) for head in self.softmaxes]


model = MultiTaskNet()
example_input = torch.randn(32, 100)
