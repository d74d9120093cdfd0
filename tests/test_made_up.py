"""A model whose required constructor arguments nothing in its project gives is built from made-up
ordinary values (nnlint/made_up.py), linted, and the note names every value and the `::` call that
gives real ones. The made-up values must never be where a finding comes from: each fixture below is
linted once with its author's real arguments (`::`) and once with made-up ones, and the codes must
be the same. An argument nnlint cannot classify keeps the one-line message that says how to name it.

The fixtures are rewritten (not copied) from the patterns of public projects, named in each.
"""

from __future__ import annotations

import inspect
import json
import textwrap
from collections import Counter
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from torch import nn

from nnlint.cli import main
from nnlint.made_up import CANDIDATES, Kind, candidate_arguments, classify

# Diego999/pyGAT (layers.py, models.py): a graph attention network over a whole graph,
# `forward(x, adj)` with a dense N×N adjacency; six required arguments, none with a default, and
# the layers' weights are bare nn.Parameters (no Linear to read a size from).
GAT = """\
    import torch
    import torch.nn.functional as F
    from torch import nn


    class AttentionHead(nn.Module):
        def __init__(self, in_features, out_features, dropout, alpha, concat=True):
            super().__init__()
            self.dropout, self.concat, self.out_features = dropout, concat, out_features
            self.W = nn.Parameter(torch.empty(in_features, out_features))
            self.a = nn.Parameter(torch.empty(2 * out_features, 1))
            nn.init.xavier_uniform_(self.W, gain=1.414)
            nn.init.xavier_uniform_(self.a, gain=1.414)
            self.leakyrelu = nn.LeakyReLU(alpha)

        def forward(self, h, adj):
            Wh = h @ self.W
            e = self.leakyrelu(Wh @ self.a[: self.out_features] + (Wh @ self.a[self.out_features :]).T)
            attention = torch.where(adj > 0, e, torch.full_like(e, -9e15))
            attention = F.dropout(F.softmax(attention, dim=1), self.dropout, training=self.training)
            out = attention @ Wh
            return F.elu(out) if self.concat else out


    class GAT(nn.Module):
        def __init__(self, nfeat, nhid, nclass, dropout, alpha, nheads):
            super().__init__()
            self.dropout = dropout
            self.heads = nn.ModuleList([AttentionHead(nfeat, nhid, dropout=dropout, alpha=alpha) for _ in range(nheads)])
            self.out_att = AttentionHead(nhid * nheads, nclass, dropout=dropout, alpha=alpha, concat=False)

        def forward(self, x, adj):
            x = F.dropout(x, self.dropout, training=self.training)
            x = torch.cat([head(x, adj) for head in self.heads], dim=1)
            x = F.dropout(x, self.dropout, training=self.training)
            return F.log_softmax(F.elu(self.out_att(x, adj)), dim=1)
    """
# pyGAT's train.py on Cora: 1,433 word features, 8 hidden units per head, 7 classes, dropout 0.6,
# LeakyReLU slope 0.2, 8 heads.
GAT_REAL = "GAT(nfeat=1433, nhid=8, nclass=7, dropout=0.6, alpha=0.2, nheads=8)"

