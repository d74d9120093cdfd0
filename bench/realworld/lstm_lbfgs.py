"""Two stacked LSTM cells predicting a sine wave one step ahead, trained full-batch with LBFGS
(the optimizer re-evaluates the whole 999-step sequence inside its closure).

Pattern: pytorch/examples, time_sequence_prediction/train.py (class Sequence: LSTMCell(1, 51),
LSTMCell(51, 51), Linear(51, 1), a Python loop over `input.split(1, dim=1)`, the model in
double precision, MSELoss, LBFGS(lr=0.8)) and generate_sine_wave.py (100 waves of length 1000,
T=20, randomly shifted; 97 train on all but the last step); rewritten here.
"""

import numpy as np
import torch
from torch import nn

HIDDEN = 51


class Sequence(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lstm1 = nn.LSTMCell(1, HIDDEN)
        self.lstm2 = nn.LSTMCell(HIDDEN, HIDDEN)
        self.linear = nn.Linear(HIDDEN, 1)

    def forward(self, input: torch.Tensor, future: int = 0) -> torch.Tensor:  # noqa: A002 - the original's name
        outputs = []
        h_t = torch.zeros(input.size(0), HIDDEN, dtype=torch.double)
        c_t = torch.zeros(input.size(0), HIDDEN, dtype=torch.double)
        h_t2 = torch.zeros(input.size(0), HIDDEN, dtype=torch.double)
        c_t2 = torch.zeros(input.size(0), HIDDEN, dtype=torch.double)
        for input_t in input.split(1, dim=1):
            h_t, c_t = self.lstm1(input_t, (h_t, c_t))
            h_t2, c_t2 = self.lstm2(h_t, (h_t2, c_t2))
            output = self.linear(h_t2)
            outputs += [output]
        for _ in range(future):
            h_t, c_t = self.lstm1(output, (h_t, c_t))
            h_t2, c_t2 = self.lstm2(h_t, (h_t2, c_t2))
            output = self.linear(h_t2)
            outputs += [output]
        return torch.cat(outputs, dim=1)


def sine_waves(waves: int = 100, length: int = 1000, period: int = 20) -> np.ndarray:
    rng = np.random.default_rng(2)
    shifted = np.arange(length)[None, :] + rng.integers(-4 * period, 4 * period, waves)[:, None]
    return np.sin(shifted / period).astype("float64")


torch.manual_seed(0)
data = sine_waves()
model = Sequence()
model.double()
example_batch = (torch.from_numpy(data[3:, :-1]), torch.from_numpy(data[3:, 1:]))
loss_fn = nn.MSELoss()
optimizer = torch.optim.LBFGS(model.parameters(), lr=0.8)
