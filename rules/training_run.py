"""NN6 — training run. Checks over what `nnlint watch` recorded while a whole training script ran:
the series of losses, learning rates, gradient norms and validation passes (the lecture "Applied Deep
Learning — Practical Tips" (NTU, 2020): Early Stopping, Learning Rate, Dropout at test time, Internal
Covariate Shift). Every check is a pure function of the recorded `RunRecord`."""

from __future__ import annotations

import dataclasses
import math
import statistics
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from nnlint.context import RuleContext
from nnlint.findings import Location, Phase, Severity
from nnlint.graph import ModelGraph
from nnlint.registry import Hit, rule
from nnlint.watch.charts import sparkline
from nnlint.watch.series import RunRecord

# Epoch-scale schedulers (their arguments count epochs in PyTorch's examples) and per-step ones.
EPOCH_SCALE_SCHEDULERS = frozenset({"StepLR", "MultiStepLR", "ExponentialLR", "CosineAnnealingLR"})
PER_STEP_SCHEDULERS = frozenset({"OneCycleLR", "CyclicLR"})
_BATCHNORM_FIX = "use the default momentum (0.1), recompute the running statistics before evaluating, or use LayerNorm/GroupNorm"


def _and_more(modules: Sequence[str]) -> str:
    """ " and 3 more" after the first of several module paths a finding names (nothing for one)."""
    return f" and {len(modules) - 1} more" if len(modules) > 1 else ""


def _run(context: RuleContext) -> RunRecord:
    assert context.run is not None  # guaranteed by requires=("run",)
    return context.run


def _number(value: float) -> str:
    if not math.isfinite(value):
        return str(value)
    return f"{value:.3g}" if abs(value) >= 1e-3 or value == 0 else f"{value:.2e}"


def _loop_location(run: RunRecord) -> Location | None:
    return run.epoch_loop_location or run.loop_location or run.optimizer_location


def _finding(
    run: RunRecord, *, message: str, fix: str, evidence: Mapping[str, Any], module: str | None = None, at: Location | None = None
) -> Hit:
    """One NN6 finding, pointed at `at` when given, else at the construction line of the module it
    names, else at the training loop (the epoch loop around the line that iterates the training data)."""
    location = at or (run.location_of(module) if module else None) or _loop_location(run)
    return Hit(message=message, fix=fix, module=module, location=location, evidence=evidence)


def _at_epoch(run: RunRecord, epoch: int) -> str:
    """`at epoch 4 ` — or nothing when the run had no epochs (batches sampled without a DataLoader)."""
    return f"at epoch {epoch} " if run.epochs else ""


def _in_epoch(run: RunRecord, step: int) -> str:
    return f"(epoch {run.epoch_of(step)})" if run.epochs else ""


def _median(values: Sequence[float]) -> float:
    finite = [v for v in values if math.isfinite(v)]
    return statistics.median(finite) if finite else math.nan