# johnma2006/mamba-minimal (model.py): the model takes one dataclass whose first fields are required
# (`Mamba(args: ModelArgs)`, `ModelArgs(d_model, n_layer, vocab_size, d_state=16, ...)`), with
# `from __future__ import annotations`, so every annotation is a string.
SSM = """\
    from __future__ import annotations

    from dataclasses import dataclass

    import torch
    from torch import nn


    @dataclass
    class ModelArgs:
        d_model: int
        n_layer: int
        vocab_size: int
        expand: int = 2

        def __post_init__(self):
            self.d_inner = self.expand * self.d_model


    class ResidualBlock(nn.Module):
        def __init__(self, args: ModelArgs):
            super().__init__()
            self.norm = nn.LayerNorm(args.d_model)
            self.in_proj = nn.Linear(args.d_model, args.d_inner * 2)
            self.conv = nn.Conv1d(args.d_inner, args.d_inner, kernel_size=4, groups=args.d_inner, padding=3)
            self.out_proj = nn.Linear(args.d_inner, args.d_model)

        def forward(self, x):
            length = x.shape[1]
            x_and_res = self.in_proj(self.norm(x))
            h, res = x_and_res.chunk(2, dim=-1)
            h = self.conv(h.transpose(1, 2))[:, :, :length].transpose(1, 2)
            return x + self.out_proj(nn.functional.silu(h) * nn.functional.silu(res))


    class Mamba(nn.Module):
        def __init__(self, args: ModelArgs):
            super().__init__()
            self.embedding = nn.Embedding(args.vocab_size, args.d_model)
            self.layers = nn.ModuleList([ResidualBlock(args) for _ in range(args.n_layer)])
            self.norm_f = nn.LayerNorm(args.d_model)
            self.lm_head = nn.Linear(args.d_model, args.vocab_size, bias=False)
            self.lm_head.weight = self.embedding.weight

        def forward(self, input_ids):
            x = self.embedding(input_ids)
            for layer in self.layers:
                x = layer(x)
            return self.lm_head(self.norm_f(x))
    """
# mamba-minimal's from_pretrained('state-spaces/mamba-130m') config, with 2 of its 24 layers:
# the layers are identical, and 24 would only make the test slow.
SSM_REAL = "Mamba(ModelArgs(d_model=768, n_layer=2, vocab_size=50280))"

# jadore801120/attention-is-all-you-need-pytorch (transformer/Models.py): vocabularies and padding
# indices are required, everything else has a default; shared source/target embeddings need the
# two vocabularies equal, and the padding index must lie inside them.
SEQ2SEQ = """\
    import torch
    from torch import nn


    class Seq2SeqTransformer(nn.Module):
        def __init__(self, n_src_vocab, n_trg_vocab, src_pad_idx, trg_pad_idx, d_model=64, n_head=4, n_layers=2, dropout=0.1):
            super().__init__()
            assert n_src_vocab == n_trg_vocab, "shared embeddings need one vocabulary"
            self.src_pad_idx, self.trg_pad_idx = src_pad_idx, trg_pad_idx
            self.embedding = nn.Embedding(n_src_vocab, d_model, padding_idx=src_pad_idx)
            self.transformer = nn.Transformer(
                d_model, n_head, n_layers, n_layers, dim_feedforward=4 * d_model, dropout=dropout, batch_first=True
            )
            self.projection = nn.Linear(d_model, n_trg_vocab, bias=False)
            self.projection.weight = self.embedding.weight

        def forward(self, src_seq, trg_seq):
            src_mask = src_seq == self.src_pad_idx
            trg_mask = trg_seq == self.trg_pad_idx
            causal = nn.Transformer.generate_square_subsequent_mask(trg_seq.shape[1])
            out = self.transformer(
                self.embedding(src_seq),
                self.embedding(trg_seq),
                tgt_mask=causal,
                src_key_padding_mask=src_mask,
                tgt_key_padding_mask=trg_mask,
            )
            return self.projection(out)
    """
# The repository's train.py on Multi30k: one shared vocabulary of about 9.5k words, `<blank>` at index 1.
SEQ2SEQ_REAL = "Seq2SeqTransformer(9521, 9521, src_pad_idx=1, trg_pad_idx=1)"

