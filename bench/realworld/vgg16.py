"""VGG-16 with BatchNorm for CIFAR-10, built from a configuration list.

Pattern: kuangliu/pytorch-cifar, models/vgg.py (the `cfg` dict of channel counts and 'M' for
max-pool, `_make_layers`, VGG('VGG16')); rewritten here.
"""

import torch
from torch import nn

CONFIGS = {"VGG16": [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"]}


class VGG(nn.Module):
    def __init__(self, vgg_name: str) -> None:
        super().__init__()
        self.features = self._make_layers(CONFIGS[vgg_name])
        self.classifier = nn.Linear(512, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.features(x)
        return self.classifier(out.view(out.size(0), -1))

    def _make_layers(self, config: list) -> nn.Sequential:
        layers: list[nn.Module] = []
        channels = 3
        for entry in config:
            if entry == "M":
                layers += [nn.MaxPool2d(kernel_size=2, stride=2)]
            else:
                layers += [nn.Conv2d(channels, entry, kernel_size=3, padding=1), nn.BatchNorm2d(entry), nn.ReLU(inplace=True)]
                channels = entry
        layers += [nn.AvgPool2d(kernel_size=1, stride=1)]
        return nn.Sequential(*layers)


model = VGG("VGG16")
