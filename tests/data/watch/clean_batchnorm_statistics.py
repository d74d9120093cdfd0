"""The clean twin of nn609_train_eval_gap.py: the same tabular classifier and loop with BatchNorm's
default momentum (0.1), a step schedule and the best epoch's weights kept, as a careful script
does. Its running statistics follow the hidden layers as they change: no train/eval gap grows.
"""

import argparse
from dataclasses import dataclass

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset


@dataclass
class Config:
    hidden: int = 64
    lr: float = 0.5
    batch_size: int = 64


def dense_block(inputs, outputs):
    return nn.Sequential(nn.Linear(inputs, outputs, bias=False), nn.BatchNorm1d(outputs), nn.ReLU())


def build_model(features, classes, config):
    return nn.Sequential(
        dense_block(features, config.hidden),
        dense_block(config.hidden, config.hidden),
        nn.Linear(config.hidden, classes),
    )


def synthetic_data(samples=1280, features=20):
    x = torch.randn(samples, features)
    y = ((x[:, :5].sum(1) * x[:, 5:10].sum(1)) > 0).long()
    return x, y


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--checkpoint", default=None)
    args = parser.parse_args()
    config = Config()
    torch.manual_seed(0)
    x, y = synthetic_data()
    train_loader = DataLoader(TensorDataset(x[:1024], y[:1024]), batch_size=config.batch_size, shuffle=True)
    val_loader = DataLoader(TensorDataset(x[1024:], y[1024:]), batch_size=128)
    model = build_model(20, 2, config)
    optimizer = torch.optim.SGD(model.parameters(), lr=config.lr, momentum=0.9)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=4, gamma=0.3)
    criterion = nn.CrossEntropyLoss()
    best, best_state = float("inf"), None
    for epoch in range(args.epochs):
        model.train()
        for xb, yb in train_loader:
            optimizer.zero_grad()
            criterion(model(xb), yb).backward()
            optimizer.step()
        scheduler.step()
        model.eval()
        with torch.no_grad():
            val_loss = sum(criterion(model(xb), yb).item() for xb, yb in val_loader) / len(val_loader)
        if val_loss < best:
            best, best_state = val_loss, {k: v.clone() for k, v in model.state_dict().items()}
            if args.checkpoint:
                torch.save(best_state, args.checkpoint)
        print(f"epoch {epoch}: validation loss {val_loss:.3f}")
    model.load_state_dict(best_state)


if __name__ == "__main__":
    main()
