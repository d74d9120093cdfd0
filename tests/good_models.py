"""Well-known architectures, written and initialized the way their papers or reference code do.

None of them has a mistake the static rules look for, so none may get a warning: they guard the
rules against false alarms on patterns that look odd but are deliberate (a linear bottleneck,
depthwise convolutions, zero-initialized adaLN and LoRA, GPT-2's scaled-down residual
projections, training-only auxiliary heads, a hand-written LSTM cell).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


class InvertedResidual(nn.Module):  # MobileNetV2: linear bottleneck, depthwise conv
    def __init__(self, inp, out, stride, expand):
        super().__init__()
        hidden = inp * expand
        self.use_res = stride == 1 and inp == out
        self.conv = nn.Sequential(
            nn.Conv2d(inp, hidden, 1, bias=False),
            nn.BatchNorm2d(hidden),
            nn.ReLU6(inplace=True),
            nn.Conv2d(hidden, hidden, 3, stride, 1, groups=hidden, bias=False),
            nn.BatchNorm2d(hidden),
            nn.ReLU6(inplace=True),
            nn.Conv2d(hidden, out, 1, bias=False),
            nn.BatchNorm2d(out),
        )

    def forward(self, x):
        return x + self.conv(x) if self.use_res else self.conv(x)


class MobileNetV2Mini(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(
            nn.Sequential(nn.Conv2d(3, 16, 3, 2, 1, bias=False), nn.BatchNorm2d(16), nn.ReLU6(inplace=True)),
            InvertedResidual(16, 24, 2, 6),
            InvertedResidual(24, 24, 1, 6),
            InvertedResidual(24, 32, 2, 6),
        )
        self.classifier = nn.Sequential(nn.Dropout(0.2), nn.Linear(32, 10))
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0, 0.01)
                nn.init.zeros_(m.bias)

    def forward(self, x):
        x = F.adaptive_avg_pool2d(self.features(x), 1).flatten(1)
        return self.classifier(x)


class CausalSelfAttention(nn.Module):  # nanoGPT
    def __init__(self, n_embd, n_head):
        super().__init__()
        self.c_attn = nn.Linear(n_embd, 3 * n_embd)
        self.c_proj = nn.Linear(n_embd, n_embd)
        self.attn_dropout = nn.Dropout(0.1)
        self.resid_dropout = nn.Dropout(0.1)
        self.n_head = n_head

    def forward(self, x):
        B, T, C = x.size()
        q, k, v = self.c_attn(x).split(C, dim=2)
        k = k.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)
        q = q.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)
        v = v.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)
        att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(k.size(-1)))
        att = self.attn_dropout(F.softmax(att, dim=-1))
        y = (att @ v).transpose(1, 2).contiguous().view(B, T, C)
        return self.resid_dropout(self.c_proj(y))


class MLP(nn.Module):
    def __init__(self, n_embd):
        super().__init__()
        self.c_fc = nn.Linear(n_embd, 4 * n_embd)
        self.gelu = nn.GELU()
        self.c_proj = nn.Linear(4 * n_embd, n_embd)
        self.dropout = nn.Dropout(0.1)

    def forward(self, x):
        return self.dropout(self.c_proj(self.gelu(self.c_fc(x))))


class GPTBlock(nn.Module):
    def __init__(self, n_embd, n_head):
        super().__init__()
        self.ln_1 = nn.LayerNorm(n_embd)
        self.attn = CausalSelfAttention(n_embd, n_head)
        self.ln_2 = nn.LayerNorm(n_embd)
        self.mlp = MLP(n_embd)

    def forward(self, x):
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))


class MiniGPT(nn.Module):
    def __init__(self, vocab=256, n_embd=64, n_head=4, n_layer=2, block=32):
        super().__init__()
        self.wte = nn.Embedding(vocab, n_embd)
        self.wpe = nn.Embedding(block, n_embd)
        self.drop = nn.Dropout(0.1)
        self.h = nn.ModuleList(GPTBlock(n_embd, n_head) for _ in range(n_layer))
        self.ln_f = nn.LayerNorm(n_embd)
        self.lm_head = nn.Linear(n_embd, vocab, bias=False)
        self.wte.weight = self.lm_head.weight
        self.apply(self._init_weights)
        for pn, p in self.named_parameters():
            if pn.endswith("c_proj.weight"):
                nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * n_layer))

    def _init_weights(self, module):
        if isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)

    def forward(self, idx):
        pos = torch.arange(0, idx.size(1), dtype=torch.long, device=idx.device)
        x = self.drop(self.wte(idx) + self.wpe(pos))
        for block in self.h:
            x = block(x)
        return self.lm_head(self.ln_f(x))


class VGGMini(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 32, 3, padding=1),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3, padding=1),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(2),
        )
        self.avgpool = nn.AdaptiveAvgPool2d((4, 4))
        self.classifier = nn.Sequential(
            nn.Linear(64 * 16, 256),
            nn.ReLU(True),
            nn.Dropout(),
            nn.Linear(256, 256),
            nn.ReLU(True),
            nn.Dropout(),
            nn.Linear(256, 10),
        )
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                nn.init.constant_(m.bias, 0)
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0, 0.01)
                nn.init.constant_(m.bias, 0)

    def forward(self, x):
        return self.classifier(torch.flatten(self.avgpool(self.features(x)), 1))


class UNetMini(nn.Module):
    def __init__(self):
        super().__init__()

        def double(i, o):
            return nn.Sequential(
                nn.Conv2d(i, o, 3, padding=1, bias=False),
                nn.BatchNorm2d(o),
                nn.ReLU(inplace=True),
                nn.Conv2d(o, o, 3, padding=1, bias=False),
                nn.BatchNorm2d(o),
                nn.ReLU(inplace=True),
            )

        self.inc = double(1, 16)
        self.down = nn.Sequential(nn.MaxPool2d(2), double(16, 32))
        self.up = nn.ConvTranspose2d(32, 16, 2, stride=2)
        self.conv = double(32, 16)
        self.outc = nn.Conv2d(16, 2, 1)

    def forward(self, x):
        x1 = self.inc(x)
        x2 = self.down(x1)
        x = self.conv(torch.cat([x1, self.up(x2)], dim=1))
        return self.outc(x)


class VAE(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(784, 400)
        self.fc21 = nn.Linear(400, 20)
        self.fc22 = nn.Linear(400, 20)
        self.fc3 = nn.Linear(20, 400)
        self.fc4 = nn.Linear(400, 784)

    def forward(self, x):
        h1 = F.relu(self.fc1(x.view(-1, 784)))
        mu, logvar = self.fc21(h1), self.fc22(h1)
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
        return torch.sigmoid(self.fc4(F.relu(self.fc3(z)))), mu, logvar


class DiTBlock(nn.Module):  # adaLN-Zero
    def __init__(self, hidden=64, heads=4):
        super().__init__()
        self.norm1 = nn.LayerNorm(hidden, elementwise_affine=False, eps=1e-6)
        self.attn = nn.MultiheadAttention(hidden, heads, batch_first=True)
        self.norm2 = nn.LayerNorm(hidden, elementwise_affine=False, eps=1e-6)
        self.mlp = nn.Sequential(nn.Linear(hidden, 4 * hidden), nn.GELU(approximate="tanh"), nn.Linear(4 * hidden, hidden))
        self.adaLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(hidden, 6 * hidden, bias=True))
        nn.init.constant_(self.adaLN_modulation[-1].weight, 0)
        nn.init.constant_(self.adaLN_modulation[-1].bias, 0)

    def forward(self, x, c):
        shift_msa, scale_msa, gate_msa, shift_mlp, scale_mlp, gate_mlp = self.adaLN_modulation(c).chunk(6, dim=1)
        h = self.norm1(x) * (1 + scale_msa.unsqueeze(1)) + shift_msa.unsqueeze(1)
        x = x + gate_msa.unsqueeze(1) * self.attn(h, h, h, need_weights=False)[0]
        h = self.norm2(x) * (1 + scale_mlp.unsqueeze(1)) + shift_mlp.unsqueeze(1)
        return x + gate_mlp.unsqueeze(1) * self.mlp(h)


class DiTMini(nn.Module):
    def __init__(self):
        super().__init__()
        self.x_embed = nn.Linear(16, 64)
        self.t_embed = nn.Sequential(nn.Linear(32, 64), nn.SiLU(), nn.Linear(64, 64))
        self.blocks = nn.ModuleList(DiTBlock() for _ in range(2))
        self.final_norm = nn.LayerNorm(64, elementwise_affine=False)
        self.final = nn.Linear(64, 16)
        nn.init.constant_(self.final.weight, 0)
        nn.init.constant_(self.final.bias, 0)

    def forward(self, x, t):
        x = self.x_embed(x)
        c = self.t_embed(t)
        for block in self.blocks:
            x = block(x, c)
        return self.final(self.final_norm(x))


class LoRALinear(nn.Module):
    def __init__(self, i, o, r=4):
        super().__init__()
        self.base = nn.Linear(i, o)
        self.base.requires_grad_(False)
        self.lora_A = nn.Linear(i, r, bias=False)
        self.lora_B = nn.Linear(r, o, bias=False)
        nn.init.kaiming_uniform_(self.lora_A.weight, a=math.sqrt(5))
        nn.init.zeros_(self.lora_B.weight)

    def forward(self, x):
        return self.base(x) + self.lora_B(self.lora_A(x)) * 2.0


class LoRANet(nn.Module):
    def __init__(self):
        super().__init__()
        self.l1 = LoRALinear(32, 64)
        self.l2 = LoRALinear(64, 10)

    def forward(self, x):
        return self.l2(F.relu(self.l1(x)))


class SEBlock(nn.Module):
    def __init__(self, c, r=4):
        super().__init__()
        self.fc1 = nn.Conv2d(c, c // r, 1)
        self.fc2 = nn.Conv2d(c // r, c, 1)

    def forward(self, x):
        s = F.adaptive_avg_pool2d(x, 1)
        return x * torch.sigmoid(self.fc2(F.relu(self.fc1(s))))


class SENet(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 32, 3, padding=1, bias=False), nn.BatchNorm2d(32), nn.SiLU())
        self.se = SEBlock(32)
        self.head = nn.Linear(32, 10)

    def forward(self, x):
        return self.head(self.se(self.stem(x)).mean((2, 3)))


class ManualLSTM(nn.Module):
    def __init__(self, i=16, h=32):
        super().__init__()
        self.ih = nn.Linear(i, 4 * h)
        self.hh = nn.Linear(h, 4 * h)
        self.out = nn.Linear(h, 5)
        self.h = h

    def forward(self, x):
        h = x.new_zeros(x.size(0), self.h)
        c = x.new_zeros(x.size(0), self.h)
        for t in range(x.size(1)):
            gates = self.ih(x[:, t]) + self.hh(h)
            i, f, g, o = gates.chunk(4, 1)
            c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
            h = torch.sigmoid(o) * torch.tanh(c)
        return self.out(h)


class InceptionAux(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 16, 3, bias=False), nn.BatchNorm2d(16), nn.ReLU())
        self.aux = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, 10))
        self.fc = nn.Linear(16, 10)

    def forward(self, x):
        x = self.stem(x)
        aux = self.aux(x) if self.training else None
        out = self.fc(x.mean((2, 3)))
        return (out, aux) if self.training else out


class ViTPatch(nn.Module):
    def __init__(self):
        super().__init__()
        self.patch = nn.Conv2d(3, 64, 4, stride=4)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, 64))
        self.pos = nn.Parameter(torch.zeros(1, 65, 64))
        self.encoder = nn.TransformerEncoder(
            nn.TransformerEncoderLayer(64, 4, 128, batch_first=True, norm_first=True), 2, enable_nested_tensor=False
        )
        self.norm = nn.LayerNorm(64)
        self.head = nn.Linear(64, 10)
        nn.init.trunc_normal_(self.pos, std=0.02)

    def forward(self, x):
        x = self.patch(x).flatten(2).transpose(1, 2)
        x = torch.cat([self.cls_token.expand(x.size(0), -1, -1), x], dim=1) + self.pos
        return self.head(self.norm(self.encoder(x))[:, 0])


class WideLinearSafe(nn.Module):  # MLP on 4 raw features with xavier init (Glorot's fan_avg)
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(4, 2048), nn.Tanh(), nn.Linear(2048, 2048), nn.Tanh(), nn.Linear(2048, 3))
        for m in self.net:
            if isinstance(m, nn.Linear):
                nn.init.xavier_uniform_(m.weight)

    def forward(self, x):
        return self.net(x)


def adamw_without_decay_on_norms_and_biases(model: nn.Module, lr: float = 1e-3) -> torch.optim.Optimizer:
    trainable = [p for p in model.parameters() if p.requires_grad]
    decay = [p for p in trainable if p.dim() >= 2]
    no_decay = [p for p in trainable if p.dim() < 2]
    return torch.optim.AdamW([{"params": decay, "weight_decay": 0.05}, {"params": no_decay, "weight_decay": 0.0}], lr=lr)


# name: (model class, example input, training loss)
GOOD = {
    "mobilenetv2": (MobileNetV2Mini, lambda: torch.randn(16, 3, 32, 32), nn.CrossEntropyLoss()),
    "minigpt": (MiniGPT, lambda: torch.randint(0, 256, (16, 32)), nn.CrossEntropyLoss()),
    "vgg": (VGGMini, lambda: torch.randn(16, 3, 32, 32), nn.CrossEntropyLoss()),
    "unet": (UNetMini, lambda: torch.randn(16, 1, 32, 32), nn.CrossEntropyLoss()),
    "vae": (VAE, lambda: torch.randn(16, 784), nn.BCELoss(reduction="sum")),
    "dit": (DiTMini, lambda: (torch.randn(16, 10, 16), torch.randn(16, 32)), nn.MSELoss()),
    "lora": (LoRANet, lambda: torch.randn(16, 32), nn.CrossEntropyLoss()),
    "senet": (SENet, lambda: torch.randn(16, 3, 16, 16), nn.CrossEntropyLoss()),
    "manual_lstm": (ManualLSTM, lambda: torch.randn(16, 6, 16), nn.CrossEntropyLoss()),
    "inception_aux": (InceptionAux, lambda: torch.randn(16, 3, 16, 16), nn.CrossEntropyLoss()),
    "vit": (ViTPatch, lambda: torch.randn(16, 3, 32, 32), nn.CrossEntropyLoss()),
    "wide_xavier": (WideLinearSafe, lambda: torch.randn(16, 4), nn.CrossEntropyLoss()),
}
