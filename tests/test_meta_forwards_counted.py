"""Work done once: choosing an input and shrinking the probe's images run the forward on meta only
where nothing known already answers (counted by patching `nnlint.inputs._forward_on_meta`, the one
helper every meta forward there goes through)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import torch
from expectations import FIXTURES, lint
from test_input_time_major import TransposingEncoder, WordLanguageModel, _chosen
from test_probe_cheaper_work import _Segmenter

from nnlint import inputs
from nnlint.graph import ModuleLocator, build_graph


@contextmanager
def _counted_meta_forwards(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[bool]]:
    """Each meta forward's `training` flag, in order."""
    calls: list[bool] = []
    real = inputs._forward_on_meta

    def counted(model, example_input, training=False):
        calls.append(training)
        return real(model, example_input, training)

    with monkeypatch.context() as patch:
        patch.setattr(inputs, "_forward_on_meta", counted)
        yield calls


def test_a_time_major_candidate_is_judged_in_one_forward_per_mode(monkeypatch):
    # word_language_model's RNNModel takes its first candidate, (time, batch) tokens: one forward in
    # evaluation mode (which also shows where the LSTM reads the batch) and one in training mode.
    with _counted_meta_forwards(monkeypatch) as calls:
        chosen = _chosen(WordLanguageModel())
    assert chosen.batch_dim == 1 and calls == [False, True]
    # fairseq's encoder transposes itself: the (time, batch) candidate is read the wrong way round
    # (one forward shows it), then the (batch, time) one is taken.
    with _counted_meta_forwards(monkeypatch) as calls:
        chosen = _chosen(TransposingEncoder())
    assert chosen.batch_dim == 0 and calls == [False, False, True]


def test_the_full_size_output_of_a_fully_convolutional_model_comes_from_its_graph(monkeypatch):
    model, images = _Segmenter(), torch.randn(4, 3, 224, 224)
    graph = build_graph(model, images, ModuleLocator(model))
    with _counted_meta_forwards(monkeypatch) as calls:
        smaller = inputs.smaller_probe_image(model, images, inputs.smallest_feature_map(graph), graph)
    assert smaller is not None and tuple(smaller.shape) == (4, 3, 64, 64)
    assert calls == [True, False]  # the smaller images in training, then in evaluation mode; none at 224×224
    with _counted_meta_forwards(monkeypatch) as calls:
        assert inputs.smaller_probe_image(model, images) is not None  # without the graph: one more
    assert calls == [True, True, False]


def test_the_segmentation_fixture_under_a_budget_runs_four_meta_forwards_in_all(monkeypatch):
    """The whole lint of a fully convolutional model given no input: its made-up 224×224 images are
    judged in both modes, and the 64×64 ones the probe trains on in both modes."""
    with _counted_meta_forwards(monkeypatch) as calls:
        report = lint(FIXTURES / "clean_segmentation_encoder_decoder.py")
    assert any("images, not 224x224" in note for note in report.targets[0].notes)
    assert calls == [False, True, True, False]
