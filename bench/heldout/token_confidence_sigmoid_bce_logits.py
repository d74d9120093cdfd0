"""A token-confidence head built as nn.Sequential(nn.Linear(dim, 1), nn.Sigmoid()) and trained
with nn.BCEWithLogitsLoss, which applies its own sigmoid: the loss sees sigmoid(sigmoid(x)),
confined to [0.5, 0.73], so confident negatives are never reachable.

Modeled on cvg/glue-factory issue #89 ("Whether to reuse the Sigmoid function in the confidence
loss calculation code?": `self.token = nn.Sequential(nn.Linear(dim, 1), nn.Sigmoid())` next to
`nn.BCEWithLogitsLoss`) and Turoad/lanedet issue #32 (sigmoid output with BCEWithLogitsLoss).
Rewritten; only the pattern is kept.
"""

import torch
from torch import nn


class TokenConfidence(nn.Module):
    def __init__(self, dim: int = 64) -> None:
        super().__init__()
        self.token = nn.Sequential(nn.Linear(dim, 1), nn.Sigmoid())  # expect: NN303

    def forward(self, desc: torch.Tensor) -> torch.Tensor:
        return self.token(desc).squeeze(-1)


class MatcherLayer(nn.Module):
    def __init__(self, dim: int = 64) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, 2 * dim), nn.GELU(), nn.Linear(2 * dim, dim))
        self.confidence = TokenConfidence(dim)

    def forward(self, desc: torch.Tensor) -> torch.Tensor:
        desc = desc + self.mlp(self.norm(desc))
        return self.confidence(desc)


model = MatcherLayer()
loss_fn = nn.BCEWithLogitsLoss()
optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
example_input = torch.randn(32, 128, 64)
