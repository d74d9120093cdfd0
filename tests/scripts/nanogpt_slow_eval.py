"""nanoGPT's train.py shape (karpathy/nanoGPT, train.py; also karpathy/ng-video-lecture, gpt.py),
written for nnlint's tests: module-level settings overridden by `--key=value` arguments,
`get_batch()` from a token array, a model that returns `(logits, loss)` when given targets, and
`estimate_loss()` under `@torch.no_grad()` at iteration 0 — `eval_iters` batches per split before
the first optimizer step. On a CPU that evaluation takes minutes at the real sizes; `eval_delay`
stands in for it here."""

import os
import sys
import time

import torch
import torch.nn as nn
from torch.nn import functional as F

batch_size = 16
block_size = 32
vocab_size = 65
n_embd = 32
eval_iters = 200
eval_interval = 100
eval_delay = 0.05  # seconds per evaluation batch
max_iters = 20
learning_rate = 1e-3
out_dir = os.path.dirname(os.path.abspath(__file__))
for arg in sys.argv[1:]:  # nanoGPT's configurator: --key=value overrides a global
    key, value = arg[2:].split("=")
    globals()[key] = type(globals()[key])(value)

torch.manual_seed(1337)
data = torch.randint(0, vocab_size, (5000,))


def get_batch():
    ix = torch.randint(len(data) - block_size, (batch_size,))
    x = torch.stack([data[i : i + block_size] for i in ix])
    y = torch.stack([data[i + 1 : i + block_size + 1] for i in ix])
    return x, y


class Block(nn.Module):
    def __init__(self, n_embd):
        super().__init__()
        self.ln = nn.LayerNorm(n_embd)
        self.mlp = nn.Sequential(nn.Linear(n_embd, 4 * n_embd), nn.GELU(), nn.Linear(4 * n_embd, n_embd))

    def forward(self, x):
        return x + self.mlp(self.ln(x))


class TinyGPT(nn.Module):
    def __init__(self):
        super().__init__()
        self.wte = nn.Embedding(vocab_size, n_embd)
        self.wpe = nn.Embedding(block_size, n_embd)
        self.blocks = nn.Sequential(*[Block(n_embd) for _ in range(2)])
        self.ln_f = nn.LayerNorm(n_embd)
        self.lm_head = nn.Linear(n_embd, vocab_size)

    def forward(self, idx, targets=None):
        t = idx.size(1)
        x = self.wte(idx) + self.wpe(torch.arange(t, device=idx.device))
        logits = self.lm_head(self.ln_f(self.blocks(x)))
        loss = None
        if targets is not None:
            loss = F.cross_entropy(logits.view(-1, logits.size(-1)), targets.view(-1))
        return logits, loss


model = TinyGPT()
optimizer = torch.optim.AdamW(model.parameters(), lr=learning_rate)


@torch.no_grad()
def estimate_loss():
    out = {}
    model.eval()
    for split in ("train", "val"):
        losses = torch.zeros(eval_iters)
        for k in range(eval_iters):
            X, Y = get_batch()
            logits, loss = model(X, Y)
            losses[k] = loss.item()
            time.sleep(eval_delay)
        out[split] = losses.mean()
    model.train()
    return out


for iter in range(max_iters):
    if iter % eval_interval == 0:
        losses = estimate_loss()
        print(f"step {iter}: train loss {losses['train']:.4f}, val loss {losses['val']:.4f}")
    xb, yb = get_batch()
    logits, loss = model(xb, yb)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    with open(os.path.join(out_dir, "ckpt.txt"), "a") as f:
        f.write(f"{iter} {loss.item()}\n")