# lucidrains/perceiver-pytorch (perceiver_pytorch.py): keyword-only arguments, data laid out
# (batch, *axes, channels), with the number of axes declared (`input_axis=2`).
PERCEIVER = """\
    import torch
    from torch import nn


    class Perceiver(nn.Module):
        def __init__(self, *, num_freq_bands, depth, max_freq, input_channels=3, input_axis=2, latent_dim=64, num_classes=10):
            super().__init__()
            self.input_axis, self.max_freq, self.num_freq_bands = input_axis, max_freq, num_freq_bands
            input_dim = input_axis * (num_freq_bands * 2 + 1) + input_channels
            self.latents = nn.Parameter(torch.randn(8, latent_dim))
            self.layers = nn.ModuleList(
                [nn.MultiheadAttention(latent_dim, 4, kdim=input_dim, vdim=input_dim, batch_first=True) for _ in range(depth)]
            )
            self.to_logits = nn.Sequential(nn.LayerNorm(latent_dim), nn.Linear(latent_dim, num_classes))

        def fourier_features(self, axes):
            positions = torch.stack(torch.meshgrid(*[torch.linspace(-1.0, 1.0, n) for n in axes], indexing="ij"), dim=-1)
            scales = torch.linspace(1.0, self.max_freq / 2, self.num_freq_bands)
            angles = positions.unsqueeze(-1) * scales * torch.pi
            return torch.cat([angles.sin(), angles.cos(), positions.unsqueeze(-1)], dim=-1).flatten(-2)

        def forward(self, data):
            batch, *axes, _ = data.shape
            assert len(axes) == self.input_axis, "input data must have the right number of axes"
            encoded = self.fourier_features(axes).expand(batch, *axes, -1)
            context = torch.cat([data, encoded], dim=-1).flatten(1, -2)
            x = self.latents.expand(batch, -1, -1)
            for attention in self.layers:
                x = x + attention(x, context, context, need_weights=False)[0]
            return self.to_logits(x.mean(dim=1))
    """
# The README's example: num_freq_bands=6, max_freq=10., depth=6.
PERCEIVER_REAL = "Perceiver(num_freq_bands=6, depth=6, max_freq=10.0)"


# karpathy/minGPT (mingpt/model.py): `GPT(config)`, the config from the class's own
# `get_default_config()`, whose sizes are None ("must be filled in externally") and whose preset
# `model_type='gpt'` excludes explicit sizes (the constructor asserts exactly one of the two).
MINGPT = """\
    from torch import nn


    class CfgNode:
        def __init__(self, **kwargs):
            self.__dict__.update(kwargs)


    class GPT(nn.Module):
        @staticmethod
        def get_default_config():
            return CfgNode(model_type="gpt", n_layer=None, n_head=None, n_embd=None, vocab_size=None, block_size=None, embd_pdrop=0.1)

        def __init__(self, config):
            super().__init__()
            assert config.vocab_size is not None and config.block_size is not None
            type_given = config.model_type is not None
            params_given = all([config.n_layer is not None, config.n_head is not None, config.n_embd is not None])
            assert type_given ^ params_given
            if type_given:
                config.__dict__.update({"gpt-mini": dict(n_layer=6, n_head=6, n_embd=192)}[config.model_type])
            self.block_size = config.block_size
            self.wte = nn.Embedding(config.vocab_size, config.n_embd)
            self.wpe = nn.Embedding(config.block_size, config.n_embd)
            self.drop = nn.Dropout(config.embd_pdrop)
            layer = nn.TransformerEncoderLayer(config.n_embd, config.n_head, 4 * config.n_embd, batch_first=True, norm_first=True)
            self.blocks = nn.TransformerEncoder(layer, config.n_layer)
            self.ln_f = nn.LayerNorm(config.n_embd)
            self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)

        def forward(self, idx):
            positions = self.wpe.weight[: idx.shape[1]]
            x = self.drop(self.wte(idx) + positions)
            causal = nn.Transformer.generate_square_subsequent_mask(idx.shape[1])
            return self.lm_head(self.ln_f(self.blocks(x, mask=causal, is_causal=True)))
    """
# minGPT's projects/chargpt: the 'gpt-mini' preset, a character vocabulary (65 for tiny Shakespeare), block_size 128.
MINGPT_REAL = "GPT(CfgNode(model_type='gpt-mini', n_layer=None, n_head=None, n_embd=None, vocab_size=65, block_size=128, embd_pdrop=0.1))"

