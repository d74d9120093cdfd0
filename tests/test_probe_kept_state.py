"""The probe's steps each see the state the user's loop gives them: a model that keeps its RNN
state in an attribute between calls is not backpropagated through the graph of an earlier step."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

import nnlint


class LSTMTagger(nn.Module):
    """The old PyTorch sequence-models tutorial's tagger (pytorch/tutorials,
    beginner_source/nlp/sequence_models_tutorial.py before 2018; the same shape in many char-RNN
    repositories), written here for the test: the forward stores its LSTM state in `self.hidden`,
    and the training loop re-initialises it before each sentence with
    `model.hidden = model.init_hidden()`."""

    def __init__(self, embedding_dim: int, hidden_dim: int, vocab_size: int, tagset_size: int) -> None:
        super().__init__()
        self.hidden_dim = hidden_dim
        self.word_embeddings = nn.Embedding(vocab_size, embedding_dim)
        self.lstm = nn.LSTM(embedding_dim, hidden_dim)
        self.hidden2tag = nn.Linear(hidden_dim, tagset_size)
        self.hidden = self.init_hidden()

    def init_hidden(self) -> tuple[torch.Tensor, torch.Tensor]:
        return (torch.zeros(1, 1, self.hidden_dim), torch.zeros(1, 1, self.hidden_dim))

    def forward(self, sentence: torch.Tensor) -> torch.Tensor:
        embeds = self.word_embeddings(sentence)
        lstm_out, self.hidden = self.lstm(embeds.view(len(sentence), 1, -1), self.hidden)
        tag_space = self.hidden2tag(lstm_out.view(len(sentence), -1))
        return F.log_softmax(tag_space, dim=1)


SENTENCE = (torch.tensor([0, 1, 2, 3, 4]), torch.tensor([0, 1, 2, 0, 1]))


def audited(model: LSTMTagger) -> nnlint.Report:
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    # No budget: the second step must run, not be left out as a repeat of the first (the forward draws no random number).
    return nnlint.audit(model, example_batch=SENTENCE, loss_fn=nn.NLLLoss(), optimizer=optimizer, probe_budget=None)


def test_a_hidden_state_kept_across_calls_does_not_break_the_probes_second_step():
    model = LSTMTagger(6, 6, vocab_size=9, tagset_size=3)
    kept = model.hidden
    report = audited(model)
    (target,) = report.targets
    assert "NN002" not in {finding.code for finding in target.findings}  # was "backward through the graph a second time"
    assert target.gradient_flow is not None  # the probe ran its steps
    assert any("3 training steps" in note for note in target.notes)
    assert model.hidden is kept  # the attribute the forward reassigned is the user's again
    assert all(torch.equal(t, torch.zeros(1, 1, 6)) and t.grad_fn is None for t in model.hidden)


def test_a_hidden_state_holding_a_freed_graph_is_detached_for_the_probe_and_kept_for_the_user():
    # What a training script leaves when stopped at its first step: the state of a forward whose
    # graph its backward has freed.
    model = LSTMTagger(6, 6, vocab_size=9, tagset_size=3)
    nn.NLLLoss()(model(SENTENCE[0]), SENTENCE[1]).backward()
    model.zero_grad()
    kept = model.hidden
    values = [t.detach().clone() for t in kept]
    report = audited(model)
    assert "NN002" not in {finding.code for finding in report.findings}
    assert model.hidden is kept and all(t.grad_fn is not None for t in model.hidden)
    assert all(torch.equal(t, v) for t, v in zip(model.hidden, values, strict=True))
