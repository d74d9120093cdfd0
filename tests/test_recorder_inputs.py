"""Inferred example inputs for models that say what they take: Hugging Face-shaped models (a
config and a main input name) and image models that declare their size. Plain torch: the
transformers conventions are duck-typed, so none of this needs transformers installed."""

from __future__ import annotations

import torch
from torch import nn

from nnlint.inputs import INFERRED_BATCH, infer_input


class Config:
    """What nnlint reads from a transformers config; sub-configs have `to_dict`."""

    def __init__(self, **values) -> None:
        self.model_type = "toy"
        self.is_encoder_decoder = False
        vars(self).update(values)

    def to_dict(self) -> dict:
        return dict(vars(self))


class Seq2Seq(nn.Module):
    main_input_name = "input_ids"

    def __init__(self) -> None:
        super().__init__()
        self.config = Config(vocab_size=50, max_position_embeddings=8, is_encoder_decoder=True, decoder_vocab_size=30)
        self.encoder = nn.Embedding(50, 8)
        self.decoder = nn.Embedding(30, 8)

    def forward(self, input_ids=None, attention_mask=None, decoder_input_ids=None, inputs_embeds=None):
        if decoder_input_ids is None:
            raise ValueError("You have to specify decoder_input_ids")
        memory = self.encoder(input_ids) * attention_mask[..., None]
        return self.decoder(decoder_input_ids) + memory.mean(1, keepdim=True)


def test_an_encoder_decoder_gets_ids_a_mask_and_decoder_ids_within_its_limits():
    example = infer_input(Seq2Seq())
    assert set(example) == {"input_ids", "attention_mask", "decoder_input_ids"}
    assert example["input_ids"].shape == (INFERRED_BATCH, 8)  # capped by max_position_embeddings
    assert torch.equal(example["attention_mask"], torch.ones(INFERRED_BATCH, 8, dtype=torch.long))
    assert example["decoder_input_ids"].max() < 30


class StrictImages(nn.Module):
    """A vision model that accepts only its configured size and channels (ViT position embeddings)."""

    main_input_name = "pixel_values"

    def __init__(self) -> None:
        super().__init__()
        self.config = Config(image_size=40, num_channels=1)
        self.patch = nn.Conv2d(1, 8, 8, stride=8)

    def forward(self, pixel_values, interpolate_pos_encoding=False):
        if pixel_values.shape[-2:] != (40, 40):
            raise ValueError("Input image size doesn't match model")
        return self.patch(pixel_values)


def test_a_vision_model_gets_images_of_its_configured_size():
    example = infer_input(StrictImages())
    assert example["pixel_values"].shape == (INFERRED_BATCH, 1, 40, 40)


class TextAndImages(nn.Module):
    """CLIP-shaped: the main input is text, and the forward needs images too."""

    main_input_name = "input_ids"

    def __init__(self) -> None:
        super().__init__()
        self.config = Config(text_config=Config(vocab_size=20), vision_config=Config(image_size=16, num_channels=3))
        self.text = nn.Embedding(20, 8)
        self.vision = nn.Conv2d(3, 8, 16)

    def forward(self, input_ids=None, pixel_values=None, attention_mask=None):
        return self.text(input_ids).mean(1) @ self.vision(pixel_values).flatten(1).T


def test_a_text_and_vision_model_gets_both():
    example = infer_input(TextAndImages())
    assert example["input_ids"].max() < 20
    assert example["pixel_values"].shape == (INFERRED_BATCH, 3, 16, 16)


class Spectrograms(nn.Module):
    """Whisper-shaped: (batch, mel bins, frames), frames exactly twice the encoder's positions."""

    main_input_name = "input_features"

    def __init__(self) -> None:
        super().__init__()
        self.config = Config(num_mel_bins=8, max_source_positions=10)
        self.conv = nn.Conv1d(8, 16, 3, stride=2, padding=1)

    def forward(self, input_features):
        hidden = self.conv(input_features)
        if hidden.shape[-1] != 10:
            raise ValueError("Whisper expects the mel input features to be of length 20")
        return hidden


def test_an_audio_model_gets_features_of_the_length_its_encoder_wants():
    example = infer_input(Spectrograms())
    assert example["input_features"].shape == (INFERRED_BATCH, 8, 20)


class PatchEmbed(nn.Module):
    def __init__(self, img_size: int) -> None:
        super().__init__()
        self.img_size = (img_size, img_size)
        self.proj = nn.Conv2d(3, 8, 8, stride=8)

    def forward(self, x):
        if tuple(x.shape[-2:]) != self.img_size:
            raise AssertionError(f"Input height ({x.shape[-2]}) doesn't match model ({self.img_size[0]}).")
        return self.proj(x).flatten(2)


class DeclaresSize(nn.Module):
    def __init__(self, img_size: int, pretrained_size: int | None = None) -> None:
        super().__init__()
        self.patch_embed = PatchEmbed(img_size)
        if pretrained_size is not None:
            self.pretrained_cfg = {"input_size": (3, pretrained_size, pretrained_size)}

    def forward(self, x):
        return self.patch_embed(x)


def test_image_models_get_the_size_they_declare():
    assert infer_input(DeclaresSize(56)).shape == (INFERRED_BATCH, 3, 56, 56)  # no default side is 56
    assert infer_input(DeclaresSize(48, pretrained_size=48)).shape == (INFERRED_BATCH, 3, 48, 48)


class AuxiliaryHead(nn.Module):
    """Inception-shaped: a head that runs only in training mode and needs larger images (250+)
    than evaluation mode does (a torchvision zoo finding: the probe failed on 224×224)."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 4, 3)
        self.head = nn.Linear(4, 2)
        self.aux = nn.Conv2d(4, 2, 248)

    def forward(self, x):
        features = torch.relu(self.stem(x))
        logits = self.head(features.mean((2, 3)))
        if self.training:
            return logits, self.aux(features).mean((2, 3))
        return logits


def test_the_inferred_input_also_runs_in_training_mode_when_the_probe_trains():
    model = AuxiliaryHead()
    assert infer_input(model).shape == (INFERRED_BATCH, 3, 256, 256)  # 224 fails the training-only head
    assert infer_input(model, trains=False).shape == (INFERRED_BATCH, 3, 224, 224)  # static checks run in evaluation mode
    assert model.training  # the modes it was checked in are put back
