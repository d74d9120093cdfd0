"""A Nature-DQN style CNN pretrained by behaviour cloning on stacked Atari frames fed as raw
0..255 pixel values: the first convolution sees inputs two orders of magnitude larger than its
initialization assumes.

Modeled on hill-a/stable-baselines issue #328 ("Image data between 0 - 255 and not between
0 - 1": the pretraining path fed unnormalized image observations) and isht7/pytorch-deeplab-resnet
issue #11 (input values in the 140s). Rewritten; only the pattern is kept.
"""

import torch
from torch import nn


class NatureCNN(nn.Module):
    def __init__(self, n_stack: int = 4, n_actions: int = 6) -> None:
        super().__init__()
        self.cnn = nn.Sequential(
            nn.Conv2d(n_stack, 32, kernel_size=8, stride=4),
            nn.ReLU(),
            nn.Conv2d(32, 64, kernel_size=4, stride=2),
            nn.ReLU(),
            nn.Conv2d(64, 64, kernel_size=3, stride=1),
            nn.ReLU(),
            nn.Flatten(),
        )
        self.linear = nn.Sequential(nn.Linear(64 * 7 * 7, 512), nn.ReLU())
        self.action_net = nn.Linear(512, n_actions)

    def forward(self, observations: torch.Tensor) -> torch.Tensor:
        return self.action_net(self.linear(self.cnn(observations)))


frames = torch.randint(0, 256, (32, 4, 84, 84), dtype=torch.uint8)
expert_actions = torch.randint(0, 6, (32,))

model = NatureCNN()
loss_fn = nn.CrossEntropyLoss()
optimizer = torch.optim.Adam(model.parameters(), lr=2.5e-4)
example_batch = (frames.float(), expert_actions)  # expect: NN701
