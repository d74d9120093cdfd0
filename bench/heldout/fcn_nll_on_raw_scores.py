"""A small fully convolutional segmenter trained with nn.NLLLoss straight on the last
convolution's scores: NLLLoss expects log-probabilities, so on raw scores it just pushes the
target channel up without bound (the loss goes negative).

Modeled on pytorch/pytorch pull request #12703 ("Fix missing final activation in NLLLoss second
example": the 2-D NLLLoss example fed a convolution's output without LogSoftmax and the loss was
sometimes negative). Rewritten; only the pattern is kept.
"""

import torch
from torch import nn


def conv_bn_relu(in_ch: int, out_ch: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(in_ch, out_ch, 3, padding=1, bias=False), nn.BatchNorm2d(out_ch), nn.ReLU(inplace=True))


class TinyFCN(nn.Module):
    def __init__(self, in_channels: int = 3, n_classes: int = 5) -> None:
        super().__init__()
        self.encoder = nn.Sequential(conv_bn_relu(in_channels, 16), conv_bn_relu(16, 32))
        self.classifier = nn.Conv2d(32, n_classes, kernel_size=1)  # expect: NN307

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.encoder(x))


model = TinyFCN()
loss_fn = nn.NLLLoss()
optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
example_batch = (torch.randn(32, 3, 24, 24), torch.randint(0, 5, (32, 24, 24)))
