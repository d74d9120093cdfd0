"""The shape of StatQuest's decoder-only transformer trained with Lightning (as in
dionferns/Decoder_transformer_from_scratch, models/transformer.py and training/train.py): a
`LightningModule` built from an embedding, a hand-written attention module and a linear layer, whose
`training_step` calls `self.forward(input_tokens[0])` (not `self(...)`, so its `__call__` never runs),
its loss module an attribute (`self.loss = nn.CrossEntropyLoss()`), Adam from `configure_optimizers`."""

import lightning as L
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset


class Attention(nn.Module):
    def __init__(self, d_model=2):
        super().__init__()
        self.W_q = nn.Linear(d_model, d_model, bias=False)
        self.W_k = nn.Linear(d_model, d_model, bias=False)
        self.W_v = nn.Linear(d_model, d_model, bias=False)

    def forward(self, q, k, v, mask=None):
        sims = torch.matmul(self.W_q(q), self.W_k(k).transpose(0, 1)) / self.W_k.in_features**0.5
        if mask is not None:
            sims = sims.masked_fill(mask, -1e9)
        return torch.matmul(torch.softmax(sims, dim=1), self.W_v(v))


class DecoderOnlyTransformer(L.LightningModule):
    def __init__(self, num_tokens=4, d_model=2):
        super().__init__()
        self.we = nn.Embedding(num_tokens, d_model)
        self.self_attention = Attention(d_model)
        self.fc_layer = nn.Linear(d_model, num_tokens)
        self.loss = nn.CrossEntropyLoss()

    def forward(self, token_ids):
        embedded = self.we(token_ids)
        mask = torch.tril(torch.ones(token_ids.size(0), token_ids.size(0))) == 0
        attended = self.self_attention(embedded, embedded, embedded, mask=mask)
        return self.fc_layer(embedded + attended)

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=1e-3)

    def training_step(self, batch, batch_idx):
        input_tokens, labels = batch
        output = self.forward(input_tokens[0])
        return self.loss(output, labels[0])


if __name__ == "__main__":
    inputs = torch.tensor([[0, 1, 2, 3, 0, 1], [1, 2, 3, 0, 1, 2]])
    labels = torch.tensor([[1, 2, 3, 0, 1, 2], [2, 3, 0, 1, 2, 3]])
    model = DecoderOnlyTransformer()
    trainer = L.Trainer(max_epochs=3, logger=False, enable_progress_bar=False, enable_checkpointing=False, accelerator="cpu")
    trainer.fit(model, train_dataloaders=DataLoader(TensorDataset(inputs, labels)))
