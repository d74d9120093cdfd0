"""Made-up constructor arguments against the author's real ones: do they change what nnlint finds?

When nothing in a project gives a model's required arguments, nnlint makes up ordinary values
(nnlint/made_up.py). A finding must never come from a value nnlint chose. For each model below whose
real arguments are known (a README example, a call site in the project, the author's training
script), this lints the model twice, with the same options:

- real: `nnlint "file.py::Class(<the author's arguments>)"`;
- made-up: `nnlint file.py` with every call site, config class and README ignored, so that the
  class is built the way a lone model file is (the made-up arguments, as the note shows);

and prints the codes each run found, side by side. A code in one column and not the other is a
difference to read: the table in bench/RESULTS.md says why each is what it is.

    python bench/made_up_vs_real.py --root /work/realcode            # every case (a few minutes)
    python bench/made_up_vs_real.py --root /work/realcode --only pygat-GAT,unet --static

`--root` is the folder that holds the corpora (public/, heldout2/, heldout3/, heldout4/ case folders).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Case:
    name: str
    folder: str  # the case folder, relative to --root; nnlint runs there
    file: str  # the model file, relative to the case folder
    target: str  # the class or factory, as discovery names it
    real: str  # the author's call, for `::`
    provenance: str


CASES = (
    Case(
        "pygat-GAT",
        "heldout3/pygat-model",
        "models.py",
        "GAT",
        "GAT(nfeat=1433, nhid=8, nclass=7, dropout=0.6, alpha=0.2, nheads=8)",
        "Diego999/pyGAT train.py: nfeat=features.shape[1] (Cora: 1433), nhid=8, nclass=labels.max()+1 (7),"
        " dropout=0.6, nheads=8, alpha=0.2",
    ),
    Case(
        "pygat-SpGAT",
        "heldout3/pygat-model",
        "models.py",
        "SpGAT",
        "SpGAT(nfeat=1433, nhid=8, nclass=7, dropout=0.6, alpha=0.2, nheads=8)",
        "Diego999/pyGAT train.py with --sparse: the same arguments",
    ),
    Case(
        "perceiver",
        "heldout3/perceiver-package",
        "perceiver_pytorch/perceiver_pytorch.py",
        "Perceiver",
        "Perceiver(input_channels=3, input_axis=2, num_freq_bands=6, max_freq=10.0, depth=6, num_latents=256, latent_dim=512,"
        " cross_heads=1, latent_heads=8, cross_dim_head=64, latent_dim_head=64, num_classes=1000, attn_dropout=0.0,"
        " ff_dropout=0.0, weight_tie_layers=False, fourier_encode_data=True, self_per_cross_attn=2)",
        "lucidrains/perceiver-pytorch README.md usage example",
    ),
    Case(
        "mamba",
        "heldout3/mamba-minimal",
        "model.py",
        "Mamba",
        "Mamba(ModelArgs(d_model=768, n_layer=24, vocab_size=50277))",
        "johnma2006/mamba-minimal model.py from_pretrained('state-spaces/mamba-130m'): the checkpoint's config",
    ),
    Case(
        "conformer",
        "heldout3/conformer-package",
        "conformer/model.py",
        "Conformer",
        "Conformer(num_classes=10, input_dim=80, encoder_dim=32, num_encoder_layers=3)",
        "sooftware/conformer README.md usage example",
    ),
    Case(
        "mlp-mixer",
        "heldout2/mlp-mixer-factory",
        "mlp_mixer_pytorch/mlp_mixer_pytorch.py",
        "MLPMixer",
        "MLPMixer(image_size=256, channels=3, patch_size=16, dim=512, depth=12, num_classes=1000)",
        "lucidrains/mlp-mixer-pytorch README.md usage example",
    ),
    Case(
        "attention-transformer",
        "public/attention-transformer",
        "transformer/Models.py",
        "Transformer",
        "Transformer(9521, 9521, src_pad_idx=1, trg_pad_idx=1)",
        "jadore801120/attention-is-all-you-need-pytorch train.py: Multi30k's shared vocabulary (~9.5k), torchtext's <blank> at 1,"
        " the other arguments at train.py's defaults (which are the constructor's)",
    ),
    Case(
        "vit",
        "public/vit-pytorch",
        "vit_pytorch/vit.py",
        "ViT",
        "ViT(image_size=256, patch_size=32, num_classes=1000, dim=1024, depth=6, heads=16, mlp_dim=2048, dropout=0.1, emb_dropout=0.1)",
        "lucidrains/vit-pytorch README.md usage example",
    ),
    Case(
        "unet",
        "public/unet",
        "unet/unet_model.py",
        "UNet",
        "UNet(n_channels=3, n_classes=2, bilinear=False)",
        "milesial/Pytorch-UNet train.py: UNet(n_channels=3, n_classes=args.classes (2), bilinear=args.bilinear (False))",
    ),
    Case(
        "char-rnn",
        "public/char-rnn",
        "model.py",
        "CharRNN",
        "CharRNN(100, 100, 100, model='gru', n_layers=2)",
        "spro/char-rnn.pytorch train.py: n_characters = len(string.printable) (100), --hidden_size 100, --n_layers 2",
    ),
    Case(
        "mingpt",
        "public/mingpt",
        "mingpt/model.py",
        "GPT",
        "GPT(CN(model_type='gpt-mini', n_layer=None, n_head=None, n_embd=None, vocab_size=65, block_size=128,"
        " embd_pdrop=0.1, resid_pdrop=0.1, attn_pdrop=0.1))",
        "karpathy/minGPT projects/chargpt/chargpt.py: the 'gpt-mini' preset, tiny Shakespeare's 65 characters, block_size 128",
    ),
    Case(
        "word-lm-transformer",
        "public/ex-word-lm-model",
        "model.py",
        "TransformerModel",
        "TransformerModel(33278, 200, 2, 200, 2, 0.2)",
        "pytorch/examples word_language_model main.py: Wikitext-2's 33,278 words and the argparse defaults",
    ),
    Case(
        "transformer-package",
        "heldout4/transformer-package",
        "models/model/transformer.py",
        "Transformer",
        "Transformer(src_pad_idx=1, trg_pad_idx=1, trg_sos_idx=2, enc_voc_size=7853, dec_voc_size=5893, d_model=512, n_head=8,"
        " max_len=256, ffn_hidden=2048, n_layers=6, drop_prob=0.1, device=torch.device('cpu'))",
        "hyunwoongko/transformer conf.py's sizes; train.py's vocabularies and indices from data.py's torchtext Multi30k fields"
        " (7,853 German and 5,893 English words at min_freq 2, <pad> at 1, <sos> at 2); the CPU",
    ),
    Case(
        "dlinear",
        "heldout4/dlinear-configs",
        "models/DLinear.py",
        "Model",
        "Model(configs=__import__('argparse').Namespace(seq_len=336, pred_len=96, individual=False, enc_in=7))",
        "cure-lab/LTSF-Linear scripts/EXP-LongForecasting/Linear/etth1.sh and run_longExp.py: seq_len 336, pred_len 96,"
        " ETTh1's 7 variables, individual False (the default)",
    ),
)

# The made-up run: nnlint's CLI with call sites, config classes and README examples ignored.
_FORCED_MADE_UP = """
import sys
import nnlint.loader as loader
loader.script_recipe = lambda *args, **kwargs: (None, None)
loader.config_recipe = lambda *args, **kwargs: None
from nnlint.cli import main
sys.argv = ["nnlint", *sys.argv[1:]]
main()
"""


def lint(case: Case, root: Path, made_up: bool, extra: list[str]) -> tuple[int, Counter[str], list[str]]:
    """The exit code, the codes found for the case's target, and its notes."""
    folder = root / case.folder
    options = ["--format", "json", "--no-isolation", *extra]
    if made_up:
        argv = [sys.executable, "-c", _FORCED_MADE_UP, case.file, *options]
    else:
        argv = [sys.executable, "-m", "nnlint", f"{case.file}::{case.real}", *options]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": os.pathsep.join([str(folder), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run(argv, cwd=folder, env=env, capture_output=True, text=True, timeout=600)
    try:
        report = json.loads(done.stdout)
    except json.JSONDecodeError:
        return done.returncode, Counter({"(no report)": 1}), [done.stderr.strip().splitlines()[-1] if done.stderr.strip() else ""]
    wanted = [t for t in report["targets"] if t["name"] == case.target or t["name"].startswith(f"{case.target}(")]
    if not wanted:
        return done.returncode, Counter({"(no target)": 1}), [e.get("message", "") for e in report.get("errors", [])]
    codes = Counter(f["code"] for f in wanted[0]["findings"])
    return done.returncode, codes, wanted[0]["notes"]