@rule(
    "NN601",
    "no-early-stopping",
    Severity.WARNING,
    phase=Phase.WATCH,
    thresholds={"patience": 5, "min-generalization-loss": 0.05},
    requires=("run",),
)
def no_early_stopping(graph: ModelGraph | None, context: RuleContext) -> Iterator[Hit]:
    """The validation loss stopped improving and the run went on without keeping the best weights.

    ## What it does
    Finds the evaluation with the lowest validation loss (what the loss function returned under
    `no_grad`/`inference_mode` or on a loader other than the training one, or a logged `val_loss`)
    and flags the run when more than `patience` (5) evaluations followed it without improvement,
    the last validation loss is at least `min-generalization-loss` (5%) above the best, and the
    training loss kept falling meanwhile. It stays silent when the weights were saved
    (`torch.save`) right after the best evaluation or the model's weights were loaded
    (`load_state_dict`) after it: the best model was kept. The defaults follow Prechelt's criteria: GL5 (stop when the generalization
    loss, the validation error's rise above its minimum, passes 5%) and UP (stop after successive
    evaluations without improvement; Keras's and Lightning's EarlyStopping call it patience).

    ## Why is this bad?
    Past the best epoch the model is fitting the training set, not the task: the training loss
    falls while the validation loss rises. The final weights are worse than ones the run already
    had, and the epochs after the best were spent making them worse.

    ## Example
    ```python
    for epoch in range(args.epochs):
        train_one_epoch(model, train_loader, optimizer)
        val_loss = evaluate(model, val_loader)
    torch.save(model.state_dict(), "model.pt")   # the last epoch's weights
    ```
    Use instead:
    ```python
    best, bad_epochs = float("inf"), 0
    for epoch in range(args.epochs):
        train_one_epoch(model, train_loader, optimizer)
        val_loss = evaluate(model, val_loader)
        if val_loss < best:
            best, bad_epochs = val_loss, 0
            torch.save(model.state_dict(), "best.pt")
        else:
            bad_epochs += 1
            if bad_epochs >= patience:
                break
    model.load_state_dict(torch.load("best.pt"))
    ```

    ## Fix
    Stop when the validation loss has not improved for a few evaluations and keep the best
    weights: a checkpoint at each new best, loaded at the end; Lightning's `EarlyStopping` with a
    `ModelCheckpoint`; Hugging Face's `EarlyStoppingCallback` with `load_best_model_at_end=True`.

    ## References
    - Lutz Prechelt, "Early Stopping — But When?", in Neural Networks: Tricks of the Trade (1998)
    - Lecture "Applied Deep Learning — Practical Tips" (NTU, 2020): Early Stopping
    - Keras `EarlyStopping(restore_best_weights=True)`; Lightning `EarlyStopping(patience=3)`
    """
    run = _run(context)
    validation = run.validation_losses()
    if len(validation) < 3:
        return
    patience = int(context.threshold("patience"))
    best_index = min(range(len(validation)), key=lambda i: validation[i][2])
    best_step, best_epoch, best_loss = validation[best_index]
    after = len(validation) - 1 - best_index
    last_loss = validation[-1][2]
    if after <= patience or not math.isfinite(best_loss) or best_loss <= 0:
        return
    rise = last_loss / best_loss - 1
    if rise < context.threshold("min-generalization-loss"):
        return
    if best_step in run.save_steps or any(step >= best_step for step in run.restore_steps):
        return  # the best weights were saved right after the best evaluation, or restored after it
    train_at_best = _median([v for v in run.losses[max(0, best_step - 50) : best_step]])
    train_at_end = _median(run.losses[-50:])
    if not (train_at_end < train_at_best):
        return
    end = f"epoch {run.epochs}" if run.epochs else f"step {run.steps}"
    yield _finding(
        run,
        message=(
            f"the validation loss was best {_at_epoch(run, best_epoch)}(step {best_step}): {_number(best_loss)}; {after} evaluations "
            f"followed without improvement and it ended at {_number(last_loss)} (+{rise:.0%}), while the training loss kept "
            f"falling ({_number(train_at_best)} → {_number(train_at_end)}); the run went on to {end} and kept "
            f"the last weights"
        ),
        fix=(
            "stop when the validation loss has not improved for a few evaluations and keep the best weights "
            "(torch.save at each new best, load_state_dict at the end; EarlyStopping + ModelCheckpoint in Lightning; "
            "EarlyStoppingCallback + load_best_model_at_end=True in Hugging Face)"
        ),
        evidence={
            "best_epoch": best_epoch,
            "best_step": best_step,
            "best_loss": best_loss,
            "last_loss": last_loss,
            "evaluations_since_best": after,
            "validation_loss": [loss for _, _, loss in validation],
        },
    )


@rule(
    "NN602",
    "learning-rate-never-decays",
    Severity.WARNING,
    phase=Phase.WATCH,
    thresholds={"plateau-epochs": 3, "min-improvement": 0.01},
    requires=("run",),
)
def learning_rate_never_decays(graph: ModelGraph | None, context: RuleContext) -> Iterator[Hit]:
    """The learning rate never changed while the training loss plateaued for several epochs.

    ## What it does
    With no learning-rate scheduler and a learning rate that stayed the same at every optimizer
    step, flags a run whose per-epoch training loss improved by less than `min-improvement` (1%)
    over its last `plateau-epochs` (3) epochs, while still above 1% of the first epoch's loss (a
    loss that reached zero has nothing left to gain). The plateau test is ReduceLROnPlateau's
    (relative threshold, patience counted in epochs), with a patience shorter than its default 10
    so that short runs are judged too.

    ## Why is this bad?
    A constant step size keeps bouncing around the minimum it has come close to: "reduce the
    learning rate as training approaches the destination". A loss that stopped falling at a
    constant learning rate usually falls again once the rate decays.

    ## Example
    ```python
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    for epoch in range(100):
        train_one_epoch(model, loader, optimizer)
    ```
    Use instead:
    ```python
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, factor=0.1, patience=3)
    for epoch in range(100):
        train_one_epoch(model, loader, optimizer)
        scheduler.step(evaluate(model, val_loader))
    ```

    ## Fix
    Decay the learning rate: `ReduceLROnPlateau` on the validation loss, a step or cosine
    schedule over the epochs, or warm-up then decay.

    ## References
    - Lecture "Applied Deep Learning — Practical Tips" (NTU, 2020): Learning Rate
    - PyTorch, `torch.optim.lr_scheduler.ReduceLROnPlateau`: https://pytorch.org/docs/stable/generated/torch.optim.lr_scheduler.ReduceLROnPlateau.html
    """
    run = _run(context)
    plateau = int(context.threshold("plateau-epochs"))
    rates = run.learning_rates
    if run.schedulers or not rates or max(rates) != min(rates):
        return
    epochs = [loss for loss in run.epoch_losses() if math.isfinite(loss)]
    if len(epochs) < plateau + 2 or len(run.epoch_losses()) != len(epochs):
        return
    before, last = min(epochs[:-plateau]), min(epochs[-plateau:])
    if last < before * (1 - context.threshold("min-improvement")) or last <= 0.01 * epochs[0]:
        return
    yield _finding(
        run,
        message=(
            f"the learning rate stayed at {_number(rates[0])} for all {run.steps} steps while the training loss stopped "
            f"improving: best epoch mean {_number(before)} before the last {plateau} epochs, {_number(last)} in them "
            f"(per-epoch loss {sparkline(epochs)})"
        ),
        fix="decay the learning rate: ReduceLROnPlateau on the validation loss, StepLR/CosineAnnealingLR over the epochs",
        at=run.optimizer_location,
        evidence={"learning_rate": rates[0], "epoch_losses": epochs},
    )


