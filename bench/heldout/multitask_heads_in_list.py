"""A multi-task classifier whose per-task output layers are appended to a plain Python list:
they are not registered, so model.parameters() (and the optimizer) never see them, .to()/.cuda()
does not move them and train()/eval() does not reach them.

Modeled on pytorch/pytorch issue #15005 ("model.cuda() doesn't automatically detect layers
initialized in a list": `self.softmaxes = []` filled with nn.Linear per task) and issue #715
(hidden layers appended to a list inside __init__). Rewritten; only the pattern is kept.
"""

import torch
from torch import nn


class MultiTaskNet(nn.Module):
    def __init__(self, input_features: int = 100, num_classes: tuple[int, ...] = (5, 2, 10, 3)) -> None:
        super().__init__()
        self.shared = nn.Sequential(nn.Linear(input_features, 64), nn.ReLU())
        self.softmaxes = []  # expect: NN405
        for classes in num_classes:
            self.softmaxes.append(nn.Linear(64, classes))

    def forward(self, batch_in: torch.Tensor) -> list[torch.Tensor]:
        shared = self.shared(batch_in)
        return [head(shared) for head in self.softmaxes]


model = MultiTaskNet()
example_input = torch.randn(32, 100)