# hyunwoongko/transformer (models/model/transformer.py, models/embedding/positional_encoding.py):
# twelve required arguments, none with a default, among them the `device` the positional table is
# made on (a plain tensor attribute, not a buffer), a start-of-sequence index beside the padding
# indices, separate encoder and decoder vocabularies (`enc_voc_size`, `dec_voc_size`), the
# feed-forward width `ffn_hidden` and the rate `drop_prob`; `forward(src, trg)` takes two token inputs.
PACKAGE_TRANSFORMER = """\
    import torch
    from torch import nn


    class PositionalEncoding(nn.Module):
        def __init__(self, d_model, max_len, device):
            super().__init__()
            self.encoding = torch.zeros(max_len, d_model, device=device)
            self.encoding.requires_grad = False
            pos = torch.arange(0, max_len, device=device).float().unsqueeze(1)
            _2i = torch.arange(0, d_model, step=2, device=device).float()
            self.encoding[:, 0::2] = torch.sin(pos / (10000 ** (_2i / d_model)))
            self.encoding[:, 1::2] = torch.cos(pos / (10000 ** (_2i / d_model)))

        def forward(self, x):
            return self.encoding[: x.shape[1], :]


    class TransformerEmbedding(nn.Module):
        def __init__(self, vocab_size, d_model, max_len, drop_prob, device):
            super().__init__()
            self.tok_emb = nn.Embedding(vocab_size, d_model, padding_idx=1)
            self.pos_emb = PositionalEncoding(d_model, max_len, device)
            self.drop_out = nn.Dropout(p=drop_prob)

        def forward(self, x):
            return self.drop_out(self.tok_emb(x) + self.pos_emb(x))


    class Transformer(nn.Module):
        def __init__(self, src_pad_idx, trg_pad_idx, trg_sos_idx, enc_voc_size, dec_voc_size, d_model, n_head, max_len,
                     ffn_hidden, n_layers, drop_prob, device):
            super().__init__()
            self.src_pad_idx, self.trg_pad_idx, self.trg_sos_idx = src_pad_idx, trg_pad_idx, trg_sos_idx
            self.device = device
            self.enc_emb = TransformerEmbedding(enc_voc_size, d_model, max_len, drop_prob, device)
            self.dec_emb = TransformerEmbedding(dec_voc_size, d_model, max_len, drop_prob, device)
            layer = dict(d_model=d_model, nhead=n_head, dim_feedforward=ffn_hidden, dropout=drop_prob, batch_first=True)
            self.encoder = nn.TransformerEncoder(nn.TransformerEncoderLayer(**layer), n_layers)
            self.decoder = nn.TransformerDecoder(nn.TransformerDecoderLayer(**layer), n_layers)
            self.linear = nn.Linear(d_model, dec_voc_size)

        def forward(self, src, trg):
            src_pad = src == self.src_pad_idx
            trg_len = trg.shape[1]
            causal = torch.triu(torch.ones(trg_len, trg_len, device=self.device), diagonal=1).bool()
            memory = self.encoder(self.enc_emb(src), src_key_padding_mask=src_pad)
            out = self.decoder(self.dec_emb(trg), memory, tgt_mask=causal, memory_key_padding_mask=src_pad)
            return self.linear(out)
    """
# conf.py's sizes (d_model 512, 8 heads, 2048 feed-forward, 6 layers, max_len 256, drop_prob 0.1);
# train.py takes the vocabularies and special indices from torchtext's Multi30k fields (data.py):
# 7,853 German and 5,893 English words, `<pad>` at 1, `<sos>` at 2.
PACKAGE_TRANSFORMER_REAL = (
    "Transformer(src_pad_idx=1, trg_pad_idx=1, trg_sos_idx=2, enc_voc_size=7853, dec_voc_size=5893, d_model=512,"
    " n_head=8, max_len=256, ffn_hidden=2048, n_layers=6, drop_prob=0.1, device=torch.device('cpu'))"
)

