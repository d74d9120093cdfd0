"""Example inputs for Hugging Face `transformers` models, read from the model's config.

A transformers model names its main input (`main_input_name`: `input_ids`, `pixel_values`,
`input_values`, `input_features`) and describes its sizes in `model.config`. This module reads
both by duck typing, so nnlint never imports transformers. It proposes candidate inputs, most
plausible first, as keyword dicts; the caller keeps the first one the forward accepts.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator
from typing import Any

import torch
from torch import nn

from nnlint.runtime.execution import made_up

_SEQUENCE_LENGTH = 16
_IMAGE_SIDE = 224
_WAVEFORM_SAMPLES = 16000  # one second at 16 kHz: long enough for every wav2vec2-style feature encoder
_SPECTROGRAM_FRAMES = 1024
_SUB_CONFIGS = ("text_config", "vision_config", "audio_config", "encoder", "decoder")


def is_transformers_model(model: nn.Module) -> bool:
    """A `transformers.PreTrainedModel` (or anything shaped like one): a config and a main input name."""
    config = getattr(model, "config", None)
    return isinstance(getattr(model, "main_input_name", None), str) and hasattr(config, "model_type")


def example_inputs(model: nn.Module, batch: int, dtype: torch.dtype) -> Iterator[dict[str, torch.Tensor]]:
    """Candidate keyword inputs: the main input with its usual companions, then the main input alone."""
    config = model.config
    accepted = _forward_parameters(model)
    main_name: str = model.main_input_name  # type: ignore[assignment]
    build = _MAIN_INPUTS.get(main_name)
    if build is None:
        return
    for main in build(model, config, batch, dtype):
        companions = _companions(model, config, main_name, main, accepted, batch, dtype)
        if companions:
            yield {main_name: main, **companions}
        yield {main_name: main}


def _forward_parameters(model: nn.Module) -> set[str]:
    try:
        return set(inspect.signature(model.forward).parameters)
    except (TypeError, ValueError):
        return set()


# -- main inputs ----------------------------------------------------------------------------------
def _token_ids(model: nn.Module, config: Any, batch: int, dtype: torch.dtype) -> Iterator[torch.Tensor]:
    yield _ids(_vocabulary(model, config), batch, _sequence_length(config))


def _images(model: nn.Module, config: Any, batch: int, dtype: torch.dtype) -> Iterator[torch.Tensor]:
    channels = _config_value(config, "num_channels") or _first_in_channels(model, nn.Conv2d) or 3
    sides = [_pair(_config_value(config, "image_size"))]
    if (_IMAGE_SIDE, _IMAGE_SIDE) not in sides:
        sides.append((_IMAGE_SIDE, _IMAGE_SIDE))
    for height, width in (side for side in sides if side is not None):
        yield made_up((batch, int(channels), height, width), dtype)


def _audio_values(model: nn.Module, config: Any, batch: int, dtype: torch.dtype) -> Iterator[torch.Tensor]:
    mel_bins = _config_value(config, "num_mel_bins")
    if mel_bins:  # a spectrogram transformer: (batch, frames, mel bins)
        yield made_up((batch, int(_config_value(config, "max_length") or _SPECTROGRAM_FRAMES), int(mel_bins)), dtype)
    yield made_up((batch, _WAVEFORM_SAMPLES), dtype)  # a raw waveform


def _audio_features(model: nn.Module, config: Any, batch: int, dtype: torch.dtype) -> Iterator[torch.Tensor]:
    """Filter-bank features: (batch, bins, frames) for Whisper-style encoders, else (batch, frames, bins)."""
    bins = _config_value(config, "num_mel_bins", "feature_size") or _first_in_channels(model, nn.Conv1d) or 80
    per_channel = _config_value(config, "input_feat_per_channel")
    if per_channel:
        bins = int(per_channel) * int(_config_value(config, "input_channels") or 1)
    positions = _config_value(config, "max_source_positions")
    # Whisper's two convolutions halve the frames, and its encoder wants exactly max_source_positions.
    frames = 2 * int(positions) if positions and positions <= 4 * _SPECTROGRAM_FRAMES else _SPECTROGRAM_FRAMES
    yield made_up((batch, int(bins), frames), dtype)
    yield made_up((batch, 2 * _SEQUENCE_LENGTH * 4, int(bins)), dtype)


_MAIN_INPUTS: dict[str, Callable[[nn.Module, Any, int, torch.dtype], Iterator[torch.Tensor]]] = {
    "input_ids": _token_ids,
    "pixel_values": _images,
    "input_values": _audio_values,
    "input_features": _audio_features,
}


# -- companions: what a real caller passes beside the main input -----------------------------------
def _companions(
    model: nn.Module, config: Any, main_name: str, main: torch.Tensor, accepted: set[str], batch: int, dtype: torch.dtype
) -> dict[str, torch.Tensor]:
    extra: dict[str, torch.Tensor] = {}
    if main_name == "input_ids" and "attention_mask" in accepted:
        # What a tokenizer returns; it also keeps the forward off data-dependent padding checks.
        extra["attention_mask"] = torch.ones_like(main)
    if main_name != "pixel_values" and "pixel_values" in accepted and _has_sub_config(config, "vision_config"):
        images = next(_images(model, _sub_config(config, "vision_config"), batch, dtype), None)
        if images is not None:
            extra["pixel_values"] = images  # text-and-image models (CLIP, SigLIP) embed both
    if getattr(config, "is_encoder_decoder", False) and "decoder_input_ids" in accepted:
        vocabulary = _config_value(config, "decoder_vocab_size") or _vocabulary(model, config)
        extra["decoder_input_ids"] = _ids(vocabulary, batch, min(_SEQUENCE_LENGTH, _decoder_positions(config)))
    return extra


# -- reading the config ----------------------------------------------------------------------------
def _config_value(config: Any, *names: str) -> Any:
    """The first of `names` set on the config, else on its text/vision/audio sub-configs."""
    for candidate in (config, *(_sub_config(config, name) for name in _SUB_CONFIGS)):
        if candidate is None:
            continue
        for name in names:
            value = getattr(candidate, name, None)
            if value is not None and not callable(value):
                return value
    return None


def _sub_config(config: Any, name: str) -> Any:
    value = getattr(config, name, None)
    return value if hasattr(value, "to_dict") else None


def _has_sub_config(config: Any, name: str) -> bool:
    return _sub_config(config, name) is not None


def _vocabulary(model: nn.Module, config: Any) -> int:
    """The input embedding's size when the model exposes it (it may differ from `vocab_size`)."""
    try:
        embedding = model.get_input_embeddings()  # type: ignore[operator]
    except (AttributeError, NotImplementedError, TypeError):
        embedding = None
    if isinstance(embedding, nn.Embedding):
        return int(embedding.num_embeddings)
    return int(_config_value(config, "vocab_size") or 2)


def _sequence_length(config: Any) -> int:
    limit = _config_value(config, "max_position_embeddings", "n_positions")
    return min(_SEQUENCE_LENGTH, int(limit)) if isinstance(limit, int) and limit > 0 else _SEQUENCE_LENGTH


def _decoder_positions(config: Any) -> int:
    limit = _config_value(config, "max_target_positions", "max_position_embeddings")
    return int(limit) if isinstance(limit, int) and limit > 0 else _SEQUENCE_LENGTH


def _ids(vocabulary: int, batch: int, length: int) -> torch.Tensor:
    return made_up((batch, length), torch.long, int(vocabulary))


def _pair(value: Any) -> tuple[int, int] | None:
    if isinstance(value, int) and value > 0:
        return value, value
    if isinstance(value, (tuple, list)) and len(value) == 2 and all(isinstance(v, int) and v > 0 for v in value):
        return int(value[0]), int(value[1])
    return None


def _first_in_channels(model: nn.Module, kind: type[nn.Module]) -> int | None:
    return next((int(m.in_channels) for m in model.modules() if isinstance(m, kind)), None)  # type: ignore[arg-type]