@rule("NN603", "scheduler-step-frequency", Severity.WARNING, phase=Phase.WATCH, thresholds={"min-steps-per-epoch": 10}, requires=("run",))
def scheduler_step_frequency(graph: ModelGraph | None, context: RuleContext) -> Iterator[Hit]:
    """An epoch-scale scheduler stepped every batch, or a per-step scheduler stepped every epoch.

    ## What it does
    Counts each scheduler's `step()` calls against the optimizer steps and the epochs. Flags an
    epoch-scale scheduler (StepLR, MultiStepLR, ExponentialLR, CosineAnnealingLR) stepped on most
    optimizer steps when its schedule (`step_size`, the last milestone, `T_max`) is shorter than
    one epoch's steps — the schedule written in epochs ran out within an epoch (schedules written
    in iterations, longer than an epoch, are left alone) — or an ExponentialLR stepped per batch
    that cut the rate more than 100×; and a per-step scheduler (OneCycleLR, CyclicLR) stepped
    about once per epoch when epochs have at least `min-steps-per-epoch` (10) steps and its
    schedule is longer than its calls. The message draws the learning-rate curve it produced.

    ## Why is this bad?
    The schedule runs at the wrong speed: a StepLR(step_size=30) meant as "every 30 epochs",
    stepped per batch, divides the rate by 10 every 30 batches and the model stops learning in
    the first epoch; a OneCycleLR sized in batches, stepped per epoch, never leaves its warm-up.

    ## Example
    ```python
    scheduler = StepLR(optimizer, step_size=30, gamma=0.1)
    for epoch in range(90):
        for x, y in loader:
            ...
            optimizer.step()
            scheduler.step()        # per batch
    ```
    Use instead:
    ```python
        for x, y in loader:
            ...
            optimizer.step()
        scheduler.step()            # per epoch
    ```

    ## Fix
    Step epoch-scale schedulers once per epoch, after the training loop; step OneCycleLR/CyclicLR
    (and warm-up) after every optimizer step.

    ## References
    - PyTorch, "How to adjust learning rate": https://pytorch.org/docs/stable/optim.html#how-to-adjust-learning-rate
    - PyTorch, `torch.optim.lr_scheduler.OneCycleLR` ("should be called after a batch has been used for training")
    """
    run = _run(context)
    if not run.schedulers or run.steps == 0:
        return
    epochs = max(run.epochs, 1)
    steps_per_epoch = run.steps / epochs
    for scheduler in run.schedulers:
        calls = len(scheduler.calls)
        per_batch = calls >= 0.5 * run.steps and steps_per_epoch >= 4
        if scheduler.name in EPOCH_SCALE_SCHEDULERS and per_batch:
            too_short = scheduler.period is not None and scheduler.period < steps_per_epoch
            rates = [r for r in run.learning_rates if r > 0]
            collapsed = scheduler.name == "ExponentialLR" and rates and rates[-1] < rates[0] / 100
            if not (too_short or collapsed):
                continue
            what = (
                f"{scheduler.name} is an epoch-scale scheduler but was stepped {calls} times "
                f"in {run.steps} optimizer steps ({run.epochs} epochs)"
            )
            fix = "call scheduler.step() once per epoch, after the loop over the training batches"
        elif scheduler.name in PER_STEP_SCHEDULERS and run.epochs >= 2 and calls <= run.epochs + 1:
            if steps_per_epoch < context.threshold("min-steps-per-epoch") or (
                scheduler.period is not None and scheduler.period <= calls + 1
            ):
                continue
            what = (
                f"{scheduler.name} is a per-step scheduler but was stepped {calls} times "
                f"in {run.epochs} epochs of {steps_per_epoch:.0f} steps"
            )
            fix = "call scheduler.step() after every optimizer.step(), inside the loop over the batches"
        else:
            continue
        curve = sparkline(run.learning_rates)
        yield _finding(
            run,
            message=f"{what}; the learning rate it produced: {curve} ({_number(run.learning_rates[0])} → "
            f"{_number(run.learning_rates[-1])})",
            fix=fix,
            at=scheduler.location,
            evidence={
                "scheduler": scheduler.name,
                "calls": calls,
                "steps": run.steps,
                "epochs": run.epochs,
                "learning_rate": _thin(run.learning_rates),
            },
        )


