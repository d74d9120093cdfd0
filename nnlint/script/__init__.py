"""Script mode: lint a training script from what it really builds, run to its first optimizer step.

- `detect`: whether a file is a training script (from its syntax tree);
- `runner`: run it as `python train.py ARGS` would, in this process, and put the process back;
- `capture`: global hooks, installed by type, that record optimizers, schedulers, scalers,
  clipping, the loss, the outermost module calls and the DataLoader up to a step;
- `process`: the process state a run may change, saved and restored.
"""