# cure-lab/LTSF-Linear (models/DLinear.py): `Model(configs)` with configs the argparse Namespace
# run_longExp.py builds; the constructor reads configs.seq_len, pred_len, individual (tested in an
# `if`) and enc_in; forward(x) takes (batch, seq_len, enc_in) and splits it into trend and season.
DLINEAR = """\
    import torch
    from torch import nn


    class MovingAverage(nn.Module):
        def __init__(self, kernel_size):
            super().__init__()
            self.kernel_size = kernel_size
            self.avg = nn.AvgPool1d(kernel_size=kernel_size, stride=1, padding=0)

        def forward(self, x):
            front = x[:, 0:1, :].repeat(1, (self.kernel_size - 1) // 2, 1)
            end = x[:, -1:, :].repeat(1, (self.kernel_size - 1) // 2, 1)
            x = torch.cat([front, x, end], dim=1)
            return self.avg(x.permute(0, 2, 1)).permute(0, 2, 1)


    class Model(nn.Module):
        def __init__(self, configs):
            super().__init__()
            self.seq_len = configs.seq_len
            self.pred_len = configs.pred_len
            self.moving_avg = MovingAverage(25)
            self.individual = configs.individual
            self.channels = configs.enc_in
            if self.individual:
                self.seasonal = nn.ModuleList([nn.Linear(self.seq_len, self.pred_len) for _ in range(self.channels)])
                self.trend = nn.ModuleList([nn.Linear(self.seq_len, self.pred_len) for _ in range(self.channels)])
            else:
                self.seasonal = nn.Linear(self.seq_len, self.pred_len)
                self.trend = nn.Linear(self.seq_len, self.pred_len)

        def forward(self, x):
            trend = self.moving_avg(x)
            season = (x - trend).permute(0, 2, 1)
            trend = trend.permute(0, 2, 1)
            if self.individual:
                out = torch.stack([self.seasonal[i](season[:, i]) + self.trend[i](trend[:, i]) for i in range(self.channels)], 1)
            else:
                out = self.seasonal(season) + self.trend(trend)
            return out.permute(0, 2, 1)
    """
# The repository's scripts (scripts/EXP-LongForecasting/Linear/etth1.sh and run_longExp.py's
# defaults): a 336-step window, 96 steps ahead, ETTh1's 7 variables, one shared Linear pair.
DLINEAR_REAL = "Model(configs=__import__('argparse').Namespace(seq_len=336, pred_len=96, individual=False, enc_in=7))"


def _lint(path: Path | str, *options: str) -> tuple[int, dict]:
    result = CliRunner().invoke(main, [str(path), "--format", "json", "--no-isolation", *options], catch_exceptions=False)
    return result.exit_code, json.loads(result.stdout)


def _codes(target: dict) -> Counter[str]:
    return Counter(finding["code"] for finding in target["findings"])


def _write(tmp_path: Path, source: str) -> Path:
    path = tmp_path / "models.py"
    path.write_text(textwrap.dedent(source))
    return path