@rule(
    "NN604",
    "loss-divergence",
    Severity.ERROR,
    phase=Phase.WATCH,
    thresholds={"spike-factor": 2.0, "window": 100, "patience": 4, "min-window": 10},
    requires=("run",),
)
def loss_divergence(graph: ModelGraph | None, context: RuleContext) -> Iterator[Hit]:
    """The training loss went non-finite, or jumped far above its recent mean and stayed there.

    ## What it does
    Reports the first optimizer step whose training loss was NaN or infinite — with the first
    operation and module that produced a non-finite value when the forward is replayed on that
    step's input with the probe's instruments (only on that step), and under `torch.distributed`
    the rank that saw it first — and otherwise a loss spike: more than `patience` (4) consecutive
    steps each above `spike-factor` (2×) the mean of the previous `window` (100) steps (at least
    `min-window`, 10). The spike defaults are llm-foundry's KillLossSpike callback's.

    ## Why is this bad?
    A NaN loss poisons every weight at the next step and the rest of the run trains nothing, yet
    most loops keep going. A sustained spike means the step was too large for the surface: the
    run diverged and what comes after is recovery at best.

    ## Example
    ```python
    optimizer = torch.optim.SGD(model.parameters(), lr=5.0)   # far too large
    loss = criterion(model(x), y)
    ```
    Use instead:
    ```python
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
    torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm=1.0)   # before optimizer.step()
    ```

    ## Fix
    Lower the learning rate or add warm-up, clip gradients, check the named module for log(0),
    division by zero or an overflowing exponent; stop the run on a non-finite loss.

    ## References
    - MosaicML llm-foundry, `KillLossSpike` (window 100, outlier multiplier 2, patience 4)
    - Hugging Face Transformers, `debug="underflow_overflow"` (finds the first non-finite module)
    - Lecture "Applied Deep Learning — Practical Tips" (NTU, 2020): Learning Rate
    """
    run = _run(context)
    bad = run.non_finite
    if bad is not None:
        where = ""
        if bad.module is not None or bad.op is not None:
            where = f"; replaying that step's forward, `{bad.op}` in {bad.module or 'the model'} produced the first non-finite value"
        elif bad.replayed:
            where = "; replaying that step's forward, the model's outputs were finite: the loss computation made it non-finite"
        rank = f" on rank {bad.rank}" if bad.rank is not None and run.world_size > 1 else ""
        yield _finding(
            run,
            message=f"the training loss became {bad.value} at step {bad.step} {_in_epoch(run, bad.step)}{rank}{where}; "
            f"the run went on for {max(run.steps - bad.step - 1, 0)} more steps",
            fix="lower the learning rate or clip gradients; look for log(0), division by zero or overflow in the named module; "
            "stop on a non-finite loss",
            module=bad.module,
            at=bad.location,
            evidence={"step": bad.step, "value": bad.value, "rank": bad.rank, "op": bad.op, "loss": _thin(run.losses)},
        )
        return
    spike = _first_spike(run.losses, context)
    if spike is None:
        return
    step, mean = spike
    yield _finding(
        run,
        message=(
            f"the training loss spiked at step {step} {_in_epoch(run, step)}: {_number(run.losses[step])}, "
            f"{run.losses[step] / mean:.1f}× the mean {_number(mean)} of the steps before, and stayed above "
            f"{context.threshold('spike-factor'):g}× for {int(context.threshold('patience')) + 1} steps; loss {sparkline(run.losses)}"
        ),
        fix="lower the learning rate, add warm-up, or clip gradients (torch.nn.utils.clip_grad_norm_ before optimizer.step())",
        at=run.optimizer_location,
        evidence={"step": step, "loss": run.losses[step], "window_mean": mean, "losses": _thin(run.losses)},
    )


