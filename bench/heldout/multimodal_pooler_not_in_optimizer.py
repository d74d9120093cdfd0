"""A transformer classifier (Hugging Face call signature) whose optimizer parameter groups are
assembled from named sub-modules with separate learning rates; after a refactor moved the pooler
out of the classifier, no group includes it, so the pooler never trains.

Modeled on facebookresearch/mmf pull request #620 ("Fix optimizer params to include all modules
for transformer models": the `pooler` layer moved outside the classifier was not added to the
optimizer's parameter groups) and zjunlp/HVPNeT issue #5 (crf and fc parameters never appended
to the optimizer's list). Rewritten; only the pattern is kept.
"""

import torch
from torch import nn


class Pooler(nn.Module):
    def __init__(self, hidden: int) -> None:
        super().__init__()
        self.dense = nn.Linear(hidden, hidden)
        self.activation = nn.Tanh()

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        return self.activation(self.dense(hidden_states[:, 0]))


class TransformerClassifier(nn.Module):
    def __init__(self, vocab_size: int = 1000, hidden: int = 64, num_labels: int = 2) -> None:
        super().__init__()
        self.embeddings = nn.Embedding(vocab_size, hidden)
        layer = nn.TransformerEncoderLayer(hidden, 4, 4 * hidden, 0.1, batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, 2)
        self.pooler = Pooler(hidden)  # expect: NN504
        self.classifier = nn.Sequential(nn.Dropout(0.1), nn.Linear(hidden, num_labels))

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        hidden_states = self.encoder(self.embeddings(input_ids), src_key_padding_mask=attention_mask == 0)
        return self.classifier(self.pooler(hidden_states))


def get_optimizer_parameters(model: TransformerClassifier, base_lr: float, finetune_lr_multiplier: float) -> list[dict]:
    finetuned = [model.embeddings, model.encoder]
    return [
        {"params": [p for module in finetuned for p in module.parameters()], "lr": base_lr * finetune_lr_multiplier},
        {"params": model.classifier.parameters(), "lr": base_lr},
    ]


model = TransformerClassifier()
optimizer = torch.optim.AdamW(get_optimizer_parameters(model, 5e-5, 0.1), lr=5e-5, weight_decay=0.0)  # expect: NN504
loss_fn = nn.CrossEntropyLoss()
example_input = {"input_ids": torch.randint(0, 1000, (32, 24)), "attention_mask": torch.ones(32, 24, dtype=torch.long)}
