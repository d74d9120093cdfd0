"""nnlint over model zoos nobody here wrote: graph recovery and findings, model by model.

A measurement, not a test. For each model of a zoo it builds the model with random weights (no
downloads), lints it the way a user of the API would — no example input, so nnlint infers one —
and prints one line: how the graph was recovered (fx / recorded / failed), the findings by code,
and the seconds nnlint took. Then totals per zoo.

    python bench/zoo.py                          # every zoo, static rules (slow: hundreds of models)
    python bench/zoo.py --zoo torchvision        # one zoo
    python bench/zoo.py --zoo hf --only 'bert*,gpt2'   # a subset by name (globs)
    python bench/zoo.py --zoo timm --every 50 --limit 10
    python bench/zoo.py --probe --zoo torchvision --family classification   # static and probe, on the CPU

With `--probe` each model is linted once with the probe on the CPU (`nnlint.audit(model,
device="cpu", probe_timeout=...)`), and its line shows the static findings and seconds, then
`| probe` with the probe's findings and seconds: the probe's own time (the forward/backward
steps and checks) is clocked apart from the static part (input inference, graph, static rules).
A probe that fails or times out shows as `probe FAILED` with its NN002; models built on meta
(above --max-parameters) show `probe skipped (meta)`: the probe needs real weights.

It needs torchvision, timm and transformers, which need a newer torch than nnlint's test venv:

    python3 -m venv /tmp/zoo && /tmp/zoo/bin/pip install torch==2.14.1 torchvision==0.29.1 transformers timm
    /tmp/zoo/bin/pip install -e .  && /tmp/zoo/bin/python bench/zoo.py

Exit code 1 when a model that builds yields no graph (or an NN002, from the graph or the probe),
so a run can gate a change.
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
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

import torch
from torch import nn

import nnlint
from nnlint.report import TargetReport

ZOOS = ("torchvision", "timm", "hf")
# Models above this many parameters are built on the meta device (no memory, no init time): nnlint
# lints a meta model as it is, which is how a 70-billion-parameter model is meant to be linted.
DEFAULT_MAX_PARAMETERS = 150_000_000


DEFAULT_PROBE_TIMEOUT = 60.0


# -- the one call into nnlint ---------------------------------------------------------------------
@dataclass
class Linted:
    report: TargetReport
    tracebacks: list[str]
    seconds: float  # the whole audit
    probe_seconds: float = 0.0  # of which the probe run (zero when it did not run)


def lint_model(model: nn.Module, probe: bool, probe_timeout: float) -> Linted:
    """nnlint's report on `model` with no example input given (the probe on the CPU when `probe`)."""
    with _probe_clock() as clock:
        start = time.perf_counter()
        report = nnlint.audit(model, probe=probe, device="cpu", probe_timeout=probe_timeout)
        seconds = time.perf_counter() - start
    return Linted(report.targets[0], list(report.tracebacks), seconds, sum(clock))


@contextlib.contextmanager
def _probe_clock() -> Iterator[list[float]]:
    """Clock the engine's calls of `run_probe`: the audit is one call, its probe part is timed inside.
    The engine imports `run_probe` from `nnlint.probe` when the probe stage starts, so it is wrapped there."""
    import nnlint.probe

    clock: list[float] = []
    run_probe = nnlint.probe.run_probe  # loads the probe session (lazy in nnlint.probe)

    def timed(*args: object, **kwargs: object) -> object:
        start = time.perf_counter()
        try:
            return run_probe(*args, **kwargs)
        finally:
            clock.append(time.perf_counter() - start)

    nnlint.probe.run_probe = timed
    try:
        yield clock
    finally:
        nnlint.probe.run_probe = run_probe


# -- zoos: (name, builder) pairs ------------------------------------------------------------------
Builder = Callable[[], nn.Module]


TORCHVISION_FAMILIES = ("classification", "segmentation", "detection")


def torchvision_models(families: tuple[str, ...] = TORCHVISION_FAMILIES) -> Iterator[tuple[str, Builder]]:
    from torchvision import models

    modules = {"classification": models, "segmentation": models.segmentation, "detection": models.detection}
    for family in families:
        for name in models.list_models(module=modules[family]):
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
    # With --probe: "ran", "failed" (an NN002 from the probe: an error or the timeout), or "skipped (why)".
    probe: str | None = None
    probe_codes: Counter[str] = field(default_factory=Counter)
    probe_seconds: float = 0.0
    probe_detail: str = ""


_PROBE_FAILED = "the probe could not run"  # how the engine's NN002 for the probe begins
_PROBE_SKIPPED = "the probe did not run: "  # the note the engine leaves when the probe cannot apply


