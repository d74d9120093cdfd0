"""A tabular classifier whose BatchNorm momentum is 0.001, as in the WideResNet of the PyTorch ports of
FixMatch/MixMatch (`nn.BatchNorm2d(in_planes, momentum=0.001)`, TensorFlow's decay 0.999 carried
over; e.g. kekmodel/FixMatch-pytorch models/wideresnet.py), but trained for a few epochs instead of
a million steps. The features are standardized, so the batch means stay near the running means;
it is the variances of the hidden layers, growing as the weights grow, that the running averages
cannot follow: the validation loss with the running statistics grows apart from the loss the
trained model gives on the same samples.
"""

import argparse
from dataclasses import dataclass

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset


@dataclass
class Config:
    hidden: int = 64
    bn_momentum: float = 0.001  # 1 - 0.999
    lr: float = 0.5
    batch_size: int = 64


def dense_block(inputs, outputs, config):
    return nn.Sequential(
        nn.Linear(inputs, outputs, bias=False),
        nn.BatchNorm1d(outputs, momentum=config.bn_momentum),  # expect: NN609
        nn.ReLU(),
    )


def build_model(features, classes, config):
    return nn.Sequential(
        dense_block(features, config.hidden, config),
        dense_block(config.hidden, config.hidden, config),
        nn.Linear(config.hidden, classes),
    )


def synthetic_data(samples=1280, features=20):
    x = torch.randn(samples, features)
    y = ((x[:, :5].sum(1) * x[:, 5:10].sum(1)) > 0).long()
    return x, y


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=12)
    args = parser.parse_args()
    config = Config()
    torch.manual_seed(0)
    x, y = synthetic_data()
    train_loader = DataLoader(TensorDataset(x[:1024], y[:1024]), batch_size=config.batch_size, shuffle=True)
    val_loader = DataLoader(TensorDataset(x[1024:], y[1024:]), batch_size=128)
    model = build_model(20, 2, config)
    optimizer = torch.optim.SGD(model.parameters(), lr=config.lr, momentum=0.9)
    criterion = nn.CrossEntropyLoss()
    for epoch in range(args.epochs):
        model.train()
        for xb, yb in train_loader:
            optimizer.zero_grad()
            criterion(model(xb), yb).backward()
            optimizer.step()
        model.eval()
        with torch.no_grad():
            val_loss = sum(criterion(model(xb), yb).item() for xb, yb in val_loader) / len(val_loader)
        print(f"epoch {epoch}: validation loss {val_loss:.3f}")


if __name__ == "__main__":
    main()
