"""An LSTM activity recognizer on 2-D pose sequences that puts BatchNorm1d(n_steps) in front of
the LSTM on a (batch, time, features) tensor: BatchNorm1d reads dimension 1 as channels, so it
keeps one statistic per time step pooled over the 36 pose coordinates instead of one per
coordinate.

Modeled on xieyulai/LSTM-for-Human-Activity-Recognition-using-2D-Pose_Pytorch issue #2 ("Batch
Norm operation needs transpose of input shape": the notebook feeds [batch, timesteps, features]
to BatchNorm1d). Rewritten; only the pattern is kept.
"""

from dataclasses import dataclass

import torch
from torch import nn


@dataclass
class HARConfig:
    n_steps: int = 32
    n_input: int = 36  # 18 joints x (x, y)
    n_hidden: int = 64
    n_classes: int = 6


class PoseLSTM(nn.Module):
    def __init__(self, cfg: HARConfig = HARConfig()) -> None:
        super().__init__()
        self.bn = nn.BatchNorm1d(cfg.n_steps)  # expect: NN111
        self.lstm = nn.LSTM(cfg.n_input, cfg.n_hidden, num_layers=2, batch_first=True, dropout=0.2)
        self.fc = nn.Linear(cfg.n_hidden, cfg.n_classes)

    def forward(self, poses: torch.Tensor) -> torch.Tensor:
        x = self.bn(poses)
        out, _ = self.lstm(x)
        return self.fc(out[:, -1, :])


model = PoseLSTM()
loss_fn = nn.CrossEntropyLoss()
optimizer = torch.optim.Adam(model.parameters(), lr=2.5e-3)
example_input = torch.randn(32, 32, 36)
