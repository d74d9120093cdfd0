"""Made-up inputs for models whose sequence layer reads (time, batch, …) (PyTorch's default
batch_first=False): laid out that way, with the batch read along dimension 1 by the probe's
sample-mixing check, unless the forward transposes a (batch, time) input itself. Each model is
written after a public project's pattern (named per class)."""

from __future__ import annotations

import math

import torch
from probe_helpers import lint_model
from torch import nn

from nnlint.inputs import INFERRED_BATCH, chosen_input
from nnlint.loader import LoadedTarget
from nnlint.measures import Measure
from nnlint.probe import ProbeSettings, run_probe
from nnlint.probe.result import MeasureNote
from nnlint.targets import Target


class WordLanguageModel(nn.Module):
    """pytorch/examples word_language_model/model.py `RNNModel`: (time, batch) word indices and a
    recurrent state from `init_hidden(batch)`."""

    def __init__(self, ntoken: int = 100, ninp: int = 16, nhid: int = 16, nlayers: int = 2) -> None:
        super().__init__()
        self.encoder = nn.Embedding(ntoken, ninp)
        self.rnn = nn.LSTM(ninp, nhid, nlayers)
        self.decoder = nn.Linear(nhid, ntoken)
        self.nhid, self.nlayers = nhid, nlayers

    def forward(self, input, hidden):
        output, hidden = self.rnn(self.encoder(input), hidden)
        return self.decoder(output), hidden

    def init_hidden(self, bsz):
        weight = next(self.parameters())
        return weight.new_zeros(self.nlayers, bsz, self.nhid), weight.new_zeros(self.nlayers, bsz, self.nhid)


class WordTransformerModel(nn.Transformer):
    """pytorch/examples word_language_model/model.py `TransformerModel`: an nn.Transformer subclass
    (batch_first=False) that uses only its encoder, with a causal mask over dimension 0, time; its
    Embedding is registered after the encoder. The case nnlint reported NN906 on wrongly."""

    def __init__(self, ntoken: int = 100, ninp: int = 16, nhead: int = 2, nhid: int = 32, nlayers: int = 2) -> None:
        super().__init__(d_model=ninp, nhead=nhead, dim_feedforward=nhid, num_encoder_layers=nlayers, dropout=0.0)
        self.input_emb = nn.Embedding(ntoken, ninp)
        self.ninp = ninp
        self.decoder = nn.Linear(ninp, ntoken)

    def forward(self, src):
        mask = torch.log(torch.tril(torch.ones(len(src), len(src))))
        src = self.input_emb(src) * math.sqrt(self.ninp)
        return torch.log_softmax(self.decoder(self.encoder(src, mask=mask)), dim=-1)


class TransposingEncoder(nn.Module):
    """fairseq's LSTM encoder pattern: the forward takes (batch, time) tokens and transposes them to
    (time, batch) for its default LSTM itself (`x = x.transpose(0, 1)  # B x T x C -> T x B x C`)."""

    def __init__(self) -> None:
        super().__init__()
        self.embed_tokens = nn.Embedding(100, 16)
        self.lstm = nn.LSTM(16, 16)
        self.head = nn.Linear(16, 5)

    def forward(self, src_tokens):
        x, _ = self.lstm(self.embed_tokens(src_tokens).transpose(0, 1))
        return self.head(x.transpose(0, 1))


def _chosen(model: nn.Module, **given: object):
    return chosen_input(LoadedTarget(Target(model, **given), "model", None, None), None)  # type: ignore[arg-type]


def test_tokens_for_a_time_major_rnn_are_made_up_time_first_with_the_batch_on_dimension_1():
    chosen = _chosen(WordLanguageModel())
    tokens, (h, c) = chosen.value
    assert chosen.inferred and chosen.batch_dim == 1
    assert tokens.shape == (16, INFERRED_BATCH) and h.shape == c.shape == (2, INFERRED_BATCH, 16)


def test_a_transformer_subclass_with_batch_first_false_gets_time_first_tokens():
    chosen = _chosen(WordTransformerModel())
    assert (chosen.value.shape, chosen.batch_dim) == ((16, INFERRED_BATCH), 1)


def test_a_forward_that_transposes_batch_first_tokens_itself_keeps_them_batch_first():
    chosen = _chosen(TransposingEncoder())
    assert (chosen.value.shape, chosen.batch_dim) == ((INFERRED_BATCH, 16), 0)


