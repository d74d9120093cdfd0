"""An FCN decoder written conv-transpose -> ReLU -> BatchNorm: each BatchNorm normalizes the
half-rectified output of a ReLU instead of the pre-activation, the order the BatchNorm paper
and the lecture recommend against.

Modeled on pochih/FCN-pytorch issue #21 ("why 'cnn-relu-bn' not 'cnn-bn-relu'":
`score = self.bn1(self.relu(self.deconv1(x5)))` in the FCN decoders) and dragen1860/MAML-Pytorch
issue #39 ("Conv-ReLU-BN issue"). Rewritten; only the pattern is kept.
"""

import torch
from torch import nn


class Encoder(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.stages = nn.Sequential(
            nn.Conv2d(3, 32, 3, stride=2, padding=1, bias=False),
            nn.BatchNorm2d(32),
            nn.ReLU(inplace=True),
            nn.Conv2d(32, 64, 3, stride=2, padding=1, bias=False),
            nn.BatchNorm2d(64),
            nn.ReLU(inplace=True),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.stages(x)


class FCNs(nn.Module):
    def __init__(self, n_class: int = 5) -> None:
        super().__init__()
        self.pretrained_net = Encoder()
        self.relu = nn.ReLU(inplace=True)
        self.deconv1 = nn.ConvTranspose2d(64, 32, kernel_size=3, stride=2, padding=1, output_padding=1)
        self.bn1 = nn.BatchNorm2d(32)  # expect: NN103
        self.deconv2 = nn.ConvTranspose2d(32, 16, kernel_size=3, stride=2, padding=1, output_padding=1)
        self.bn2 = nn.BatchNorm2d(16)  # expect: NN103
        self.classifier = nn.Conv2d(16, n_class, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x5 = self.pretrained_net(x)
        score = self.bn1(self.relu(self.deconv1(x5)))
        score = self.bn2(self.relu(self.deconv2(score)))
        return self.classifier(score)


model = FCNs()
loss_fn = nn.CrossEntropyLoss()
optimizer = torch.optim.RMSprop(model.parameters(), lr=1e-4, momentum=0.0)
example_input = torch.randn(32, 3, 32, 32)
