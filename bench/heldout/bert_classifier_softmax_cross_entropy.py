"""A BERT-style text classifier with the Hugging Face call signature (input_ids,
attention_mask) that applies softmax in forward and trains with nn.CrossEntropyLoss, which
applies log-softmax again: the loss falls slowly and predictions drift toward the majority
class.

Modeled on illiterate/BertClassifier issue #2 ("CrossEntropyLoss内置log_softmax，不需要在模型
输出层额外添加softmax": loss decreasing very slowly, predictions biased toward the largest class;
the maintainer agreed to remove the softmax) and sugi-chan/custom_bert_pipeline issue #1.
Rewritten with a small self-contained encoder; only the pattern is kept.
"""

from dataclasses import dataclass

import torch
from torch import nn


@dataclass
class EncoderConfig:
    vocab_size: int = 1000
    hidden_size: int = 64
    num_heads: int = 4
    num_layers: int = 2
    max_position: int = 64
    num_labels: int = 3
    dropout: float = 0.1


class TinyBertEncoder(nn.Module):
    def __init__(self, config: EncoderConfig) -> None:
        super().__init__()
        self.word_embeddings = nn.Embedding(config.vocab_size, config.hidden_size)
        self.position_embeddings = nn.Embedding(config.max_position, config.hidden_size)
        self.norm = nn.LayerNorm(config.hidden_size)
        layer = nn.TransformerEncoderLayer(config.hidden_size, config.num_heads, 4 * config.hidden_size, config.dropout, batch_first=True)
        self.layers = nn.TransformerEncoder(layer, config.num_layers)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        positions = torch.arange(input_ids.size(1), device=input_ids.device)
        hidden = self.norm(self.word_embeddings(input_ids) + self.position_embeddings(positions))
        return self.layers(hidden, src_key_padding_mask=attention_mask == 0)


class BertClassifier(nn.Module):
    def __init__(self, config: EncoderConfig = EncoderConfig()) -> None:
        super().__init__()
        self.bert = TinyBertEncoder(config)
        self.dropout = nn.Dropout(config.dropout)
        self.classifier = nn.Linear(config.hidden_size, config.num_labels)
        self.softmax = nn.Softmax(dim=1)  # expect: NN302

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        pooled = self.bert(input_ids, attention_mask)[:, 0]
        return self.softmax(self.classifier(self.dropout(pooled)))


model = BertClassifier()
loss_fn = nn.CrossEntropyLoss()
optimizer = torch.optim.AdamW(model.parameters(), lr=2e-5, weight_decay=0.0)
example_input = {"input_ids": torch.randint(0, 1000, (32, 24)), "attention_mask": torch.ones(32, 24, dtype=torch.long)}
