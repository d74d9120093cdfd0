"""The shape of the Lightning docs' image classifier (lightning.ai "Lightning in 15 minutes"): a
`LightningModule` whose `training_step` calls `self(x)` and `F.cross_entropy`, Adam from
`configure_optimizers`, and `L.Trainer(max_epochs=...).fit(model, train_loader)`, which writes a
checkpoint at the end of each epoch under `default_root_dir`."""

import os

import lightning as L
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

HERE = os.path.dirname(os.path.abspath(__file__))


class LitClassifier(L.LightningModule):
    def __init__(self, lr=1e-3):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(12, 32), nn.ReLU(), nn.Linear(32, 3))
        self.lr = lr

    def forward(self, x):
        return self.net(x)

    def training_step(self, batch, batch_idx):
        x, y = batch
        return F.cross_entropy(self(x), y)

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=self.lr)


if __name__ == "__main__":
    features = torch.randn(64, 12)
    labels = torch.randint(0, 3, (64,))
    train_loader = DataLoader(TensorDataset(features, labels), batch_size=16, shuffle=True)
    model = LitClassifier()
    trainer = L.Trainer(max_epochs=2, default_root_dir=HERE, logger=False, enable_progress_bar=False, accelerator="cpu")
    trainer.fit(model, train_loader)
