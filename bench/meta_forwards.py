"""What choosing an input costs, before and after its meta forwards were shared, side by side.

    git archive <base commit> | tar -x -C /tmp/base
    python bench/meta_forwards.py --base /tmp/base [--rounds 5] [--repeats 5]

The input stage of a lint with no example input, for models whose cost it changes: choosing the
input (`chosen_input`: each candidate judged on meta; a model with a (time, batch, …) sequence
layer is also checked for where that layer reads the batch), and, for a fully convolutional one,
the smaller images the probe trains on under --probe-budget (`smaller_probe_image`). The graph is
built beside them, untimed (the same work in both). Each round runs the base checkout, then this
one, in fresh processes (`--child`), alternating; each prints the median seconds of `--repeats`
runs per model. The ratio is the median over rounds of base / new. The load average is printed:
this machine is shared.
"""

from __future__ import annotations

import argparse
import importlib.util
import inspect
import json
import math
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch
from torch import nn

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
FILES = {
    "unet (bench/realworld)": HERE / "realworld" / "unet.py",
    "small unet (fixture)": ROOT / "fixtures" / "clean_segmentation_encoder_decoder.py",
    "fcn (fixture)": ROOT / "fixtures" / "nn804_segmentation_dead_relu.py",
}


class WordRNN(nn.Module):
    """pytorch/examples word_language_model/model.py `RNNModel` (LSTM, batch_first=False)."""

    def __init__(self, ntoken: int = 10000, ninp: int = 200, nhid: int = 200, nlayers: int = 2) -> None:
        super().__init__()
        self.drop = nn.Dropout(0.2)
        self.encoder = nn.Embedding(ntoken, ninp)
        self.rnn = nn.LSTM(ninp, nhid, nlayers, dropout=0.2)
        self.decoder = nn.Linear(nhid, ntoken)
        self.nhid, self.nlayers = nhid, nlayers

    def forward(self, input, hidden):
        output, hidden = self.rnn(self.drop(self.encoder(input)), hidden)
        return self.decoder(self.drop(output)), hidden

    def init_hidden(self, bsz):
        weight = next(self.parameters())
        return weight.new_zeros(self.nlayers, bsz, self.nhid), weight.new_zeros(self.nlayers, bsz, self.nhid)


class WordTransformer(nn.Transformer):
    """pytorch/examples word_language_model/model.py `TransformerModel` (batch_first=False)."""

    def __init__(self, ntoken: int = 10000, ninp: int = 200, nhead: int = 2, nhid: int = 200, nlayers: int = 2) -> None:
        super().__init__(d_model=ninp, nhead=nhead, dim_feedforward=nhid, num_encoder_layers=nlayers)
        self.input_emb = nn.Embedding(ntoken, ninp)
        self.ninp = ninp
        self.decoder = nn.Linear(ninp, ntoken)

    def forward(self, src):
        mask = torch.log(torch.tril(torch.ones(len(src), len(src))))
        src = self.input_emb(src) * math.sqrt(self.ninp)
        return torch.log_softmax(self.decoder(self.encoder(src, mask=mask)), dim=-1)


class TransposingEncoder(nn.Module):
    """fairseq's LSTM encoder pattern: (batch, time) tokens, transposed for its LSTM by the forward."""

    def __init__(self) -> None:
        super().__init__()
        self.embed_tokens = nn.Embedding(10000, 256)
        self.lstm = nn.LSTM(256, 256, 2)
        self.head = nn.Linear(256, 10000)

    def forward(self, src_tokens):
        x, _ = self.lstm(self.embed_tokens(src_tokens).transpose(0, 1))
        return self.head(x.transpose(0, 1))


def _models() -> dict[str, nn.Module]:
    models: dict[str, nn.Module] = {}
    for name, path in FILES.items():
        spec = importlib.util.spec_from_file_location(path.stem, path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        models[name] = module.model
    models["word LSTM (time-major)"] = WordRNN()
    models["word Transformer (time-major)"] = WordTransformer()
    models["fairseq-style encoder"] = TransposingEncoder()
    return models


def _child(repeats: int) -> None:
    """Median seconds of the input stage per model, for the nnlint on sys.path."""
    from nnlint.graph import ModuleLocator, build_graph
    from nnlint.inputs import chosen_input, smaller_probe_image, smallest_feature_map
    from nnlint.loader import LoadedTarget
    from nnlint.targets import Target

    takes_graph = "graph" in inspect.signature(smaller_probe_image).parameters
    results = {}
    for name, model in _models().items():
        loaded = LoadedTarget(Target(model), name, None, None)  # type: ignore[arg-type]
        seconds = []
        for _ in range(repeats + 1):  # the first run warms caches: not counted
            start = time.perf_counter()
            chosen = chosen_input(loaded, None)
            elapsed = time.perf_counter() - start
            graph = build_graph(model, chosen.value, ModuleLocator(model))  # untimed: the same in both
            start = time.perf_counter()
            extra = (graph,) if takes_graph else ()
            smaller_probe_image(model, chosen.value, smallest_feature_map(graph), *extra)
            seconds.append(elapsed + time.perf_counter() - start)
        results[name] = statistics.median(seconds[1:])
    print(json.dumps(results))


def _run(checkout: Path, repeats: int) -> dict[str, float]:
    environment = {**os.environ, "PYTHONPATH": str(checkout), "OMP_NUM_THREADS": "1"}
    command = [sys.executable, str(Path(__file__).resolve()), "--child", "--repeats", str(repeats)]
    done = subprocess.run(command, env=environment, capture_output=True, text=True, check=True, cwd=checkout)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--base", type=Path, help="a checkout of the base commit (git archive <commit> | tar -x -C DIR)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(args.repeats)
        return
    if args.base is None:
        parser.error("--base is required (a checkout of the commit to compare with)")
    load_before = os.getloadavg()
    base_runs, new_runs = [], []
    for _ in range(args.rounds):
        base_runs.append(_run(args.base.resolve(), args.repeats))
        new_runs.append(_run(ROOT, args.repeats))
    load_after = os.getloadavg()
    print(f"load average (1, 5, 15 min): before {load_before[0]:.2f} {load_before[1]:.2f} {load_before[2]:.2f}, "
          f"after {load_after[0]:.2f} {load_after[1]:.2f} {load_after[2]:.2f}; {os.cpu_count()} CPUs")  # fmt: skip
    print(f"{'model':32} {'base ms':>9} {'new ms':>9} {'base/new':>9}   (medians over {args.rounds} rounds of {args.repeats})")
    for name in new_runs[0]:
        base = statistics.median(run[name] for run in base_runs)
        new = statistics.median(run[name] for run in new_runs)
        ratio = statistics.median(b[name] / n[name] for b, n in zip(base_runs, new_runs, strict=True))
        print(f"{name:32} {base * 1e3:9.1f} {new * 1e3:9.1f} {ratio:9.2f}x")


if __name__ == "__main__":
    main()
