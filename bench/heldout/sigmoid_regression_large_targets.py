"""A regressor with a sigmoid output unit trained with MSE on targets between 0 and 100: the
output can never exceed 1, so the loss cannot fall below the targets' distance to 1 and the
saturated sigmoid passes almost no gradient.

Modeled on the Stack Overflow question "Backpropagation algorithm (Matlab): output values are
saturating to 1" (stackoverflow.com/questions/14982358: a sigmoid output node trained on target
values between 0 and 100) and the Cross Validated answer on a sigmoid last layer regressing
pixel values up to 255 (api.queryxchange.com/q/20_332591). Rewritten in PyTorch; only the
pattern is kept.
"""

import torch
from torch import nn

torch.manual_seed(0)


def make_regressor(n_features: int, hidden: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Linear(n_features, hidden),
        nn.Sigmoid(),
        nn.Linear(hidden, 1),
        nn.Sigmoid(),  # expect: NN907
    )


features = torch.randn(32, 43)  # standardized features, as in the question
scores = torch.rand(32, 1) * 100.0  # target values between 0 and 100

model = make_regressor(43, 20)
loss_fn = nn.MSELoss()
optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
example_batch = (features, scores)
