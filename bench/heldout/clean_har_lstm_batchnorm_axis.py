# clean: NN111
"""The fixed pose LSTM: the sequence is transposed to (batch, features, time) for BatchNorm1d,
so each pose coordinate gets its own statistics, and transposed back for the LSTM.

Twin of har_lstm_batchnorm_axis.py (xieyulai/LSTM-for-Human-Activity-Recognition-using-2D-Pose_Pytorch
issue #2). Rewritten; only the pattern is kept.
"""

from dataclasses import dataclass

import torch
from torch import nn


@dataclass
class HARConfig:
    n_steps: int = 32
    n_input: int = 36
    n_hidden: int = 64
    n_classes: int = 6


class PoseLSTM(nn.Module):
    def __init__(self, cfg: HARConfig = HARConfig()) -> None:
        super().__init__()
        self.bn = nn.BatchNorm1d(cfg.n_input)
        self.lstm = nn.LSTM(cfg.n_input, cfg.n_hidden, num_layers=2, batch_first=True, dropout=0.2)
        self.fc = nn.Linear(cfg.n_hidden, cfg.n_classes)

    def forward(self, poses: torch.Tensor) -> torch.Tensor:
        x = self.bn(poses.transpose(1, 2)).transpose(1, 2)
        out, _ = self.lstm(x)
        return self.fc(out[:, -1, :])


model = PoseLSTM()
loss_fn = nn.CrossEntropyLoss()
optimizer = torch.optim.Adam(model.parameters(), lr=2.5e-3)
example_input = torch.randn(32, 32, 36)
