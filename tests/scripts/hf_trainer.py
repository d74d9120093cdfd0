"""The shape of a Hugging Face `Trainer` fine-tuning script (transformers' examples,
run_classification.py reduced): a model built from a small config, a dataset of dicts with
`input_ids`/`attention_mask`/`labels`, `TrainingArguments` and `Trainer(...).train()`, which saves
checkpoints under `output_dir` at the end of each epoch."""

import os

import torch
from transformers import BertConfig, BertForSequenceClassification, Trainer, TrainingArguments

HERE = os.path.dirname(os.path.abspath(__file__))


class TokenDataset(torch.utils.data.Dataset):
    def __init__(self, samples, length, vocab):
        generator = torch.Generator().manual_seed(0)
        self.ids = torch.randint(1, vocab, (samples, length), generator=generator)
        self.labels = torch.randint(0, 2, (samples,), generator=generator)

    def __len__(self):
        return len(self.ids)

    def __getitem__(self, index):
        return {"input_ids": self.ids[index], "attention_mask": torch.ones_like(self.ids[index]), "labels": self.labels[index]}


def main():
    config = BertConfig(vocab_size=64, hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32, num_labels=2)
    model = BertForSequenceClassification(config)
    arguments = TrainingArguments(
        output_dir=os.path.join(HERE, "out"),
        num_train_epochs=1,
        per_device_train_batch_size=8,
        save_strategy="epoch",
        report_to=[],
        use_cpu=True,
        disable_tqdm=True,
    )
    trainer = Trainer(model=model, args=arguments, train_dataset=TokenDataset(32, 12, 64))
    trainer.train()


if __name__ == "__main__":
    main()
