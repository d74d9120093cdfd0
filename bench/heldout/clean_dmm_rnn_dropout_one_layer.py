# clean: NN206
"""The fixed sequence encoder: with a single recurrent layer the dropout is applied explicitly to
the RNN's outputs, where it has an effect.

Twin of dmm_rnn_dropout_one_layer.py (pyro-ppl/pyro issue #1415). Rewritten; only the pattern is
kept.
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
        self.rnn = nn.RNN(input_size=input_dim, hidden_size=rnn_dim, nonlinearity="relu", batch_first=True, num_layers=1)
        self.rnn_dropout = nn.Dropout(rnn_dropout_rate)
        self.to_z = nn.Linear(rnn_dim, z_dim)
        self.emitter = Emitter(input_dim, z_dim, emission_dim)

    def forward(self, rolls: torch.Tensor) -> torch.Tensor:
        hidden, _ = self.rnn(rolls)
        return self.emitter(self.to_z(self.rnn_dropout(hidden)))


model = SequenceEncoder()
loss_fn = nn.BCEWithLogitsLoss()
optimizer = torch.optim.Adam(model.parameters(), lr=3e-4, betas=(0.96, 0.999))
example_input = torch.randn(32, 20, 88)
