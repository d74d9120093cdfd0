"""Input inference for models whose first layer is an RNN: (batch, steps, features) or
(steps, batch, features) as its `batch_first` says, also with as many steps as features (an image
read row by row, which the forward reshapes to), and an RNN's `input_size` never taken for an
image side. Each model is written here after a public project's pattern (named per class)."""

from __future__ import annotations

import json
import textwrap

import torch
from test_cli_core import run
from torch import nn

from nnlint.inputs import INFERRED_BATCH, infer_input


class MnistRNN(nn.Module):
    """pytorch/examples mnist_rnn/main.py: the forward takes (batch, 1, 28, 28) MNIST images and
    reshapes them to (batch, 28, 28), 28 rows of 28 pixels, for a batch-first LSTM."""

    def __init__(self) -> None:
        super().__init__()
        self.rnn = nn.LSTM(input_size=28, hidden_size=64, batch_first=True)
        self.batchnorm = nn.BatchNorm1d(64)
        self.fc = nn.Linear(64, 10)

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        input = input.reshape(-1, 28, 28)
        output, _ = self.rnn(input)
        return self.fc(self.batchnorm(output[:, -1, :]))


def test_a_forward_that_reshapes_images_into_rows_gets_one_row_per_step():
    # 16 steps of 28 features do not reshape to (-1, 28, 28); 28 steps do, with the batch kept.
    # (Before: the LSTM's input_size=28 read as an image side gave 4x3x28x28, which reshapes to
    # 12 "samples" and runs, on the wrong batch.)
    assert infer_input(MnistRNN()).shape == (INFERRED_BATCH, 28, 28)


class TimeMajorGRU(nn.Module):
    """A sequence-first GRU encoder (pytorch/tutorials seq2seq_translation_tutorial's EncoderRNN
    before batch_first; deepspeech.pytorch's BatchRNN): (steps, batch, features) in."""

    def __init__(self, features: int = 12) -> None:
        super().__init__()
        self.gru = nn.GRU(features, 32)
        self.head = nn.Linear(32, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        output, _ = self.gru(x)
        return self.head(output[-1])


def test_a_sequence_first_rnn_gets_steps_first():
    assert infer_input(TimeMajorGRU()).shape == (16, INFERRED_BATCH, 12)


YUNJEY_RNN = """\
    '''yunjey/pytorch-tutorial tutorials/02-intermediate/recurrent_neural_network/main.py: module-level
    hyper-parameters, the device chosen at the top, and a forward that puts its initial state on
    that global `device`; the training loop (which needs the MNIST dataset) reshapes each batch with
    `images.reshape(-1, sequence_length, input_size)`.'''
    import torch
    import torch.nn as nn

    device = torch.device('cuda' if torch.cuda.is_available() else 'cpu')

    sequence_length = 28
    input_size = 28
    hidden_size = 128
    num_layers = 2
    num_classes = 10
    learning_rate = 0.01

    class RNN(nn.Module):
        def __init__(self, input_size, hidden_size, num_layers, num_classes):
            super(RNN, self).__init__()
            self.hidden_size = hidden_size
            self.num_layers = num_layers
            self.lstm = nn.LSTM(input_size, hidden_size, num_layers, batch_first=True)
            self.fc = nn.Linear(hidden_size, num_classes)

        def forward(self, x):
            h0 = torch.zeros(self.num_layers, x.size(0), self.hidden_size).to(device)
            c0 = torch.zeros(self.num_layers, x.size(0), self.hidden_size).to(device)
            out, _ = self.lstm(x, (h0, c0))
            return self.fc(out[:, -1, :])

    model = RNN(input_size, hidden_size, num_layers, num_classes).to(device)
    criterion = nn.CrossEntropyLoss()
    optimizer = torch.optim.Adam(model.parameters(), lr=learning_rate)

    if __name__ == '__main__':
        for epoch in range(2):
            images = torch.randn(100, 1, 28, 28)
            labels = torch.randint(0, 10, (100,))
            outputs = model(images.reshape(-1, sequence_length, input_size).to(device))
            loss = criterion(outputs, labels)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
"""


def test_a_scripts_definitions_keep_its_device_choice_and_its_rnn_gets_sequences(tmp_path):
    path = tmp_path / "main.py"
    path.write_text(textwrap.dedent(YUNJEY_RNN))
    code, out, err = run("--static", "--format", "json", str(path))
    assert code == 0, err  # before: NameError: name 'device' is not defined, NN002
    (target,) = json.loads(out)["targets"]
    assert target["graph"] is not None and target["findings"] == []
    # The constructor's input_size=28 is the LSTM's features, not an image side (4x3x28x28 before).
    assert "no example input given: inferred an input of shape 4x16x28 from the first layer" in target["notes"]


# hunkim/PyTorchZeroToAll (13_2_rnn_classification.py): a name classifier whose forward pads its
# token ids into (steps, batch), embeds them and packs them by length for a bidirectional GRU
# (`pack_padded_sequence`), trained by a plain loop at module level.
PACKED_GRU_SCRIPT = """\
    import torch
    from torch import nn
    from torch.nn.utils.rnn import pack_padded_sequence


    class RNNClassifier(nn.Module):
        def __init__(self, input_size, hidden_size, output_size, n_layers=1, bidirectional=True):
            super().__init__()
            self.hidden_size, self.n_layers = hidden_size, n_layers
            self.n_directions = int(bidirectional) + 1
            self.embedding = nn.Embedding(input_size, hidden_size)
            self.gru = nn.GRU(hidden_size, hidden_size, n_layers, bidirectional=bidirectional)
            self.fc = nn.Linear(hidden_size, output_size)

        def forward(self, input, seq_lengths):
            input = input.t()  # (batch, steps) -> (steps, batch)
            hidden = torch.zeros(self.n_layers * self.n_directions, input.size(1), self.hidden_size)
            embedded = self.embedding(input)
            gru_input = pack_padded_sequence(embedded, seq_lengths.cpu().numpy())
            output, hidden = self.gru(gru_input, hidden)
            return self.fc(hidden[-1])


    torch.manual_seed(0)
    names = torch.randint(1, 128, (8, 10))
    lengths = torch.tensor([10, 9, 9, 7, 6, 4, 3, 2])  # sorted longest first, as packing wants
    countries = torch.randint(0, 18, (8,))
    classifier = RNNClassifier(128, 32, 18, n_layers=2)
    optimizer = torch.optim.Adam(classifier.parameters(), lr=0.001)
    criterion = nn.CrossEntropyLoss()
    for epoch in range(2):
        output = classifier(names, lengths)
        loss = criterion(output, countries)
        classifier.zero_grad()
        loss.backward()
        optimizer.step()
"""


def test_a_forward_that_packs_its_sequences_is_linted(tmp_path):
    path = tmp_path / "rnn_classification.py"
    path.write_text(textwrap.dedent(PACKED_GRU_SCRIPT))
    code, out, err = run("--format", "json", str(path))
    # Before: the graph's PackedSequence was moved to meta through its constructor, which requires
    # its batch sizes on the CPU: "forward raised: ValueError: batch_sizes should always be on CPU", NN002.
    assert code == 0, err
    (target,) = json.loads(out)["targets"]
    assert target["graph"] == "recorded"  # eagerly: fx cannot trace the packing (NN001 says so)
    # The graph fallback at the model's construction; no dropout, norm or weight decay at the optimizer's.
    assert [(f["code"], f["location"]["line"]) for f in target["findings"]] == [("NN001", 28), ("NN205", 29)]