def measure(zoo: str, name: str, build: Builder, max_parameters: int, verbose: bool, probe: bool = False, probe_timeout: float = 0) -> Row:
    try:
        model = _build(build, max_parameters)
    except Exception as error:  # a zoo model that does not build here is not nnlint's to recover
        return Row(zoo, name, "not built", detail=f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}"[:160])
    where = "meta" if any(p.is_meta for p in model.parameters()) else "cpu"
    start = time.perf_counter()
    try:
        linted = lint_model(model, probe, probe_timeout)
    except Exception:  # nnlint itself crashed: the worst outcome, always shown
        return Row(zoo, name, "failed", seconds=time.perf_counter() - start, where=where, detail=f"CRASH {traceback.format_exc()}")
    report, tracebacks = linted.report, linted.tracebacks
    static = [f for f in report.findings if f.phase == "static" and not f.message.startswith(_PROBE_FAILED)]
    probed = [f for f in report.findings if f not in static]
    codes = Counter(finding.code for finding in static)
    method = str(report.graph) if report.graph is not None and not codes["NN002"] else "failed"
    detail = ""
    if method == "failed":
        detail = next((f.message for f in static if f.code == "NN002"), "")
        if verbose and tracebacks:
            detail += "\n" + tracebacks[-1]
    elif verbose:
        detail = _listed(f for f in static if f.code != "NN001")
    real_run = any("real values" in note for note in report.notes)
    row = Row(zoo, name, method, codes, linted.seconds - linted.probe_seconds, where=where, real_run=real_run, detail=detail)
    if probe and method != "failed":
        row.probe, row.probe_detail = _probe_outcome(report, probed, tracebacks, verbose)
        row.probe_codes = Counter(f.code for f in probed)
        row.probe_seconds = linted.probe_seconds
    return row


def _probe_outcome(report: TargetReport, probed: list, tracebacks: list[str], verbose: bool) -> tuple[str, str]:
    skipped = next((note.removeprefix(_PROBE_SKIPPED) for note in report.notes if note.startswith(_PROBE_SKIPPED)), None)
    if skipped is not None:
        return ("skipped (meta)" if "meta device" in skipped else f"skipped ({skipped})"), ""
    failure = next((f.message for f in probed if f.code == "NN002"), None)
    if failure is not None:
        return "failed", failure + ("\n" + tracebacks[-1] if verbose and tracebacks else "")
    return "ran", _listed(probed) if verbose else ""


def _listed(findings: Iterable) -> str:
    return "\n".join(f"  {f.code} {f.severity} {f.module}: {f.message}" for f in findings)


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
    seconds = f"{row.seconds:6.2f}s" if row.method != "not built" else "       "
    method = f"{row.method}*" if row.real_run else row.method
    line = f"{row.zoo:<11} {row.name:<48} {method:<9} {row.where:<4} {seconds} {_codes(row.codes)}"
    if row.probe is not None:
        shown = {"ran": "probe", "failed": "probe FAILED"}.get(row.probe, f"probe {row.probe}")
        timed = f" {row.probe_seconds:6.2f}s {_codes(row.probe_codes)}" if not row.probe.startswith("skipped") else ""
        line = f"{line:<100} | {shown}{timed}"
    print(line, flush=True)
    for detail in (row.detail, row.probe_detail):
        for text in detail.splitlines() if detail.strip() else ():
            print(f"    {text}", flush=True)


def _codes(codes: Counter[str]) -> str:
    return " ".join(f"{code}x{n}" if n > 1 else code for code, n in sorted(codes.items())) or "-"


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
    probed = [row for row in rows if row.probe is not None]
    if not probed:
        return
    print()
    print("probe (on the CPU; seconds: the probe run only, median over the models it ran on)")
    print(f"{'zoo':<11} {'probed':>6} {'ran':>5} {'failed':>6} {'skipped':>7} {'(meta)':>6} {'median s':>9}  findings by code")
    for zoo in [*dict.fromkeys(row.zoo for row in probed), "all"]:
        mine = [row for row in probed if zoo in ("all", row.zoo)]
        ran = [row for row in mine if row.probe == "ran"]
        skipped = [row for row in mine if row.probe.startswith("skipped")]  # type: ignore[union-attr]
        meta = sum(row.probe == "skipped (meta)" for row in mine)
        failed = sum(row.probe == "failed" for row in mine)
        codes = sum((row.probe_codes for row in mine), Counter())
        median = statistics.median(row.probe_seconds for row in ran) if ran else 0.0
        by_code = " ".join(f"{code}:{n}" for code, n in sorted(codes.items())) or "-"
        print(f"{zoo:<11} {len(mine):>6} {len(ran):>5} {failed:>6} {len(skipped):>7} {meta:>6} {median:>9.2f}  {by_code}")


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
    parser.add_argument("--family", action="append", choices=TORCHVISION_FAMILIES, help="torchvision: a family (repeatable; default: all)")
    parser.add_argument("--probe", action="store_true", help="also run the probe on the CPU; each line shows static | probe")
    parser.add_argument(
        "--probe-timeout", type=float, default=DEFAULT_PROBE_TIMEOUT, help=f"seconds per model's probe (default {DEFAULT_PROBE_TIMEOUT:g})"
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="tracebacks for failures, messages for findings")
    options = parser.parse_args(argv)
    only = [p.strip() for p in options.only.split(",") if p.strip()]
    families = tuple(options.family or TORCHVISION_FAMILIES)
    zoos = {"torchvision": lambda: torchvision_models(families), "timm": lambda: timm_models(options.every), "hf": hf_models}
    warnings.filterwarnings("ignore")
    torch.manual_seed(0)
    rows: list[Row] = []
    for zoo in options.zoo or ZOOS:
        for name, build in select(zoos[zoo](), only, options.limit):
            with contextlib.redirect_stdout(io.StringIO()):  # zoo code that prints while building
                row = measure(zoo, name, build, int(options.max_parameters), options.verbose, options.probe, options.probe_timeout)
            rows.append(row)
            print_row(row)
    print_totals(rows)
    return 1 if any(row.method == "failed" or row.probe == "failed" for row in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
