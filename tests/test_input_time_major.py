"""Made-up inputs for models whose sequence layer reads (time, batch, …) (PyTorch's default
batch_first=False): laid out that way, with the batch read along dimension 1 by the probe's
sample-mixing check, unless the forward transposes a (batch, time) input itself. Each model is
written after a public project's pattern (named per class)."""

from __future__ import annotations

import argparse
import math

import torch
from probe_helpers import lint_model
from torch import nn

from nnlint import engine
from nnlint.config import Config
from nnlint.context import BatchSize
from nnlint.graph import build_graph
from nnlint.inputs import INFERRED_BATCH, chosen_input, training_batch_size
from nnlint.loader import LoadedTarget
from nnlint.measures import Measure
from nnlint.probe import ProbeSettings, checks, run_probe
from nnlint.probe.result import MeasureNote
from nnlint.runtime.execution import one_sample
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


def _word_language_model_arguments() -> argparse.Namespace:
    """pytorch/examples word_language_model/main.py's argparse, with smaller sizes."""
    parser = argparse.ArgumentParser(description="PyTorch Wikitext-2 RNN/LSTM/GRU/Transformer Language Model")
    parser.add_argument("--model", type=str, default="LSTM", help="type of network (LSTM, Transformer)")
    parser.add_argument("--emsize", type=int, default=16, help="size of word embeddings")
    parser.add_argument("--nhid", type=int, default=16, help="number of hidden units per layer")
    parser.add_argument("--nlayers", type=int, default=2, help="number of layers")
    parser.add_argument("--nhead", type=int, default=2, help="the number of heads in the encoder of the transformer model")
    parser.add_argument("--dropout", type=float, default=0.2, help="dropout applied to layers (0 = no dropout)")
    return parser.parse_args([])


class DroppingWordLanguageModel(WordLanguageModel):
    """word_language_model's `RNNModel` with its dropout on the embeddings and on the LSTM's output
    (`self.drop = nn.Dropout(dropout)`), so training and evaluation differ."""

    def __init__(self, ntoken: int, ninp: int, nhid: int, nlayers: int, dropout: float) -> None:
        super().__init__(ntoken, ninp, nhid, nlayers)
        self.drop = nn.Dropout(dropout)

    def forward(self, input, hidden):
        output, hidden = self.rnn(self.drop(self.encoder(input)), hidden)
        return self.decoder(self.drop(output)), hidden


class OverflowGuardedWordLanguageModel(WordLanguageModel):
    """`RNNModel` with the overflow guard huggingface/transformers' modeling_t5.py puts in its blocks
    (`if torch.isinf(hidden_states).any(): hidden_states = torch.clamp(...)`): the branch reads
    values, so the graph is recorded on one real sample."""

    def forward(self, input, hidden):
        output, hidden = self.rnn(self.encoder(input), hidden)
        if torch.isinf(output).any():
            clamp = torch.finfo(output.dtype).max - 1000
            output = torch.clamp(output, min=-clamp, max=clamp)
        return self.decoder(output), hidden


def _word_language_models() -> list[nn.Module]:
    args = _word_language_model_arguments()
    return [
        DroppingWordLanguageModel(100, args.emsize, args.nhid, args.nlayers, args.dropout),
        WordTransformerModel(100, args.emsize, args.nhead, args.nhid, args.nlayers),
    ]


def test_the_probe_counts_the_samples_of_a_time_major_input_along_its_batch_dimension():
    # The Transformer draws no random number (dropout 0): its later steps would repeat the first.
    for model, steps in zip(_word_language_models(), ("3 training steps", "1 training step"), strict=True):
        notes = lint_model(model).targets[0].notes
        assert f"probe: {steps} on cpu, batch 4, loss: synthetic (MSE to fixed random targets)" in notes, type(model).__name__


