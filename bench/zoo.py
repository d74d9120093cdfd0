"""nnlint over model zoos nobody here wrote: graph recovery and findings, model by model.

A measurement, not a test. For each model of a zoo it builds the model with random weights (no
downloads), lints it the way a user of the API would — no example input, so nnlint infers one —
and prints one line: how the graph was recovered (fx / recorded / failed), the findings by code,
and the seconds nnlint took. Then totals per zoo.

    python bench/zoo.py                          # every zoo (slow: hundreds of models)
    python bench/zoo.py --zoo torchvision        # one zoo
    python bench/zoo.py --zoo hf --only 'bert*,gpt2'   # a subset by name (globs)
    python bench/zoo.py --zoo timm --every 50 --limit 10

It needs torchvision, timm and transformers, which need a newer torch than nnlint's test venv:

    python3 -m venv /tmp/zoo && /tmp/zoo/bin/pip install torch==2.14.1 torchvision==0.29.1 transformers timm
    /tmp/zoo/bin/pip install -e .  && /tmp/zoo/bin/python bench/zoo.py

Exit code 1 when a model that builds yields no graph (or an NN002), so a run can gate a change.
"""

from __future__ import annotations

import argparse
import contextlib
import fnmatch
import io
import statistics
import sys
import time
import traceback
import warnings
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import torch
from torch import nn

import nnlint
from nnlint.report import TargetReport

ZOOS = ("torchvision", "timm", "hf")
# Models above this many parameters are built on the meta device (no memory, no init time): nnlint
# lints a meta model as it is, which is how a 70-billion-parameter model is meant to be linted.
DEFAULT_MAX_PARAMETERS = 150_000_000


# -- the one call into nnlint ---------------------------------------------------------------------
def lint_model(model: nn.Module, name: str) -> tuple[TargetReport, list[str]]:
    """nnlint's static report on `model`, with no example input given, and any tracebacks it kept."""
    report = nnlint.audit(model, probe=False)
    return report.targets[0], list(report.tracebacks)


# -- zoos: (name, builder) pairs ------------------------------------------------------------------
Builder = Callable[[], nn.Module]


def torchvision_models() -> Iterator[tuple[str, Builder]]:
    from torchvision import models

    for family in (models, models.segmentation, models.detection):
        for name in models.list_models(module=family):
            yield name, _torchvision_builder(name)


def _torchvision_builder(name: str) -> Builder:
    def build() -> nn.Module:
        from torchvision import models

        # weights_backbone=None too: detection/segmentation builders default to a pretrained backbone.
        kwargs = {"weights": None}
        if "weights_backbone" in _parameters(models.get_model_builder(name)):
            kwargs["weights_backbone"] = None
        return models.get_model(name, **kwargs)

    return build


def _parameters(function: Callable) -> set[str]:
    import inspect

    return set(inspect.signature(function).parameters)


def timm_models(every: int) -> Iterator[tuple[str, Builder]]:
    import timm

    for name in timm.list_models()[::every]:
        yield name, _timm_builder(name)


def _timm_builder(name: str) -> Builder:
    def build() -> nn.Module:
        import timm

        return timm.create_model(name, pretrained=False)

    return build


# At least 30 Hugging Face architectures: text encoders, decoders, encoder-decoders, vision, audio.
HF_MODEL_TYPES = (
    # text encoders
    "bert", "roberta", "distilbert", "albert", "electra", "deberta-v2", "xlm-roberta", "mpnet", "modernbert", "mobilebert",
    # decoders
    "gpt2", "gpt_neo", "gptj", "gpt_neox", "opt", "bloom", "llama", "mistral", "mixtral", "qwen2", "qwen3", "phi", "phi3",
    "gemma", "gemma2", "falcon", "olmo", "codegen", "stablelm",
    # encoder-decoders
    "t5", "mt5", "bart", "mbart", "pegasus", "marian",
    # vision
    "vit", "deit", "beit", "dinov2", "swin", "convnext", "resnet", "mobilevit", "segformer",
    # text + vision
    "clip", "siglip",
    # audio
    "wav2vec2", "hubert", "wavlm", "data2vec-audio", "whisper", "speech_to_text", "audio-spectrogram-transformer",
)  # fmt: skip