@pytest.mark.parametrize(
    ("source", "name", "real", "made_up"),
    [
        (GAT, "GAT", GAT_REAL, "nfeat=256, nhid=256, nclass=10, dropout=0.1, alpha=0.2, nheads=4"),
        (SSM, "Mamba", SSM_REAL, "args=ModelArgs(d_model=256, n_layer=2, vocab_size=100)"),
        (SEQ2SEQ, "Seq2SeqTransformer", SEQ2SEQ_REAL, "n_src_vocab=100, n_trg_vocab=100, src_pad_idx=0, trg_pad_idx=0"),
        (PERCEIVER, "Perceiver", PERCEIVER_REAL, "num_freq_bands=6, depth=2, max_freq=10.0"),
        (
            MINGPT,
            "GPT",
            MINGPT_REAL,
            "config=GPT.get_default_config() with model_type=None, n_layer=2, n_head=4, n_embd=256, vocab_size=100, block_size=16",
        ),
        (
            PACKAGE_TRANSFORMER,
            "Transformer",
            PACKAGE_TRANSFORMER_REAL,
            "src_pad_idx=0, trg_pad_idx=0, trg_sos_idx=0, enc_voc_size=100, dec_voc_size=100, d_model=256, n_head=4,"
            " max_len=16, ffn_hidden=256, n_layers=2, drop_prob=0.1, device=torch.device('cpu')",
        ),
        (DLINEAR, "Model", DLINEAR_REAL, "configs=SimpleNamespace(seq_len=16, pred_len=16, individual=False, enc_in=8)"),
    ],
    ids=["pygat", "mamba-minimal", "attention-is-all-you-need", "perceiver", "mingpt", "transformer-package", "dlinear"],
)
def test_made_up_arguments_find_what_the_real_ones_find(tmp_path, source, name, real, made_up):
    path = _write(tmp_path, source)
    made_up_code, made_up_report = _lint(path, "--static")
    (target,) = made_up_report["targets"]
    note = f'built {name} with made-up arguments {made_up}: no call in the project gives them; give yours: nnlint "{path}::{name}('
    assert target["name"] == name and any(n.startswith(note) for n in target["notes"]), target["notes"]
    real_code, real_report = _lint(f"{path}::{real}", "--static")
    (real_target,) = real_report["targets"]
    assert "NN002" not in _codes(real_target) and "NN002" not in _codes(target)
    assert _codes(target) == _codes(real_target)
    assert made_up_code == real_code


@pytest.mark.slow
@pytest.mark.parametrize(
    ("source", "real", "missed"),
    [
        # The probe's total gradient norm grows with the width of the made-up input: pyGAT's 1,433
        # N(0, 1) features give 2e4 (NN802 above 1e3), 256 of them do not. A made-up value can hide a
        # finding that depends on a size; it never adds one.
        (GAT, GAT_REAL, {"NN802"}),
        (SEQ2SEQ, SEQ2SEQ_REAL, set()),
        (PACKAGE_TRANSFORMER, PACKAGE_TRANSFORMER_REAL, set()),
        (DLINEAR, DLINEAR_REAL, set()),
    ],
    ids=["pygat", "attention-is-all-you-need", "transformer-package", "dlinear"],
)
def test_with_the_probe_too_made_up_arguments_add_no_finding(tmp_path, source, real, missed):
    path = _write(tmp_path, source)
    made_up_code, made_up_report = _lint(path)
    real_code, real_report = _lint(f"{path}::{real}")
    made_up_codes, real_codes = set(_codes(made_up_report["targets"][0])), set(_codes(real_report["targets"][0]))
    for report in (made_up_report, real_report):  # both probed: a code the probe finds is compared, not missing from one
        assert not [note for note in report["targets"][0]["notes"] if "the probe did not run" in note]
    assert made_up_codes == real_codes - missed and missed <= real_codes
    assert made_up_code <= real_code


def test_a_made_up_graph_is_one_whole_graph_not_a_batch(tmp_path):
    path = _write(tmp_path, GAT)
    _, report = _lint(path)
    notes = " ".join(report["targets"][0]["notes"])
    assert "not checked: the input is one graph (an N×N adjacency beside its N nodes' features)" in notes
    # Its nodes are not a training batch: the probe's summary does not count them as one.
    assert "inferred an input from the forward's adjacency argument `adj`" in notes
    assert "one input, not a batch" in notes and ", batch 16," not in notes


def test_an_argument_nnlint_cannot_classify_keeps_the_one_line_message(tmp_path):
    # pytorch-cifar's `ResNet(block, num_blocks)`: `block` is a class; nothing is made up for it.
    source = """\
        from torch import nn


        class ResNet(nn.Module):
            def __init__(self, block, hidden, num_classes=10):
                super().__init__()
                self.stem = block(3, hidden)
                self.head = nn.Linear(hidden, num_classes)

            def forward(self, x):
                return self.head(self.stem(x).mean((2, 3)))
        """
    path = _write(tmp_path, source)
    result = CliRunner().invoke(main, [str(path), "--static", "--no-isolation"], catch_exceptions=False)
    assert result.exit_code == 2
    message = (
        f'skipped `ResNet`: its constructor needs arguments (block, hidden); name them: nnlint "{path}::ResNet(block=..., hidden=...)"'
    )
    assert message in result.stderr


