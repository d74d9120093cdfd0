"""A deep-Markov-model style inference RNN over piano rolls built with nn.RNN(num_layers=1,
dropout=0.1): PyTorch applies RNN dropout only between stacked layers, so with one layer the
dropout does nothing (PyTorch only warns once, at construction).

Modeled on pyro-ppl/pyro issue #1415 ("Dropout warning in DMM": the DMM example's RNN has
num_layers fixed to 1 with a dropout rate) and wjko2/Domain-Agnostic-Sentence-Specificity-Prediction
issue #13 (num_layers hard-coded to 1 next to dropout=0.5). Rewritten; only the pattern is kept.
"""

import torch
from torch import nn


class Emitter(nn.Module):
    def __init__(self, input_dim: int, z_dim: int, emission_dim: int) -> None:
        super().__init__()
        self.lin_z_to_hidden = nn.Linear(z_dim, emission_dim)
        self.lin_hidden_to_input = nn.Linear(emission_dim, input_dim)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.lin_hidden_to_input(torch.relu(self.lin_z_to_hidden(z)))


class SequenceEncoder(nn.Module):
    def __init__(
        self, input_dim: int = 88, z_dim: int = 16, emission_dim: int = 64, rnn_dim: int = 64, rnn_dropout_rate: float = 0.1
    ) -> None:
        super().__init__()
        self.rnn = nn.RNN(  # expect: NN206
            input_size=input_dim,
            hidden_size=rnn_dim,
            nonlinearity="relu",
            batch_first=True,
            bidirectional=False,
            num_layers=1,
            dropout=rnn_dropout_rate,
        )
        self.to_z = nn.Linear(rnn_dim, z_dim)
        self.emitter = Emitter(input_dim, z_dim, emission_dim)

    def forward(self, rolls: torch.Tensor) -> torch.Tensor:
        hidden, _ = self.rnn(rolls)
        return self.emitter(self.to_z(hidden))


model = SequenceEncoder()
loss_fn = nn.BCEWithLogitsLoss()
optimizer = torch.optim.Adam(model.parameters(), lr=3e-4, betas=(0.96, 0.999))
example_input = torch.randn(32, 20, 88)
