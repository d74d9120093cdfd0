"""The bench CNN training script: the small CIFAR-sized CNN (bench/models/small_cnn.py's layers) trained
on synthetic 32x32 images with a validation pass per epoch, the way a plain PyTorch script does.

    python bench/models/cnn_train_epochs.py --epochs 3 --batches 20
"""

import argparse

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset


def small_cnn():
    return nn.Sequential(
        nn.Conv2d(3, 32, 3, padding=1, bias=False),
        nn.BatchNorm2d(32),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, padding=1, bias=False),
        nn.BatchNorm2d(64),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(64, 10),
    )


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batches", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=32)
    args = parser.parse_args()
    torch.manual_seed(0)
    images = torch.randn(args.batches * args.batch_size, 3, 32, 32)
    labels = torch.randint(0, 10, (len(images),))
    train_loader = DataLoader(TensorDataset(images, labels), batch_size=args.batch_size, shuffle=True)
    val_loader = DataLoader(TensorDataset(images[:128], labels[:128]), batch_size=64)
    model = small_cnn()
    criterion = nn.CrossEntropyLoss()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=args.epochs)
    for _epoch in range(args.epochs):
        model.train()
        for x, y in train_loader:
            optimizer.zero_grad()
            criterion(model(x), y).backward()
            optimizer.step()
        scheduler.step()
        model.eval()
        with torch.no_grad():
            sum(criterion(model(x), y).item() for x, y in val_loader)


if __name__ == "__main__":
    main()
