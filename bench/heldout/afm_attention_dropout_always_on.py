"""An attentional factorization machine for click-through prediction whose attention scores go
through F.dropout(attn_scores, p) without `training=self.training`: F.dropout defaults to
training=True, so the scores are still dropped (and rescaled) after model.eval().

Modeled on rixwew/pytorch-fm issue #21 ("F.dropout的问题": `F.dropout(attn_scores, p=0.1)` in
the AFM layer must pass training=self.training; fixed by the maintainer) and delip/PyTorchNLPBook
issue #28. Rewritten; only the pattern is kept.
"""

import torch
import torch.nn.functional as F
from torch import nn


class FeaturesEmbedding(nn.Module):
    def __init__(self, field_dims: tuple[int, ...], embed_dim: int) -> None:
        super().__init__()
        self.embedding = nn.Embedding(sum(field_dims), embed_dim)
        offsets = torch.tensor([0, *field_dims[:-1]]).cumsum(0)
        self.register_buffer("offsets", offsets)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.embedding(x + self.offsets.unsqueeze(0))


class AttentionalFactorizationMachine(nn.Module):
    def __init__(self, embed_dim: int, attn_size: int, dropout: float) -> None:
        super().__init__()
        self.attention = nn.Linear(embed_dim, attn_size)
        self.projection = nn.Linear(attn_size, 1)
        self.fc = nn.Linear(embed_dim, 1)
        self.dropout = dropout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        num_fields = x.shape[1]
        row, col = torch.triu_indices(num_fields, num_fields, offset=1)
        inner_product = x[:, row] * x[:, col]
        attn_scores = F.relu(self.attention(inner_product))
        attn_scores = F.softmax(self.projection(attn_scores), dim=1)
        attn_scores = F.dropout(attn_scores, p=self.dropout)  # expect: NN202, NN901
        attn_output = torch.sum(attn_scores * inner_product, dim=1)
        return self.fc(attn_output)


class AFMModel(nn.Module):
    def __init__(self, field_dims: tuple[int, ...] = (10, 20, 30, 40), embed_dim: int = 16) -> None:
        super().__init__()
        self.embedding = FeaturesEmbedding(field_dims, embed_dim)
        self.linear = nn.Embedding(sum(field_dims), 1)
        self.afm = AttentionalFactorizationMachine(embed_dim, attn_size=16, dropout=0.2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        linear = self.linear(x + self.embedding.offsets.unsqueeze(0)).sum(dim=1)
        return (linear + self.afm(self.embedding(x))).squeeze(1)


model = AFMModel()
loss_fn = nn.BCEWithLogitsLoss()
optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
example_input = torch.randint(0, 10, (32, 4))
