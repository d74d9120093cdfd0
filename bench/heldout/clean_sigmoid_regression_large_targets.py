# clean: NN907
"""The fixed regressor: the targets are scaled into the sigmoid's range (divided by their
maximum, 100) before training.

Twin of sigmoid_regression_large_targets.py (stackoverflow.com/questions/14982358). Rewritten
in PyTorch; only the pattern is kept.
"""

import torch
from torch import nn

torch.manual_seed(0)


def make_regressor(n_features: int, hidden: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Linear(n_features, hidden),
        nn.Sigmoid(),
        nn.Linear(hidden, 1),
        nn.Sigmoid(),
    )


features = torch.randn(32, 43)
scores = torch.rand(32, 1) * 100.0
SCORE_SCALE = 100.0

model = make_regressor(43, 20)
loss_fn = nn.MSELoss()
optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
example_batch = (features, scores / SCORE_SCALE)
