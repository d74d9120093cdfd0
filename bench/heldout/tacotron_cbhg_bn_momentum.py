"""A Tacotron CBHG-style 1-D convolution bank "following TensorFlow's default parameters":
BatchNorm1d(momentum=0.99), which in PyTorch keeps 99 % of each new batch and 1 % of history.

Modeled on r9y9/tacotron_pytorch issue #19 ("About BatchNorm": the conv bank's BatchNorm1d used
TensorFlow's momentum and eps; the author confirmed and fixed it). Rewritten; only the pattern
is kept.
"""

from dataclasses import dataclass

import torch
from torch import nn


@dataclass
class CBHGConfig:
    in_dim: int = 80
    bank_k: int = 4
    channels: int = 64
    bn_momentum: float = 0.99  # "TensorFlow's default"
    bn_eps: float = 1e-3


class BatchNormConv1d(nn.Module):
    def __init__(self, in_dim: int, out_dim: int, kernel_size: int, cfg: CBHGConfig, activation: nn.Module | None) -> None:
        super().__init__()
        self.conv = nn.Conv1d(in_dim, out_dim, kernel_size, padding=kernel_size // 2, bias=False)
        self.bn = nn.BatchNorm1d(out_dim, momentum=cfg.bn_momentum, eps=cfg.bn_eps)  # expect: NN108
        self.activation = activation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.bn(self.conv(x))
        return self.activation(x) if self.activation is not None else x


class CBHGEncoder(nn.Module):
    def __init__(self, cfg: CBHGConfig = CBHGConfig()) -> None:
        super().__init__()
        self.bank = nn.ModuleList(
            [BatchNormConv1d(cfg.in_dim, cfg.channels, k, cfg, nn.ReLU()) for k in range(1, cfg.bank_k + 1, 2)]
        )
        bank_out = cfg.channels * len(self.bank)
        self.pool = nn.MaxPool1d(kernel_size=2, stride=1, padding=1)
        self.projection = BatchNormConv1d(bank_out, cfg.in_dim, 3, cfg, activation=None)
        self.head = nn.Linear(cfg.in_dim, cfg.in_dim)

    def forward(self, mels: torch.Tensor) -> torch.Tensor:
        steps = mels.size(-1)
        bank = torch.cat([conv(mels)[:, :, :steps] for conv in self.bank], dim=1)
        bank = self.pool(bank)[:, :, :steps]
        residual = self.projection(bank) + mels
        return self.head(residual.transpose(1, 2))


model = CBHGEncoder()
loss_fn = nn.L1Loss()
optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
example_input = torch.randn(32, 80, 40)
