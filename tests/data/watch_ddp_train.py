"""DistributedDataParallel training as the PyTorch DDP tutorial writes it (init_process_group,
DistributedSampler with set_epoch, DDP(model), destroy_process_group), on CPU with gloo. Rank 1 gets
a batch with a NaN in its third step of the second epoch; DDP's all-reduce then spreads it to rank 0."""

import argparse

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, TensorDataset
from torch.utils.data.distributed import DistributedSampler


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(6, 16)
        self.fc2 = nn.Linear(16, 1)

    def forward(self, x):
        return self.fc2(torch.relu(self.fc1(x)))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=3)
    args = parser.parse_args()
    dist.init_process_group("gloo")
    rank = dist.get_rank()
    torch.manual_seed(0)
    x = torch.randn(256, 6)
    y = x.sum(1, keepdim=True)
    train = TensorDataset(x[:192], y[:192])
    sampler = DistributedSampler(train)
    loader = DataLoader(train, batch_size=16, sampler=sampler)  # 96 samples per rank: 6 steps an epoch
    val_loader = DataLoader(TensorDataset(x[192:], y[192:]), batch_size=64)
    model = DistributedDataParallel(Net())
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    for epoch in range(args.epochs):
        sampler.set_epoch(epoch)
        model.train()
        for step, (xb, yb) in enumerate(loader):
            if rank == 1 and epoch == 1 and step == 2:
                xb = xb.clone()
                xb[0, 0] = float("nan")
            optimizer.zero_grad()
            nn.functional.mse_loss(model(xb), yb).backward()
            optimizer.step()
        model.eval()
        with torch.no_grad():
            val = sum(nn.functional.mse_loss(model(xb), yb).item() for xb, yb in val_loader)
        print(f"rank {rank} epoch {epoch} validation {val:.3f}")
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