def test_one_sample_of_a_time_major_input_is_cut_along_its_batch_dimension():
    rnn, transformer = _word_language_models()
    chosen = _chosen(rnn)
    tokens, (h, c) = one_sample(chosen.value, torch.device("cpu"), chosen.batch_dim)
    assert (tokens.shape, h.shape, c.shape) == ((16, 1), (2, 1, 16), (2, 1, 16))
    chosen = _chosen(transformer)
    assert one_sample(chosen.value, torch.device("cpu"), chosen.batch_dim).shape == (16, 1)
    sentence = torch.tensor([0, 1, 2, 3, 4])  # one sample already: whole
    assert one_sample(sentence, torch.device("cpu"), _chosen(SentenceTagger(), example_input=sentence).batch_dim).shape == (5,)


def test_a_time_major_graph_recorded_on_real_values_is_recorded_on_one_sample_of_the_batch(monkeypatch):
    args = _word_language_model_arguments()
    model = OverflowGuardedWordLanguageModel(100, args.emsize, args.nhid, args.nlayers)
    graphs = []

    def kept(*arguments, **keywords):
        graphs.append(build_graph(*arguments, **keywords))
        return graphs[-1]

    monkeypatch.setattr(engine, "build_graph", kept)
    notes = lint_model(model, Config(static=True)).targets[0].notes
    assert "the forward needs real values (e.g. `.item()`), so the graph was recorded on one real sample" in notes
    [graph] = graphs
    assert graph.shape(next(n for n in graph.nodes if n.target == "decoder")) == (16, 1, 100)  # 16 time steps of one sample


def test_a_time_major_batch_is_cut_into_pieces_along_its_batch_dimension():
    tokens, hidden = torch.zeros(16, 4, dtype=torch.long), torch.zeros(2, 4, 8)
    lengths = torch.full((4,), 16)
    pieces = checks.chunks((tokens, hidden, lengths), 4, 2, dim=1)
    assert [(first, [tuple(t.shape) for t in piece]) for first, piece in pieces] == [
        (0, [(16, 2), (2, 2, 8), (2,)]),
        (2, [(16, 2), (2, 2, 8), (2,)]),
    ]
    # The same elements of each module output are sampled from the pieces as from the whole batch.
    generator = torch.Generator().manual_seed(0)
    outputs = {("decoder", 0): torch.randn(16, 4, 100, generator=generator), ("pooled", 0): torch.randn(4, 5, generator=generator)}
    samples = checks.OutputSamples(4, 1)
    whole: dict[checks.Key, torch.Tensor] = {}
    for key, output in outputs.items():
        samples.recorder(whole)(key, output)
    pieced: dict[checks.Key, torch.Tensor] = {}
    for first in (0, 2):  # what a forward on samples first, first + 1 returns: (time, 2, …) and (2, …) reduced over time
        record = samples.chunk_recorder(pieced, first)
        record(("decoder", 0), outputs["decoder", 0][:, first : first + 2])
        record(("pooled", 0), outputs["pooled", 0][first : first + 2])
    assert whole.keys() == pieced.keys() and all(torch.equal(whole[key], pieced[key]) for key in whole)


def test_the_train_eval_gap_of_a_time_major_model_is_measured_in_pieces_of_the_training_batch():
    model = _word_language_models()[0]
    chosen = _chosen(model)
    settings = ProbeSettings(
        measures=frozenset({Measure.TRAIN_EVAL_GAP}), input_source="random", batch_dim=chosen.batch_dim, training_batch_size=2
    )
    result = run_probe(model, chosen.value, Target(model), settings)
    assert result.batch == INFERRED_BATCH
    assert result.train_eval is not None and result.train_eval.chunk_size == 2 and result.train_eval.relative_difference > 0.1


def test_one_given_sentence_gives_no_training_batch_size():
    # Its five words are one sample's time steps, not five samples.
    model, sentence = SentenceTagger(), torch.tensor([0, 1, 2, 3, 4])
    loaded = LoadedTarget(Target(model, example_input=sentence), "model", None, None)  # type: ignore[arg-type]
    assert training_batch_size(loaded, sentence, False, None) is None
    batch = torch.zeros(3, 5, dtype=torch.long)  # a batch of three sentences for a batch-first model: 3
    loaded = LoadedTarget(Target(TransposingEncoder(), example_input=batch), "model", None, None)  # type: ignore[arg-type]
    assert training_batch_size(loaded, batch, False, None) == BatchSize(3, "example_input", None)
