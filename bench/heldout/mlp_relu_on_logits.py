"""A five-layer MNIST MLP that applies ReLU to its last layer as well and feeds the result to
nn.CrossEntropyLoss: every negative logit is clipped to zero, so the network cannot express
"not this class" and the gradient through the clipped logits is zero.

Modeled on hunkim/PyTorchZeroToAll pull request #4 ("Remove relu in the final layer", the
MNIST softmax example) and forresti/SqueezeNet issue #10 ("ReLU after classifier"). Rewritten;
only the pattern is kept.
"""

import torch
import torch.nn.functional as F
from torch import nn


class Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.l1 = nn.Linear(784, 520)
        self.l2 = nn.Linear(520, 320)
        self.l3 = nn.Linear(320, 240)
        self.l4 = nn.Linear(240, 120)
        self.l5 = nn.Linear(120, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.view(-1, 784)
        x = F.relu(self.l1(x))
        x = F.relu(self.l2(x))
        x = F.relu(self.l3(x))
        x = F.relu(self.l4(x))
        return F.relu(self.l5(x))  # expect: NN306


model = Net()
criterion = nn.CrossEntropyLoss()
loss_fn = criterion
optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.5)
example_input = torch.randn(32, 1, 28, 28)