def test_a_named_target_is_not_built_from_made_up_arguments(tmp_path):
    # `::GAT` names the class: its arguments are the user's to give, as before.
    path = _write(tmp_path, GAT)
    result = CliRunner().invoke(main, [f"{path}::GAT", "--static", "--no-isolation"], catch_exceptions=False)
    assert result.exit_code == 2
    assert "`::GAT`: its constructor needs arguments (nfeat, nhid, nclass, dropout, alpha, nheads)" in result.stderr


def test_every_candidate_assignment_keeps_the_common_constraints():
    for values in CANDIDATES:
        assert values[Kind.WIDTH] % values[Kind.HEADS] == 0 and values[Kind.WIDTH] % 8 == 0
        assert values[Kind.IMAGE_SIDE] % values[Kind.PATCH_SIDE] == 0
        assert values[Kind.PAD_INDEX] < values[Kind.VOCABULARY] and values[Kind.PAD_INDEX] < values[Kind.CLASSES]
        assert values[Kind.SEQUENCE_LENGTH] >= 16  # nnlint's made-up token sequences are 16 long
        assert 0 < values[Kind.RATE] < 0.5 and 0 < values[Kind.SLOPE] < 1


def test_arguments_are_classified_by_name_annotation_and_use():
    def factory(nhid, vocab_size, src_pad_idx, p, depth, image_size, flag: bool, scale: float, factor: int, sizes: tuple[int, int]):
        raise NotImplementedError

    names = ("nhid", "vocab_size", "src_pad_idx", "p", "depth", "image_size", "flag", "scale", "factor")
    kinds = {name: classify(factory, name) for name in names}
    assert kinds == {
        "nhid": Kind.WIDTH,
        "vocab_size": Kind.VOCABULARY,
        "src_pad_idx": Kind.PAD_INDEX,
        "p": Kind.RATE,
        "depth": Kind.COUNT,
        "image_size": Kind.IMAGE_SIDE,
        "flag": Kind.FLAG,
        "scale": Kind.RATE,
        "factor": Kind.INTEGER,  # an int of unknown meaning is a small one (2), never a width
    }
    candidates, unknown = candidate_arguments(factory, ["sizes"])
    assert unknown == [] and candidates[0].args == ((256, 256),)

    class Net(nn.Module):
        def __init__(self, ninp, rate, norm: object, activation):
            super().__init__()
            self.encoder = nn.Linear(ninp, 4)  # a size given to nn.Linear
            self.drop = nn.Dropout(rate)  # a rate given to nn.Dropout

    assert classify(Net, "ninp") is Kind.WIDTH and classify(Net, "rate") is Kind.RATE
    assert classify(Net, "norm") is None and classify(Net, "activation") is None
    candidates, unknown = candidate_arguments(Net, ["ninp", "activation"])
    assert candidates == [] and unknown == ["activation"]


def test_device_special_indices_vocabularies_and_widths_of_a_from_scratch_transformer_classify():
    def factory(
        device, trg_sos_idx, eos_idx, enc_voc_size, dec_voc_size, voc_size, ffn_hidden, dim_feedforward, drop_prob, where: torch.device
    ):
        raise NotImplementedError

    kinds = {name: classify(factory, name) for name in inspect.signature(factory).parameters}
    assert kinds == {
        "device": Kind.DEVICE,
        "trg_sos_idx": Kind.PAD_INDEX,  # a special token's index, below the vocabulary as padding's is
        "eos_idx": Kind.PAD_INDEX,
        "enc_voc_size": Kind.VOCABULARY,
        "dec_voc_size": Kind.VOCABULARY,
        "voc_size": Kind.VOCABULARY,
        "ffn_hidden": Kind.WIDTH,
        "dim_feedforward": Kind.WIDTH,
        "drop_prob": Kind.RATE,
        "where": Kind.DEVICE,  # annotated torch.device
    }
    (first, *_), unknown = candidate_arguments(factory, ["device"])
    assert unknown == [] and first.args == (torch.device("cpu"),) and first.shown == ("device=torch.device('cpu')",)