def _first_spike(losses: Sequence[float], context: RuleContext) -> tuple[int, float] | None:
    window, minimum = int(context.threshold("window")), int(context.threshold("min-window"))
    factor, patience = context.threshold("spike-factor"), int(context.threshold("patience"))
    run_start, run_length, run_mean = 0, 0, 0.0
    for index in range(minimum, len(losses)):
        previous = [v for v in losses[max(0, index - window) : index] if math.isfinite(v)]
        if len(previous) < minimum:
            continue
        mean = sum(previous) / len(previous)
        if mean > 0 and losses[index] > factor * mean:
            if run_length == 0:
                run_start, run_mean = index, mean
            run_length += 1
            if run_length > patience:
                return run_start, run_mean
        else:
            run_length = 0
    return None


@rule("NN605", "training-in-eval-mode", Severity.WARNING, phase=Phase.WATCH, requires=("run",))
def training_in_eval_mode(graph: ModelGraph | None, context: RuleContext) -> Iterator[Hit]:
    """Optimizer steps taken while the model was in evaluation mode, with dropout or BatchNorm in it.

    ## What it does
    At each optimizer step, checks the model's `training` flag; when it is off and the model has
    dropout or BatchNorm modules, counts the step and names the modules whose behaviour that
    changed, with the first such step and epoch. A model whose own flag is on is not reported,
    so BatchNorm layers frozen on purpose (`m.eval()` on them while fine-tuning) stay silent.

    ## Why is this bad?
    In evaluation mode dropout does nothing and BatchNorm normalizes with its running statistics
    and stops updating them: the model trains without its regularization and with stale
    normalization. The usual cause is a `model.eval()` for validation with no `model.train()`
    before the next epoch, or a Hugging Face model from `from_pretrained`, which returns in
    evaluation mode.

    ## Example
    ```python
    model.train()
    for epoch in range(epochs):
        for x, y in train_loader:
            ...
        model.eval()
        evaluate(model, val_loader)          # and the next epoch trains in eval mode
    ```
    Use instead:
    ```python
    for epoch in range(epochs):
        model.train()
        ...
    ```

    ## Fix
    Call `model.train()` at the start of every training epoch (and after `from_pretrained`).

    ## References
    - PyTorch, `nn.Module.train` / `eval`: https://pytorch.org/docs/stable/generated/torch.nn.Module.html#torch.nn.Module.eval
    - Lightning issues #19820, #20105, #20573 (models trained in evaluation mode)
    """
    run = _run(context)
    found = run.eval_mode_training
    if found is None or not found.modules:
        return
    first = found.modules[0]
    more = _and_more(found.modules)
    yield _finding(
        run,
        message=(
            f"{found.steps} of {run.steps} optimizer steps ran with the model in evaluation mode, from step {found.first_step} "
            f"{_in_epoch(run, found.first_step)}: `{first}`{more} did not behave as in training (dropout off, BatchNorm frozen)"
        ),
        fix="call model.train() at the start of every training epoch (after validation's model.eval(), and after from_pretrained)",
        module=first,
        evidence={"first_step": found.first_step, "steps": found.steps, "modules": list(found.modules)},
    )


@rule("NN606", "no-validation", Severity.INFO, phase=Phase.WATCH, thresholds={"min-steps": 20}, requires=("run",))
def no_validation(graph: ModelGraph | None, context: RuleContext) -> Iterator[Hit]:
    """The run never evaluated the model on held-out data.

    ## What it does
    Reports a run of at least `min-steps` (20) optimizer steps in which the model never ran a
    forward under `no_grad`/`inference_mode` or on a loader other than the training one, and no
    validation loss was logged (`nnlint.watch.log("val_loss", …)`).

    ## Why is this bad?
    Without a validation set neither overfitting nor the best epoch can be seen; early stopping
    and learning-rate decay on a plateau have nothing to go by.

    ## Example
    ```python
    for epoch in range(epochs):
        for x, y in train_loader:
            ...
    ```
    Use instead:
    ```python
    for epoch in range(epochs):
        ...
        model.eval()
        with torch.no_grad():
            val_loss = sum(criterion(model(x), y).item() for x, y in val_loader) / len(val_loader)
        model.train()
    ```

    ## Fix
    Hold out part of the data (`torch.utils.data.random_split`) and evaluate on it every epoch.

    ## References
    - Lecture "Applied Deep Learning — Practical Tips" (NTU, 2020): Early Stopping (training, validation and testing sets)
    """
    run = _run(context)
    if run.steps < context.threshold("min-steps") or run.evaluations or run.validation_losses():
        return
    yield _finding(
        run,
        message=f"{run.steps} optimizer steps over {run.epochs} epochs and no evaluation on held-out data: "
        "overfitting and the best epoch cannot be judged",
        fix="hold out a validation split and evaluate on it every epoch under torch.no_grad() with model.eval()",
        evidence={"steps": run.steps, "epochs": run.epochs},
    )