def test_a_given_sentence_of_word_indices_for_a_time_major_model_holds_one_sample():
    sentence = torch.tensor([0, 1, 2, 3, 4])
    assert _chosen(WordLanguageModel(), example_input=sentence).batch_dim is None
    assert _chosen(TransposingEncoder(), example_input=torch.zeros(2, 5, dtype=torch.long)).batch_dim == 0


def _mixing(model: nn.Module, example: object, batch_dim: int | None):
    settings = ProbeSettings(measures=frozenset({Measure.SAMPLE_MIXING}), input_source="random", batch_dim=batch_dim)
    return run_probe(model, example, Target(model), settings).mixing


def test_word_language_models_made_up_input_does_not_mix_samples():
    for model in (WordLanguageModel(), WordTransformerModel(), TransposingEncoder()):
        chosen = _chosen(model)
        mixing = _mixing(model, chosen.value, chosen.batch_dim)
        assert mixing is not None and (mixing.dependence, mixing.samples) == (0.0, INFERRED_BATCH), type(model).__name__
        assert "NN906" not in [f.code for f in lint_model(model).findings], type(model).__name__


def test_time_steps_read_as_samples_are_what_mixed_before():
    # The causal mask mixes time steps: read along dimension 0, as before, they look like samples mixing.
    model = WordTransformerModel()
    mixing = _mixing(model, _chosen(model).value, 0)
    assert mixing is not None and mixing.dependence > 1e-3


class SentenceTagger(nn.Module):
    """pytorch/tutorials sequence_models_tutorial.py `LSTMTagger`: one sentence of word indices,
    laid out as (time, 1, features) by the forward itself."""

    def __init__(self) -> None:
        super().__init__()
        self.word_embeddings = nn.Embedding(9, 6)
        self.lstm = nn.LSTM(6, 6)
        self.hidden2tag = nn.Linear(6, 3)

    def forward(self, sentence):
        lstm_out, _ = self.lstm(self.word_embeddings(sentence).view(len(sentence), 1, -1))
        return self.hidden2tag(lstm_out.view(len(sentence), -1))


def test_one_sequence_is_not_checked_for_mixing_and_says_so():
    model, sentence = SentenceTagger(), torch.tensor([0, 1, 2, 3, 4])
    chosen = _chosen(model, example_input=sentence)
    assert chosen.batch_dim is None
    settings = ProbeSettings(measures=frozenset({Measure.SAMPLE_MIXING}), batch_dim=None, no_batch=chosen.no_batch)
    result = run_probe(model, sentence, Target(model), settings)
    notes = [n.text for n in result.notes if isinstance(n, MeasureNote) and n.measure is Measure.SAMPLE_MIXING]
    assert result.mixing is None and notes == ["not checked: the input is one sequence, not a batch of samples"]
    # Read along dimension 0 instead, its five words look like five samples mixing in the LSTM.
    mixing = run_probe(model, sentence, Target(model), ProbeSettings(measures=frozenset({Measure.SAMPLE_MIXING}))).mixing
    assert mixing is not None and mixing.dependence > 1e-3


class TimeMajorFeatureTransformer(nn.Module):
    """The PyTorch tutorial "Language Modeling with nn.Transformer and torchtext" layout, over
    features instead of tokens (time-series transformers written after it): a Linear projection,
    then an nn.TransformerEncoder with its default batch_first=False, on (time, batch, features)."""

    def __init__(self, features: int = 7, d_model: int = 16) -> None:
        super().__init__()
        self.input_projection = nn.Linear(features, d_model)
        layer = nn.TransformerEncoderLayer(d_model, 2, 32, dropout=0.0)
        self.encoder = nn.TransformerEncoder(layer, 1, enable_nested_tensor=False)
        self.head = nn.Linear(d_model, 1)

    def forward(self, src):
        mask = nn.Transformer.generate_square_subsequent_mask(src.size(0))
        return self.head(self.encoder(self.input_projection(src), mask=mask))


def test_features_for_a_time_major_transformer_are_made_up_time_first():
    model = TimeMajorFeatureTransformer()
    chosen = _chosen(model)
    assert (chosen.value.shape, chosen.batch_dim) == ((16, INFERRED_BATCH, 7), 1)
    mixing = _mixing(model, chosen.value, chosen.batch_dim)
    assert mixing is not None and mixing.dependence == 0.0