# Small sizes, by config attribute: a couple of layers and a small hidden size.
_HF_SMALL = {
    "hidden_size": 32, "d_model": 32, "n_embd": 32, "embed_dim": 32, "dim": 32, "embedding_size": 32,
    "num_hidden_layers": 2, "n_layer": 2, "num_layers": 2, "encoder_layers": 2, "decoder_layers": 2, "num_decoder_layers": 2,
    "num_attention_heads": 2, "n_head": 2, "num_heads": 2, "encoder_attention_heads": 2, "decoder_attention_heads": 2,
    "num_key_value_heads": 1, "intermediate_size": 64, "d_ff": 64, "ffn_dim": 64, "encoder_ffn_dim": 64, "decoder_ffn_dim": 64,
    "n_inner": 64, "d_kv": 16, "projection_size": 32, "projection_dim": 32, "num_local_experts": 4, "num_experts": 4,
    "rotary_dim": 8, "head_dim": 16,
}  # fmt: skip
# Architectures whose sizes are lists or tied to one another.
_HF_OVERRIDES: dict[str, dict] = {
    "swin": {"embed_dim": 16, "depths": [1, 1, 1, 1], "num_heads": [1, 1, 2, 2]},
    "convnext": {"hidden_sizes": [8, 16, 32, 64], "depths": [1, 1, 1, 1]},
    "resnet": {"hidden_sizes": [16, 32, 64, 128], "depths": [1, 1, 1, 1], "embedding_size": 16},
    "mobilevit": {"hidden_sizes": [32, 48, 64], "neck_hidden_sizes": [8, 8, 16, 16, 24, 32, 64], "num_attention_heads": 2},
    "segformer": {"hidden_sizes": [8, 16, 32, 64], "depths": [1, 1, 1, 1], "num_attention_heads": [1, 1, 2, 2],
                  "decoder_hidden_size": 32},
    "mobilebert": {"embedding_size": 16, "intra_bottleneck_size": 32, "true_hidden_size": 32, "num_feedforward_networks": 1},
    "wav2vec2": {"conv_dim": [16, 16], "conv_kernel": [10, 3], "conv_stride": [5, 2], "num_conv_pos_embeddings": 16},
    "hubert": {"conv_dim": [16, 16], "conv_kernel": [10, 3], "conv_stride": [5, 2], "num_conv_pos_embeddings": 16},
    "wavlm": {"conv_dim": [16, 16], "conv_kernel": [10, 3], "conv_stride": [5, 2], "num_conv_pos_embeddings": 16},
    "data2vec-audio": {"conv_dim": [16, 16], "conv_kernel": [10, 3], "conv_stride": [5, 2], "num_conv_pos_embeddings": 16},
    "whisper": {"max_source_positions": 64, "max_target_positions": 64},
    "phi": {"partial_rotary_factor": 0.5},
    "gptj": {"rotary_dim": 8},
    "falcon": {"num_kv_heads": 1},
}  # fmt: skip
# Stage-based vision models: their overrides are all the sizes they take.
_HF_OWN_SIZES = {"swin", "convnext", "resnet", "mobilevit", "segformer"}


def small_hf_config(model_type: str) -> object:
    from transformers import AutoConfig

    overrides = _HF_OVERRIDES.get(model_type, {})
    config = AutoConfig.for_model(model_type, **overrides)  # at construction: some configs derive values from them
    if model_type not in _HF_OWN_SIZES:
        _shrink(config, {key: value for key, value in _HF_SMALL.items() if key not in overrides})
    return config


def _shrink(config: object, sizes: dict) -> None:
    """Set the small sizes on `config` and on its sub-configs (`text_config`, `vision_config`, …)."""
    for key, value in sizes.items():
        if key in vars(config) or key in getattr(config, "attribute_map", {}):
            with contextlib.suppress(AttributeError, TypeError, ValueError):
                setattr(config, key, value)
    for name, value in list(vars(config).items()):
        if name.endswith("_config") and hasattr(value, "to_dict"):
            _shrink(value, sizes)


def hf_models(types: tuple[str, ...] = HF_MODEL_TYPES) -> Iterator[tuple[str, Builder]]:
    for model_type in types:
        yield model_type, _hf_builder(model_type)


def _hf_builder(model_type: str) -> Builder:
    def build() -> nn.Module:
        from transformers import AutoModel

        return AutoModel.from_config(small_hf_config(model_type))

    return build


# -- the run --------------------------------------------------------------------------------------
@dataclass
class Row:
    zoo: str
    name: str
    method: str  # fx, recorded, failed, or "not built"
    codes: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0
    where: str = "cpu"  # where the weights are: cpu, or meta for models above --max-parameters
    real_run: bool = False  # the graph needed a real forward on one sample (values meta lacks)
    detail: str = ""