@rule(
    "NN607",
    "gradient-norm-trend",
    Severity.WARNING,
    phase=Phase.WATCH,
    thresholds={"min-change": 100.0, "min-samples": 6},
    requires=("run",),
)
def gradient_norm_trend(graph: ModelGraph | None, context: RuleContext) -> Iterator[Hit]:
    """Per-layer gradient norms that vanish or explode over the run, not only at the start.

    ## What it does
    From the per-layer gradient norms sampled during the run (every `--sample-every` steps),
    compares the median of the last third of the samples with the first third. A layer whose
    norm grew `min-change` (100×), in a model whose global gradient norm grew as much, is exploding
    (a layer that merely starts near zero, behind a zero-initialized layer, is not); a layer whose share of the largest layer norm fell
    100× is vanishing (relative, so that a loss going to zero, which shrinks every gradient, is not
    mistaken for it). Needs `min-samples` (6) samples. Two orders of magnitude is the same margin
    the probe's NN801/NN802 use at the start of training.

    ## Why is this bad?
    Gradients that fade in some layers stop those layers learning; growing ones precede a
    divergence. A check at initialization cannot see either when it develops during training
    (saturating units, weights that grow, a learning rate too large for later phases).

    ## Example
    ```python
    layers = [nn.Linear(64, 64), nn.Sigmoid()] * 8     # deep sigmoid stack, large learning rate
    ```
    Use instead:
    ```python
    layers = [nn.Linear(64, 64), nn.LayerNorm(64), nn.ReLU()] * 8
    ```

    ## Fix
    Normalize (BatchNorm/LayerNorm), use non-saturating activations and residual connections,
    lower the learning rate or clip gradients.

    ## References
    - Pascanu, Mikolov & Bengio, "On the difficulty of training recurrent neural networks" (ICML 2013)
    - Glorot & Bengio, "Understanding the difficulty of training deep feedforward neural networks" (AISTATS 2010)
    - Lecture "Applied Deep Learning — Practical Tips" (NTU, 2020): avoid exploding/vanishing gradients
    """
    run = _run(context)
    samples = [s for s in run.layers if s.grad_norms]
    if len(samples) < context.threshold("min-samples"):
        return
    change = context.threshold("min-change")
    third = max(len(samples) // 3, 1)
    early, late = samples[:third], samples[-third:]

    def share(norms: Mapping[str, float], layer: str) -> float:
        largest = max(norms.values())
        return norms[layer] / largest if largest > 0 else math.nan

    overall = [v for v in run.grad_norms if math.isfinite(v)]
    whole_model_grew = len(overall) >= 3 and _median(overall[: len(overall) // 3]) * change <= _median(overall[-(len(overall) // 3) :])
    exploding, vanishing = [], []
    for layer in samples[0].grad_norms:
        start = _median([s.grad_norms.get(layer, math.nan) for s in early])
        end = _median([s.grad_norms.get(layer, math.nan) for s in late])
        if whole_model_grew and start > 0 and end / start >= change:
            exploding.append((layer, start, end))
            continue
        start_share = _median([share(s.grad_norms, layer) for s in early if layer in s.grad_norms])
        end_share = _median([share(s.grad_norms, layer) for s in late if layer in s.grad_norms])
        if start_share > 0 and end_share * change <= start_share:
            vanishing.append((layer, start, end))
    for kind, found in (("exploded", exploding), ("vanished", vanishing)):
        if not found:
            continue
        layer, start, end = found[0]
        others = f" (and {len(found) - 1} more layers)" if len(found) > 1 else ""
        series = [s.grad_norms.get(layer, math.nan) for s in samples]
        yield _finding(
            run,
            message=(
                f"the gradient norm of `{layer}`{others} {kind} during training: {_number(start)} early, {_number(end)} late "
                f"(steps {samples[0].step}–{samples[-1].step}: {sparkline(series)})"
            ),
            fix="normalize (BatchNorm/LayerNorm), use non-saturating activations or residual connections, "
            "lower the learning rate or clip gradients",
            module=layer,
            evidence={"layer": layer, "early": start, "late": end, "grad_norm": series, "layers": [name for name, _, _ in found]},
        )


@rule(
    "NN608", "dead-units-growing", Severity.WARNING, phase=Phase.WATCH, thresholds={"min-growth": 0.25, "min-dead": 0.5}, requires=("run",)
)
def dead_units_growing(graph: ModelGraph | None, context: RuleContext) -> Iterator[Hit]:
    """The share of ReLU units that are never active on a batch grows during training.

    ## What it does
    On sampled steps, measures for each `nn.ReLU` the share of its units (channels or features)
    that output zero for every sample of the batch. Flags a ReLU whose share grew by at least
    `min-growth` (25 points) from the first sample to the last third of the run and ends above
    `min-dead` (half, the threshold of the probe's NN804).

    ## Why is this bad?
    A unit that outputs zero for every input gets no gradient and never recovers: it is dead.
    Units dying during training, rather than at initialization, is the signature of a learning
    rate too large ("as much as 40% of your network can be dead" — CS231n).

    ## Example
    ```python
    optimizer = torch.optim.SGD(model.parameters(), lr=2.0)
    ```
    Use instead:
    ```python
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05)      # or nn.LeakyReLU / GELU
    ```

    ## Fix
    Lower the learning rate (or warm it up), use LeakyReLU/GELU, or normalize before the ReLU.

    ## References
    - CS231n, "Commonly used activation functions" (dying ReLU): https://cs231n.github.io/neural-networks-1/
    - Lu et al., "Dying ReLU and Initialization: Theory and Numerical Examples" (2019)
    """
    run = _run(context)
    samples = [s for s in run.layers if s.dead_fractions]
    if len(samples) < 3:
        return
    late = samples[-max(len(samples) // 3, 1) :]
    for relu in samples[0].dead_fractions:
        start = samples[0].dead_fractions[relu]
        end = _median([s.dead_fractions.get(relu, math.nan) for s in late])
        if end >= context.threshold("min-dead") and end - start >= context.threshold("min-growth"):
            series = [s.dead_fractions.get(relu, math.nan) for s in samples]
            yield _finding(
                run,
                message=f"the share of never-active units of `{relu}` grew from {start:.0%} to {end:.0%} "
                f"during training ({sparkline(series)})",
                fix="lower the learning rate or warm it up; use LeakyReLU/GELU, or normalize before the ReLU",
                module=relu,
                evidence={"early": start, "late": end, "dead_fraction": series},
            )


@rule(
    "NN609",
    "batchnorm-statistics-drift",
    Severity.WARNING,
    phase=Phase.WATCH,
    thresholds={"max-shift": 1.0, "max-eval-gap": 1.0, "min-gap-growth": 0.5},
    requires=("run",),
)
def batchnorm_statistics_drift(graph: ModelGraph | None, context: RuleContext) -> Iterator[Hit]:
    """BatchNorm running statistics far from the batch statistics late in training, or a train/eval gap that grows.

    ## What it does
    Two measurements of the same mismatch. On sampled training steps, before a training-mode
    BatchNorm updates its running statistics, it measures how far the batch's per-channel means
    are from the running means, in running standard deviations (averaged over channels; batches
    with fewer than 32 values per channel are skipped), and flags a BatchNorm whose median
    distance over the last third of the samples is above `max-shift` (1 standard deviation).
    On each validation pass run in evaluation mode, it takes the pass's first batch (at most 32
    samples) once more with the BatchNorm layers normalizing by the batch's own statistics, as
    in training (dropout stays off, the running statistics are not touched), and compares the
    two losses: the train/eval gap. It flags a gap that grew: over the last third of at least
    three evaluations the loss with the running statistics was, in the median, more than
    `max-eval-gap` (1.0: twice) the loss with batch statistics, and that is `min-gap-growth`
    (0.5) more than at the first evaluation. This catches running variances that lag (the
    first measurement sees only means). The gap is not measured under torch.distributed with
    several processes (a replay on one rank could leave the others waiting). The thresholds are wide on purpose: with 32 samples the
    batch statistics are noisy, and the healthy runs measured while writing this rule (the
    fixtures' clean twins, the bench CNN) kept the gap between -0.9 and +0.4, mostly below zero.

    ## Why is this bad?
    Evaluation uses the running statistics; when they lag behind the data (a momentum too small,
    hidden-state statistics that keep changing — the lecture's internal covariate shift), the
    model evaluated is not the model trained, and validation loss is worse than training for no
    reason the model can learn away.

    ## Example
    ```python
    self.norm = nn.BatchNorm1d(64, momentum=0.001)     # running mean moves 0.1% per step
    ```
    Use instead:
    ```python
    self.norm = nn.BatchNorm1d(64)                     # momentum=0.1
    ```

    ## Fix
    Use the default momentum (0.1), recompute the statistics before evaluating (run a few
    training-mode forwards under no_grad, as `torch.optim.swa_utils.update_bn` does), or use
    LayerNorm/GroupNorm.

    ## References
    - Ioffe & Szegedy, "Batch Normalization" (ICML 2015): running averages for inference
    - Ioffe, "Batch Renormalization" (NeurIPS 2017): train/inference mismatch of batch statistics
    - Lecture "Applied Deep Learning — Practical Tips" (NTU, 2020): Internal Covariate Shift
    """
    run = _run(context)
    gap = _growing_train_eval_gap(run, context)
    hits = list(_drifting_batchnorms(run, context))
    if gap is None:
        yield from hits
        return
    first, late, series = gap
    said = (
        f"the validation loss with the running statistics was {late + 1:.1f}× the loss of the same samples normalized "
        f"by their own batch statistics, up from {first + 1:.1f}× at the first evaluation (gap per evaluation "
        f"{sparkline(series)})"
    )
    evidence = {"eval_gap_first": first, "eval_gap_late": late, "eval_gap": series}
    if hits:  # the same mismatch seen both ways: one finding
        hit = hits[0]
        yield dataclasses.replace(hit, message=f"{hit.message}; {said}", evidence={**hit.evidence, **evidence})
        yield from hits[1:]
        return
    layers = list(run.layers[-1].batchnorm_shifts) if run.layers else []
    module = layers[0] if layers else None
    named = f"`{module}`{_and_more(layers)}" if module else "its BatchNorm layers"
    yield _finding(
        run,
        message=f"the model evaluated is not the model trained: {named} normalize with running statistics that lag; {said}",
        fix=_BATCHNORM_FIX,
        module=module,
        evidence=evidence,
    )


def _drifting_batchnorms(run: RunRecord, context: RuleContext) -> Iterator[Hit]:
    samples = [s for s in run.layers if s.batchnorm_shifts]
    if len(samples) < 3:
        return
    late = samples[-max(len(samples) // 3, 1) :]
    for norm in samples[-1].batchnorm_shifts:
        shift = _median([s.batchnorm_shifts.get(norm, math.nan) for s in late])
        if shift > context.threshold("max-shift"):
            series = [s.batchnorm_shifts.get(norm, math.nan) for s in samples]
            yield _finding(
                run,
                message=(
                    f"late in training the batch means of `{norm}` were {shift:.1f} running standard deviations from its running "
                    f"means ({sparkline(series)}): evaluation normalizes with statistics the layer no longer sees"
                ),
                fix=_BATCHNORM_FIX,
                module=norm,
                evidence={"late_shift": shift, "shift": series},
            )


def _growing_train_eval_gap(run: RunRecord, context: RuleContext) -> tuple[float, float, list[float]] | None:
    """(first gap, median late gap, every gap) when the train/eval gap grew past the thresholds."""
    gaps = [gap for _, _, gap in run.batchnorm_gaps()]
    if len(gaps) < 3:
        return None
    late = _median(gaps[-max(len(gaps) // 3, 1) :])
    if late > context.threshold("max-eval-gap") and late - gaps[0] >= context.threshold("min-gap-growth"):
        return gaps[0], late, gaps
    return None


@rule("NN610", "validation-in-train-mode", Severity.WARNING, phase=Phase.WATCH, requires=("run",))
def validation_in_train_mode(graph: ModelGraph | None, context: RuleContext) -> Iterator[Hit]:
    """Validation forwards ran with dropout or BatchNorm in training mode.

    ## What it does
    For each validation pass (forwards under `no_grad`/`inference_mode` or on a loader other
    than the training one), checks the model's `training` flag; when it is on and the model has
    dropout or BatchNorm, reports how many passes ran that way, the first one, and the modules.

    ## Why is this bad?
    "When testing, no dropout": in training mode dropout drops units at random and BatchNorm
    normalizes with the validation batch's own statistics (and updates its running statistics
    from validation data). The validation loss is noisy and biased, and early stopping or model
    selection made on it is wrong.

    ## Example
    ```python
    with torch.no_grad():
        for x, y in val_loader:
            val_loss += criterion(model(x), y)
    ```
    Use instead:
    ```python
    model.eval()
    with torch.no_grad():
        for x, y in val_loader:
            val_loss += criterion(model(x), y)
    model.train()
    ```

    ## Fix
    Call `model.eval()` before validation and `model.train()` after it.

    ## References
    - Lecture "Applied Deep Learning — Practical Tips" (NTU, 2020): Dropout at testing time
    - Srivastava et al., "Dropout" (JMLR 2014): weights scaled at test time instead of dropping
    """
    run = _run(context)
    in_train_mode = [e for e in run.evaluations if e.train_mode_modules]
    if not in_train_mode:
        return
    first = in_train_mode[0]
    module = first.train_mode_modules[0]
    more = _and_more(first.train_mode_modules)
    yield _finding(
        run,
        message=(
            f"{len(in_train_mode)} of {len(run.evaluations)} validation passes ran with the model in training mode, the first "
            f"{_at_epoch(run, first.epoch)}(step {first.step}): `{module}`{more} dropped units or used batch statistics"
        ),
        fix="call model.eval() before validation and model.train() after it",
        module=module,
        evidence={"passes": len(in_train_mode), "evaluations": len(run.evaluations), "modules": list(first.train_mode_modules)},
    )


def _thin(values: Sequence[float], points: int = 200) -> list[float]:
    """At most `points` values, evenly spaced: evidence, not the whole run."""
    if len(values) <= points:
        return list(values)
    stride = len(values) / points
    return [values[int(i * stride)] for i in range(points)]
