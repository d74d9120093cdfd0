"""Real third-party code on every change: tiny Hugging Face models of eight architectures must
yield a graph — with an inferred input, on meta — and no warning or error from any rule.

Skipped when transformers is not installed. The full zoos are `bench/zoo.py`."""

from __future__ import annotations

import warnings

import pytest
import torch

transformers = pytest.importorskip("transformers")

from nnlint.config import Config  # noqa: E402
from nnlint.engine import Linter  # noqa: E402
from nnlint.findings import Severity  # noqa: E402
from nnlint.loader import LoadedTarget  # noqa: E402
from nnlint.targets import Target  # noqa: E402

# Two layers, a hidden size of 32: a text encoder, a decoder, an encoder-decoder, vision, text and
# vision, and audio (raw waveform and spectrogram).
TINY = {
    "bert": {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 64, "vocab_size": 512},
    "gpt2": {"n_embd": 32, "n_layer": 2, "n_head": 2, "vocab_size": 512, "n_positions": 64},
    "llama": {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2, "num_key_value_heads": 1,
              "intermediate_size": 64, "vocab_size": 512},
    "t5": {"d_model": 32, "d_kv": 16, "d_ff": 64, "num_layers": 2, "num_decoder_layers": 2, "num_heads": 2, "vocab_size": 512},
    "vit": {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 64, "image_size": 32,
            "patch_size": 8},
    "clip": {"text_config": {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 64,
                             "vocab_size": 512, "projection_dim": 32},
             "vision_config": {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 64,
                               "image_size": 32, "patch_size": 8, "projection_dim": 32},
             "projection_dim": 32},
    "wav2vec2": {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 64,
                 "conv_dim": [16, 16], "conv_kernel": [10, 3], "conv_stride": [5, 2], "num_conv_pos_embeddings": 16,
                 "num_conv_pos_embedding_groups": 2},
    "whisper": {"d_model": 32, "encoder_layers": 2, "decoder_layers": 2, "encoder_attention_heads": 2, "decoder_attention_heads": 2,
                "encoder_ffn_dim": 64, "decoder_ffn_dim": 64, "num_mel_bins": 16, "max_source_positions": 32,
                "max_target_positions": 32},
}  # fmt: skip


# Warnings that are rule false alarms, reported to the rule's owner: each entry must go when the rule
# is fixed (the test then fails, as a reminder).
def tiny_model(model_type: str) -> torch.nn.Module:
    torch.manual_seed(0)
    config = transformers.AutoConfig.for_model(model_type, **TINY[model_type])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return transformers.AutoModel.from_config(config)


@pytest.mark.parametrize("model_type", sorted(TINY))
def test_graph_is_recovered_on_meta_with_no_false_alarm(model_type):
    linter = Linter(Config(static=True))
    report = linter.lint(LoadedTarget(Target(tiny_model(model_type)), model_type, None, None))
    assert report.graph is not None, [f.message for f in report.findings]
    assert [f.code for f in report.findings if f.severity is not Severity.INFO] == []
    assert not any("real values" in note for note in report.notes)  # recorded on meta: no compute
