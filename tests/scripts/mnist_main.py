"""The shape of pytorch/examples mnist/main.py (argparse, `Net`, `train()`, Adadelta + StepLR,
`--save-model`), with a softmax at the end of `forward` feeding `nn.CrossEntropyLoss` (named
`criterion`), a `try/except Exception` around the step, and a file counting the steps taken."""

import argparse
import os

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

HERE = os.path.dirname(os.path.abspath(__file__))


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 8, 3, 1)
        self.conv2 = nn.Conv2d(8, 16, 3, 1)
        self.fc1 = nn.Linear(16 * 12 * 12, 32)
        self.fc2 = nn.Linear(32, 10)
        self.softmax = nn.Softmax(dim=1)

    def forward(self, x):
        x = F.relu(self.conv1(x))
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        x = F.relu(self.fc1(torch.flatten(x, 1)))
        return self.softmax(self.fc2(x))


def train(args, model, loader, optimizer, criterion):
    model.train()
    for data, target in loader:
        optimizer.zero_grad()
        loss = criterion(model(data), target)
        loss.backward()
        try:
            optimizer.step()
        except Exception:  # a script's own error handling must not swallow nnlint's stop
            continue
        with open(os.path.join(HERE, "steps.txt"), "a") as counter:
            counter.write("step\n")


def main():
    parser = argparse.ArgumentParser(description="PyTorch MNIST Example")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=1.0)
    parser.add_argument("--save-model", action="store_true", default=False)
    args = parser.parse_args()
    os.environ["MNIST_EXAMPLE_RAN"] = "1"
    torch.set_default_dtype(torch.float64)
    torch.set_default_dtype(torch.float32)
    images = torch.rand(96, 1, 28, 28)
    labels = torch.randint(0, 10, (96,))
    loader = DataLoader(TensorDataset((images - 0.5) / 0.29, labels), batch_size=args.batch_size, shuffle=True)
    model = Net()
    optimizer = torch.optim.Adadelta(model.parameters(), lr=args.lr)
    criterion = nn.CrossEntropyLoss()
    for _epoch in range(2):
        train(args, model, loader, optimizer, criterion)
    if args.save_model:
        torch.save(model.state_dict(), os.path.join(HERE, "mnist_cnn.pt"))


if __name__ == "__main__":
    main()
