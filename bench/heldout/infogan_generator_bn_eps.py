"""An InfoGAN-style generator whose BatchNorm2d(128, 0.8) meant Keras' momentum=0.8 but sets
eps=0.8 in PyTorch: every channel's variance is padded by 0.8 before normalizing.

Modeled on eriklindernoren/PyTorch-GAN issue #116 ("Infogan batchnorm2d layers have eps=0.8 ?":
`nn.BatchNorm2d(128, 0.8)` in implementations/infogan/infogan.py; cross-checked against the
author's Keras-GAN, where 0.8 is the momentum). Rewritten; only the pattern is kept.
"""

import torch
from torch import nn


class Generator(nn.Module):
    def __init__(self, latent_dim: int = 62, n_classes: int = 10, code_dim: int = 2, img_size: int = 32, channels: int = 1) -> None:
        super().__init__()
        input_dim = latent_dim + n_classes + code_dim
        self.init_size = img_size // 4
        self.l1 = nn.Sequential(nn.Linear(input_dim, 128 * self.init_size**2))
        self.conv_blocks = nn.Sequential(
            nn.Upsample(scale_factor=2),
            nn.Conv2d(128, 128, 3, stride=1, padding=1),  # expect: NN104
            nn.BatchNorm2d(128, 0.8),  # expect: NN109
            nn.LeakyReLU(0.2, inplace=True),
            nn.Upsample(scale_factor=2),
            nn.Conv2d(128, 64, 3, stride=1, padding=1),  # expect: NN104
            nn.BatchNorm2d(64, 0.8),  # expect: NN109
            nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(64, channels, 3, stride=1, padding=1),
            nn.Tanh(),
        )

    def forward(self, noise: torch.Tensor) -> torch.Tensor:
        out = self.l1(noise)
        out = out.view(out.shape[0], 128, self.init_size, self.init_size)
        return self.conv_blocks(out)


model = Generator()
optimizer = torch.optim.Adam(model.parameters(), lr=2e-4, betas=(0.5, 0.999))
example_input = torch.randn(32, 62 + 10 + 2)