def _shown(codes: Counter[str]) -> str:
    return " ".join(f"{code}x{n}" if n > 1 else code for code, n in sorted(codes.items())) or "-"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=Path(os.environ.get("NNLINT_REALCODE_ROOT", "/work/realcode")))
    parser.add_argument("--only", default="", help="Comma-separated case names.")
    parser.add_argument("--static", action="store_true", help="Static rules only (no probe).")
    options = parser.parse_args(argv)
    only = {name for name in options.only.split(",") if name}
    extra = ["--static"] if options.static else []
    print(f"{'case':24} {'real codes':28} {'made-up codes':28} same  made-up arguments")
    differ = 0
    for case in CASES:
        if only and case.name not in only:
            continue
        if not (options.root / case.folder).is_dir():
            print(f"{case.name:24} (no folder {case.folder})")
            continue
        _, real, _ = lint(case, options.root, False, extra)
        _, made, notes = lint(case, options.root, True, extra)
        arguments = next((n.split(" with made-up arguments ", 1)[1].split(":", 1)[0] for n in notes if "made-up arguments" in n), "?")
        same = real == made
        differ += not same
        print(f"{case.name:24} {_shown(real):28} {_shown(made):28} {'yes' if same else 'NO':5} {arguments}", flush=True)
    return 1 if differ else 0


if __name__ == "__main__":
    sys.exit(main())