def test_a_namespace_config_is_made_up_from_the_attributes_its_constructor_reads():
    class Forecaster(nn.Module):
        def __init__(self, configs):
            super().__init__()
            self.individual = configs.individual
            self.head = nn.Linear(configs.seq_len, configs.pred_len)
            self.mix = nn.Linear(configs.enc_in, configs.c_out)
            if not self.individual:
                self.shared = nn.Identity()

    (first, *_), unknown = candidate_arguments(Forecaster, ["configs"])
    assert unknown == []
    assert first.shown == ("configs=SimpleNamespace(individual=False, seq_len=16, pred_len=16, enc_in=8, c_out=8)",)
    (configs,) = first.args
    assert vars(configs) == {"individual": False, "seq_len": 16, "pred_len": 16, "enc_in": 8, "c_out": 8}


def test_a_namespace_config_with_an_attribute_nnlint_cannot_classify_is_not_made_up(tmp_path):
    # An attribute that classifies by nothing (`configs.freq`, Informer's "h" for hourly), or the config
    # passed on whole to a part (`Encoder(configs)`): what the config must hold is not known here.
    class Informer(nn.Module):
        def __init__(self, configs):
            super().__init__()
            self.freq = configs.freq
            self.head = nn.Linear(configs.seq_len, configs.pred_len)

    class Stacked(nn.Module):
        def __init__(self, configs):
            super().__init__()
            self.head = nn.Linear(configs.seq_len, configs.pred_len)
            self.encoder = Informer(configs)

    assert candidate_arguments(Informer, ["configs"]) == ([], ["configs"])
    assert candidate_arguments(Stacked, ["configs"]) == ([], ["configs"])
    source = """\
        from torch import nn


        class Model(nn.Module):
            def __init__(self, configs):
                super().__init__()
                self.freq = configs.freq
                self.head = nn.Linear(configs.seq_len, configs.pred_len)

            def forward(self, x):
                return self.head(x)
        """
    path = _write(tmp_path, source)
    result = CliRunner().invoke(main, [str(path), "--static", "--no-isolation"], catch_exceptions=False)
    assert result.exit_code == 2
    assert f'skipped `Model`: its constructor needs arguments (configs); name them: nnlint "{path}::Model(configs=...)"' in result.stderr


def test_a_real_call_longer_than_a_file_name_is_linted_not_a_traceback(tmp_path):
    # perceiver-pytorch's README call has 17 keyword arguments: past the 255 bytes a file name may
    # have, which the command line once stat'ed as if it were one (OSError: File name too long).
    path = _write(tmp_path, GAT)
    long_call = GAT_REAL.replace(", ", "," + " " * 60)
    assert len(f"{path}::{long_call}") > 300
    code, report = _lint(f"{path}::{long_call}", "--static")
    assert code == 0 and report["targets"][0]["name"].startswith("GAT(")


def test_the_text_report_names_the_made_up_values_and_the_call_to_give_real_ones(tmp_path, monkeypatch):
    path = _write(tmp_path, GAT)
    monkeypatch.chdir(tmp_path)  # the note shows the path relative to here: no long word for the wrapping to break
    result = CliRunner().invoke(main, [path.name, "--static", "--no-isolation"], catch_exceptions=False)
    assert result.exit_code == 0
    text = " ".join(result.stdout.split())  # the text report wraps long notes
    assert (
        "note: built GAT with made-up arguments nfeat=256, nhid=256, nclass=10, dropout=0.1, alpha=0.2, nheads=4: "
        'no call in the project gives them; give yours: nnlint "models.py::GAT(nfeat=..., nhid=..., nclass=..., dropout=..., '
        'alpha=..., nheads=...)"'
    ) in text