def measure(zoo: str, name: str, build: Builder, max_parameters: int, verbose: bool) -> Row:
    try:
        model = _build(build, max_parameters)
    except Exception as error:  # a zoo model that does not build here is not nnlint's to recover
        return Row(zoo, name, "not built", detail=f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}"[:160])
    where = "meta" if any(p.is_meta for p in model.parameters()) else "cpu"
    start = time.perf_counter()
    try:
        report, tracebacks = lint_model(model, name)
    except Exception:  # nnlint itself crashed: the worst outcome, always shown
        return Row(zoo, name, "failed", seconds=time.perf_counter() - start, where=where, detail=f"CRASH {traceback.format_exc()}")
    seconds = time.perf_counter() - start
    codes = Counter(finding.code for finding in report.findings)
    method = str(report.graph) if report.graph is not None and not codes["NN002"] else "failed"
    detail = ""
    if method == "failed":
        detail = next((f.message for f in report.findings if f.code == "NN002"), "")
        if verbose and tracebacks:
            detail += "\n" + tracebacks[-1]
    elif verbose:
        detail = "\n".join(f"  {f.code} {f.severity} {f.module}: {f.message}" for f in report.findings if f.code != "NN001")
    real_run = any("real values" in note for note in report.notes)
    return Row(zoo, name, method, codes, seconds, where=where, real_run=real_run, detail=detail)


def _build(build: Builder, max_parameters: int) -> nn.Module:
    """The model with random weights on the CPU; on meta when it is larger than `max_parameters`."""
    try:
        with torch.device("meta"):
            on_meta = build()
    except Exception:  # some constructors initialize with real data (`.item()`, copies): build those on the CPU
        return build()
    if sum(p.numel() for p in on_meta.parameters()) > max_parameters:
        return on_meta
    return build()


def print_row(row: Row) -> None:
    codes = " ".join(f"{code}x{n}" if n > 1 else code for code, n in sorted(row.codes.items())) or "-"
    seconds = f"{row.seconds:6.2f}s" if row.method != "not built" else "       "
    method = f"{row.method}*" if row.real_run else row.method
    print(f"{row.zoo:<11} {row.name:<48} {method:<9} {row.where:<4} {seconds} {codes}", flush=True)
    if row.detail and (row.method in ("failed", "not built") or row.detail.strip()):
        for line in row.detail.splitlines():
            print(f"    {line}", flush=True)


def print_totals(rows: list[Row]) -> None:
    print()
    print("(recorded* = the forward needed real values: recorded on one real sample, not on meta)")
    print(f"{'zoo':<11} {'models':>6} {'built':>6} {'fx':>5} {'rec':>5} {'rec*':>5} {'failed':>6} {'median s':>9}  findings by code")
    for zoo in [*dict.fromkeys(row.zoo for row in rows), "all"]:
        mine = [row for row in rows if zoo in ("all", row.zoo)]
        built = [row for row in mine if row.method != "not built"]
        methods = Counter(row.method for row in built)
        codes = sum((row.codes for row in built), Counter())
        median = statistics.median(row.seconds for row in built) if built else 0.0
        real = sum(row.real_run for row in built)
        by_code = " ".join(f"{code}:{n}" for code, n in sorted(codes.items())) or "-"
        print(
            f"{zoo:<11} {len(mine):>6} {len(built):>6} {methods['fx']:>5} {methods['recorded']:>5} {real:>5} {methods['failed']:>6} "
            f"{median:>9.2f}  {by_code}"
        )


def select(models: Iterator[tuple[str, Builder]], only: list[str], limit: int | None) -> list[tuple[str, Builder]]:
    chosen = [(name, build) for name, build in models if not only or any(fnmatch.fnmatchcase(name, p) for p in only)]
    return chosen[:limit] if limit else chosen


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--zoo", action="append", choices=ZOOS, help="a zoo to run (repeatable; default: all)")
    parser.add_argument("--only", default="", help="comma-separated name globs, e.g. 'resnet*,vit_*'")
    parser.add_argument("--limit", type=int, default=None, help="at most this many models per zoo")
    parser.add_argument("--every", type=int, default=10, help="timm: take every N-th model name (default 10)")
    parser.add_argument("--max-parameters", type=float, default=DEFAULT_MAX_PARAMETERS, help="larger models are built on meta")
    parser.add_argument("-v", "--verbose", action="store_true", help="tracebacks for failures, messages for findings")
    options = parser.parse_args(argv)
    only = [p.strip() for p in options.only.split(",") if p.strip()]
    zoos = {"torchvision": torchvision_models, "timm": lambda: timm_models(options.every), "hf": hf_models}
    warnings.filterwarnings("ignore")
    torch.manual_seed(0)
    rows: list[Row] = []
    for zoo in options.zoo or ZOOS:
        for name, build in select(zoos[zoo](), only, options.limit):
            with contextlib.redirect_stdout(io.StringIO()):  # zoo code that prints while building
                row = measure(zoo, name, build, int(options.max_parameters), options.verbose)
            rows.append(row)
            print_row(row)
    print_totals(rows)
    return 1 if any(row.method == "failed" for row in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
