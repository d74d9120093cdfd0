# clean: NN307
"""The fixed segmenter: log_softmax over the class channel before nn.NLLLoss.

Twin of fcn_nll_on_raw_scores.py (pytorch/pytorch pull request #12703). Rewritten; only the
pattern is kept.
"""

import torch
import torch.nn.functional as F
from torch import nn


def conv_bn_relu(in_ch: int, out_ch: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(in_ch, out_ch, 3, padding=1, bias=False), nn.BatchNorm2d(out_ch), nn.ReLU(inplace=True))


class TinyFCN(nn.Module):
    def __init__(self, in_channels: int = 3, n_classes: int = 5) -> None:
        super().__init__()
        self.encoder = nn.Sequential(conv_bn_relu(in_channels, 16), conv_bn_relu(16, 32))
        self.classifier = nn.Conv2d(32, n_classes, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.log_softmax(self.classifier(self.encoder(x)), dim=1)


model = TinyFCN()
loss_fn = nn.NLLLoss()
optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
example_batch = (torch.randn(32, 3, 24, 24), torch.randint(0, 5, (32, 24, 24)))
