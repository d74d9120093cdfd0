"""Callbacks that watch a training run inside a framework's own loop (findings NN601–NN610).

    trainer = lightning.Trainer(callbacks=[nnlint.integrations.LightningWatch()])
    trainer = transformers.Trainer(..., callbacks=[nnlint.integrations.HuggingFaceWatch()])

Each framework is imported only when its callback is first used: importing nnlint.integrations
needs neither.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from nnlint.lazy import lazy_attributes

if TYPE_CHECKING:
    from nnlint.integrations.huggingface import HuggingFaceWatch
    from nnlint.integrations.lightning import LightningWatch

__all__ = ["HuggingFaceWatch", "LightningWatch"]

__getattr__ = lazy_attributes(
    __name__,
    globals(),
    {"LightningWatch": "nnlint.integrations.lightning", "HuggingFaceWatch": "nnlint.integrations.huggingface"},
)
