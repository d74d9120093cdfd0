"""The pipeline: load -> graph -> rules -> findings, for files (the CLI) and for models (the API)."""

from __future__ import annotations

import dataclasses
import traceback
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from nnlint.config import Config
from nnlint.context import BatchSize, RuleContext
from nnlint.errors import LoadError, NoModelError
from nnlint.file_result import FileResult
from nnlint.findings import Finding, Location, Phase
from nnlint.graph import GraphError, ModelGraph, build_graph, non_tensor_output, one_line
from nnlint.inputs import (
    ChosenInput,
    InputError,
    chosen_input,
    runs_on_made_up_input,
    smaller_probe_image,
    smallest_feature_map,
    training_batch_size,
)
from nnlint.loader import LoadedTarget, collect_model_files, loaded_model_file, split_target_argument
from nnlint.registry import Hit, Rule, all_rules, expand_codes, rules_by_code
from nnlint.report import GradientFlow, GradientFlowLayer, Problem, Report, SkippedChecks, TargetReport
from nnlint.runtime.escapes import UserExit, escapes_nnlint
from nnlint.runtime.execution import input_problem
from nnlint.runtime.nesting import too_deep_for_torch
from nnlint.runtime.state import deep_recursion_allowed, preserved_user_state, uninitialized_module
from nnlint.runtime.timeout import ProbeTimeout, deadline
from nnlint.sources import ModuleLocator
from nnlint.suppression import SuppressionLedger, suppressions_in
from nnlint.targets import Target
from nnlint.wrappers import TORCHSCRIPT_PROBLEM, is_torchscript, unwrapped

if TYPE_CHECKING:
    from nnlint.probe import ProbeResult
    from nnlint.probe.result import MeasureNote
    from nnlint.script.lint import ScriptOptions

# What a rule can require, and what the user would define to enable it.
_ENABLED_BY = {
    "loss_fn": "need `loss_fn` (the training loss)",
    "optimizer": "need `optimizer` (the optimizer the model is trained with)",
    "example_batch": "need `example_batch` = (inputs, targets) of real data",
    "batch_size": "need the training batch size: define `batch_size` or `example_input`, or pass --batch-size",
    "deep": "opt-in: pass --deep (trains a copy on a few samples for 50 steps)",
}


class Linter:
    """Lints targets one by one; suppressions are tracked across all of them (for NN003)."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.rules = [rule for rule in all_rules() if config.is_enabled(rule.code)]
        self.ledger = SuppressionLedger()
        self.reports: list[TargetReport] = []
        self.problems: list[Problem] = []
        self.tracebacks: list[str] = []
        suppressions_in.cache_clear()

    # -- one target ----------------------------------------------------------------------------
    def lint(self, loaded: LoadedTarget, notes: Iterable[str] = ()) -> TargetReport:
        findings, skipped, graph, notes, probe = self._guarded_check(loaded, [*loaded.notes, *notes])
        report = TargetReport(
            name=loaded.name,
            file=str(loaded.file) if loaded.file else None,
            graph=graph.method if graph else None,
            device=probe.device if probe else None,
            findings=tuple(sorted(self._kept(findings, loaded), key=Finding.sort_key)),
            skipped=tuple(SkippedChecks(tuple(codes), reason) for reason, codes in skipped.items()),
            notes=tuple(notes),
            gradient_flow=self._gradient_flow(probe),
        )
        if loaded.file is not None:
            self.ledger.consult(str(loaded.file), len(self.reports))
        self.reports.append(report)
        return report

    def _guarded_check(
        self, loaded: LoadedTarget, notes: list[str]
    ) -> tuple[list[Finding], dict[str, list[str]], ModelGraph | None, list[str], ProbeResult | None]:
        """`_lint_target` with everything the target's code can reach put back afterwards, wrappers
        taken off, room for deeply nested models, and whatever escapes it reported, never raised:
        a SystemExit or GeneratorExit from the user's code is NN002, a bug of nnlint's an internal
        error. Ctrl-C still stops the run, after the state is put back."""
        target = loaded.target
        original = target.model
        inner, unwrapped_notes = unwrapped(original)
        if inner is not original:
            loaded = dataclasses.replace(loaded, target=dataclasses.replace(target, model=inner))
        related = (original, target.loss_fn, target.example_input, target.example_batch)
        if (too_deep := too_deep_for_torch(inner)) is not None:  # before the state guard, which torch's walks would fail in
            return [self._unusable(loaded, too_deep)], {}, None, notes, None
        try:
            with preserved_user_state(inner, *related), deep_recursion_allowed():
                return self._lint_target(loaded, [*notes, *unwrapped_notes])
        except Exception as error:
            self._internal_error(loaded, "linting", error)
        except BaseException as error:
            if escapes_nnlint(error):
                raise
            self._keep_traceback(error)
            reason = f"its code raised {one_line(UserExit(error))}"
            return [self._unusable(loaded, reason)], {}, None, notes, None
        return [], {}, None, notes, None

    def _lint_target(
        self, loaded: LoadedTarget, notes: list[str]
    ) -> tuple[list[Finding], dict[str, list[str]], ModelGraph | None, list[str], ProbeResult | None]:
        if loaded.problem is not None:
            return [self._unusable(loaded, loaded.problem)], {}, None, notes, None
        if is_torchscript(loaded.target.model):
            return [self._unusable(loaded, TORCHSCRIPT_PROBLEM)], {}, None, notes, None
        lazy = uninitialized_module(loaded.target.model)
        if lazy is not None:
            module = loaded.target.model.get_submodule(lazy)
            location = ModuleLocator(loaded.target.model, loaded.location).locate(lazy)
            reason = f"{type(module).__name__} `{lazy}` has no parameters yet (a lazy module): run one forward on a batch before linting"
            return [self._unusable(loaded, reason, module=lazy or None, location=location)], {}, None, notes, None
        try:
            chosen = chosen_input(loaded, self.config.input_shape, trains=not self.config.static)
            example_input, inferred = chosen.value, chosen.inferred
        except InputError as error:
            return [self._unusable(loaded, f"{error}; define `example_input` or pass --input-shape")], {}, None, notes, None
        if (problem := input_problem(example_input)) is not None:
            return [self._unusable(loaded, problem)], {}, None, notes, None
        if inferred:
            described = _describe_input(example_input) + _time_major(chosen.batch_dim)
            notes.append(f"no example input given: inferred {described} from {chosen.origin or 'the first layer'}")
        graph: ModelGraph | None = None
        findings: list[Finding] = []
        try:
            graph = self._graph(loaded, example_input, chosen.batch_dim)
        except ProbeTimeout:
            seconds = self.config.probe_timeout
            reason = f"its forward did not finish within {seconds:g} s while nnlint built the graph (--probe-timeout)"
            findings.append(self._unusable(loaded, reason))
        except GraphError as error:
            self._keep_traceback(error)
            location = ModuleLocator(loaded.target.model, loaded.location).locate(error.module) if error.module else None
            findings.append(self._unusable(loaded, str(error), module=error.module, location=location))
        if graph is not None and (returned := non_tensor_output(graph)) is not None:
            hint = " (is a `return` missing?)" if returned == "None" else ""
            findings.append(self._unusable(loaded, f"forward returned {returned}, not a tensor: nothing to check or train{hint}"))
            graph = None
        if graph is not None and graph.recorded_on in _RECORDED_ON_REAL_VALUES:
            notes.append(f"the forward needs real values (e.g. `.item()`){_RECORDED_ON_REAL_VALUES[graph.recorded_on]}")
        batch_size = training_batch_size(loaded, example_input, inferred, self.config.batch_size)
        context = RuleContext(
            loaded.target, batch_size, loaded.location, extra_locations=loaded.context_locations, data_loader=loaded.data_loader
        )
        skipped: dict[str, list[str]] = defaultdict(list)
        findings += self._run_rules(Phase.STATIC, graph, context, loaded, skipped)
        probe = None
        if graph is not None and not self.config.static:
            findings, probe = self._probe_stage(loaded, graph, chosen, context, findings, notes, skipped)
        return findings, skipped, graph, notes, probe

    def _graph(self, loaded: LoadedTarget, example_input: object, batch_dim: int | None = 0) -> ModelGraph:
        """The graph, within `--probe-timeout`: a forward that never returns stops with ProbeTimeout,
        and whatever the interrupted trace or recording left in the process is put back."""
        model = loaded.target.model
        with preserved_user_state(model), deadline(self.config.probe_timeout):
            return build_graph(model, example_input, ModuleLocator(model, loaded.location), self.config.graph, batch_dim)

    def _run_rules(
        self, phase: Phase, graph: ModelGraph | None, context: RuleContext, loaded: LoadedTarget, skipped: dict[str, list[str]]
    ) -> list[Finding]:
        findings: list[Finding] = []
        for rule in self.rules:
            if rule.check is None or rule.phase is not phase:
                continue
            missing = _missing_requirement(rule, graph, loaded.target, context.batch_size, context.probe, self.config.deep)
            if missing is not None:
                if missing in _ENABLED_BY:
                    skipped[_ENABLED_BY[missing]].append(rule.code)
                continue
            findings += self._run_rule(rule, graph, dataclasses.replace(context, thresholds=self.config.thresholds_for(rule)), loaded)
        return findings

    # -- the probe stage: after the static rules, on the real model (nnlint.probe) ---------------
    def _probe_stage(
        self,
        loaded: LoadedTarget,
        graph: ModelGraph,
        chosen: ChosenInput,
        context: RuleContext,
        findings: list[Finding],
        notes: list[str],
        skipped: dict[str, list[str]],
    ) -> tuple[list[Finding], ProbeResult | None]:
        """Run the probe, then the probe rules; static findings it measured get its evidence."""
        probe_rules = [rule for rule in self.rules if rule.phase is Phase.PROBE]
        if not probe_rules:
            return findings, None
        # Imported here: a --static run never loads the probe (about 0.1 s of imports).
        from nnlint.probe import ProbeFailed, ProbeSettings, ProbeSkipped, ProbeTimedOut, run_probe

        rules = rules_by_code()
        # Static rules that fired and whose findings the probe can measure ask for that work too.
        measured_static = [rules[code] for code in {f.code for f in findings} if rules[code].probe_evidence is not None]
        settings = ProbeSettings(
            device=self.config.device,
            steps=self.config.probe_steps,
            timeout=self.config.probe_timeout,
            deep=self.config.deep,
            measures=frozenset().union(*(rule.needs for rule in [*self._runnable(probe_rules, graph, loaded, context), *measured_static])),
            training_batch_size=context.batch_size.value if context.batch_size else None,
            input_source=_input_source(loaded.target),
            budget=self.config.probe_budget,
            batch_dim=chosen.batch_dim,
            no_batch=chosen.no_batch,
        )
        probe_input = self._probe_input(loaded, graph, chosen, notes)
        try:
            probe = run_probe(loaded.target.model, probe_input, loaded.target, settings)
        except ProbeSkipped as skipped_because:
            notes.append(f"the probe did not run: {skipped_because}; only static checks ran")
            return findings, None
        except (ProbeFailed, ProbeTimedOut) as error:
            self._keep_traceback(error)
            if isinstance(error, ProbeFailed) and chosen.inferred and loaded.target.example_batch is None:
                # The meta run accepted the shape nnlint guessed, but real values can still be out of
                # range (positions past an Embedding's size): the guess failed, not the user's model.
                notes.append(f"the probe did not run: on the input nnlint inferred, {error}; define `example_input` to probe the model")
                return findings, None
            module = error.module if error.module in graph.modules else None
            reason = f"{error}; the static findings are reported, the probe's checks are not"
            location = graph.modules[module].location if module else None
            return [*findings, self._unusable(loaded, reason, module, location, probe=True)], None
        except Exception as error:
            self._internal_error(loaded, "the probe", error)
            return findings, None
        notes.append(_probe_summary(probe, chosen.batch_dim))
        notes.extend(f"probe: {self._probe_note(note)}" for note in probe.notes)
        measured = [_with_probe_evidence(rules[finding.code], finding, probe) for finding in findings]
        return measured + self._run_rules(Phase.PROBE, graph, dataclasses.replace(context, probe=probe), loaded, skipped), probe

    def _probe_input(self, loaded: LoadedTarget, graph: ModelGraph, chosen: ChosenInput, notes: list[str]) -> object:
        """The input the probe trains on: the graph's, or under --probe-budget, for a fully
        convolutional model given no input, smaller made-up images (nnlint.inputs.smaller_probe_image)."""
        example_input = chosen.value
        if not chosen.inferred or self.config.probe_budget is None:
            return example_input
        smaller = smaller_probe_image(loaded.target.model, example_input, smallest_feature_map(graph), graph)
        if smaller is None:
            return example_input
        side, full = smaller.shape[-1], getattr(example_input, "shape", (0,))[-1]
        why = "the model is fully convolutional, and smaller images make each training step cheaper"
        notes.append(f"probe: trained on made-up {side}x{side} images, not {full}x{full}: {why}")
        return smaller

    def _runnable(self, rules: list[Rule], graph: ModelGraph, loaded: LoadedTarget, context: RuleContext) -> list[Rule]:
        """The probe rules whose requirements (other than the probe itself) are met: only their
        measurements are worth the probe's time."""
        return [
            rule
            for rule in rules
            if _missing_requirement(rule, graph, loaded.target, context.batch_size, None, self.config.deep) in (None, "probe")
        ]

    def _gradient_flow(self, probe: ProbeResult | None) -> GradientFlow | None:
        """The chart's data; none for fewer than two layers, or when a gradient is NaN/Inf (NN803 says where)."""
        if probe is None or len(probe.layers) < 2 or not all(layer.finite for layer in probe.layers):
            return None
        last = probe.layers[-1].grad_norm
        # The rules that judge the gradients say where the chart draws their limits.
        lines: dict[str, float] = {}
        for rule in all_rules():
            if rule.chart_lines is not None:
                lines |= rule.chart_lines(self.config.thresholds_for(rule), last)
        return GradientFlow(
            layers=tuple(GradientFlowLayer(layer.module, layer.grad_norm) for layer in probe.layers),
            loss=probe.loss_source,
            **lines,
        )

    def _probe_note(self, note: str | MeasureNote) -> str:
        """A note about a measurement names the selected rules that read it."""
        if isinstance(note, str):
            return note
        readers = sorted(rule.code for rule in self.rules if note.measure in rule.needs)
        return f"{', '.join(readers) or note.measure.label}: {note.text}"

    def _run_rule(self, rule: Rule, graph: ModelGraph | None, context: RuleContext, loaded: LoadedTarget) -> list[Finding]:
        try:
            hits = list(rule.check(graph, context))  # type: ignore[misc, arg-type]
        except Exception as error:
            self._internal_error(loaded, f"rule {rule.code} ({rule.slug})", error)
            return []
        return [self._finding(rule, hit, graph, loaded) for hit in hits]

    def _finding(self, rule: Rule, hit: Hit, graph: ModelGraph | None, loaded: LoadedTarget) -> Finding:
        location = hit.location
        if location is None and graph is not None and hit.module in graph.modules:
            location = graph.modules[hit.module].location
        return Finding(
            code=rule.code,
            name=rule.slug,
            severity=hit.severity or rule.severity,
            phase=rule.phase,
            message=hit.message,
            module=hit.module,
            location=location or loaded.location,
            evidence=dict(hit.evidence),
            fix=hit.fix,
        )

    def _unusable(
        self, loaded: LoadedTarget, reason: str, module: str | None = None, location: Location | None = None, probe: bool = False
    ) -> Finding:
        rule = rules_by_code()["NN002"]
        message = f"the probe could not run `{loaded.name}`: {reason}" if probe else f"`{loaded.name}` cannot be linted: {reason}"
        hit = Hit(message=message, fix=_PROBE_FIX if probe else _UNUSABLE_FIX, module=module, location=location)
        return self._finding(rule, hit, None, loaded)

    def _kept(self, findings: list[Finding], loaded: LoadedTarget) -> list[Finding]:
        """Drop duplicates, unselected codes, per-module ignores and inline suppressions."""
        kept: dict[tuple, Finding] = {}
        target_file = str(loaded.file) if loaded.file else None
        for finding in findings:
            key = (finding.code, finding.module, finding.location, finding.message)
            if key in kept or not self.config.is_enabled(finding.code) or self.config.ignored_for_module(finding.code, finding.module):
                continue
            if self.ledger.suppresses(finding, target_file, len(self.reports)):
                continue
            kept[key] = finding
        return list(kept.values())

    def _internal_error(self, loaded: LoadedTarget, where: str, error: Exception) -> None:
        """A bug in nnlint itself: reported as a problem with the target, never a traceback."""
        self._keep_traceback(error)
        message = f"internal error in {where} on `{loaded.name}`: {one_line(error)}; please report it"
        self.problems.append(Problem(str(loaded.file) if loaded.file else None, message))

    def _keep_traceback(self, error: BaseException) -> None:
        cause = error.__cause__ or error
        self.tracebacks.append("".join(traceback.format_exception(cause)))

    def absorb(self, result: FileResult) -> None:
        """Add one file's result, linted on its own (here or in a child process), to this run."""
        self.ledger.absorb(result.ledger, len(self.reports))
        self.reports += result.reports
        self.problems += result.problems
        self.tracebacks += result.tracebacks

    def file_result(self, path: Path) -> FileResult:
        return FileResult(str(path), tuple(self.reports), tuple(self.problems), tuple(self.tracebacks), self.ledger)

    # -- the whole run -------------------------------------------------------------------------
    def report(self) -> Report:
        """The final report, with NN003 for every suppression that silenced nothing."""
        reports = list(self.reports)
        for index, finding in self._unused_suppressions():
            target = reports[index]
            reports[index] = dataclasses.replace(target, findings=tuple(sorted((*target.findings, finding), key=Finding.sort_key)))
        return Report(tuple(reports), tuple(self.problems), self.config.fail_on, tuple(self.tracebacks))

    def _unused_suppressions(self) -> list[tuple[int, Finding]]:
        if not self.config.is_enabled("NN003"):
            return []
        rule = rules_by_code()["NN003"]
        unused = []
        for suppression, code in self.ledger.unused():
            try:
                codes = expand_codes([code])
            except ValueError:
                message, fix = (
                    f"`# nnlint: ignore[{code}]` names no rule: {code!r} is not an nnlint code",
                    "correct the code (`nnlint rules` lists them) or remove it",
                )
            else:
                if not codes & self.config.enabled_codes:
                    continue  # the rule is not selected, so its suppression cannot be judged
                kind = "ignore-file" if suppression.whole_file else "ignore"
                message, fix = f"`# nnlint: {kind}[{code}]` suppresses nothing: no {code} finding here", "remove the suppression"
            finding = Finding(rule.code, rule.slug, rule.severity, rule.phase, message, None, suppression.location, {"code": code}, fix)
            unused.append((self.ledger.consulted_by[suppression.location.file], finding))
        return unused


_UNUSABLE_FIX = "make the model build and run on its example input (run it once in Python to see the full error), or pass --verbose"
_PROBE_FIX = (
    "make one training step (model.train(), forward, loss, backward) run on the example input, raise --probe-timeout, "
    "or pass --static to skip the probe; --verbose shows the traceback"
)


def _missing_requirement(
    rule: Rule, graph: ModelGraph | None, target: Target, batch_size: BatchSize | None, probe: ProbeResult | None = None, deep: bool = False
) -> str | None:
    for requirement in sorted(rule.requires):
        if requirement == "graph" and graph is None:
            return "graph"
        if requirement == "batch_size" and batch_size is None:
            return "batch_size"
        if requirement == "probe" and probe is None:
            return "probe"
        if requirement == "deep" and not deep:
            return "deep"
        if requirement in ("loss_fn", "optimizer", "example_batch") and getattr(target, requirement) is None:
            return requirement
    return None


def _with_probe_evidence(rule: Rule, finding: Finding, probe: ProbeResult) -> Finding:
    """A static finding with what the probe measured about it, when its rule has a hook for that."""
    return rule.probe_evidence(finding, probe) if rule.probe_evidence is not None else finding


def _input_source(target: Target) -> str:
    """Where the probe's input comes from: real data first (with its targets), then the example input."""
    if target.labeled_batch is not None:
        return "example_batch"
    return "example_input" if target.example_input is not None else "random"


def _probe_summary(probe: ProbeResult, batch_dim: int | None) -> str:
    steps = f"{probe.steps} training step{'s' if probe.steps != 1 else ''}"
    # An input that holds no batch (one graph, one sequence): its first dimension counts nodes or steps.
    batch = f"batch {probe.batch}" if batch_dim is not None else "one input, not a batch"
    return f"probe: {steps} on {probe.device}, {batch}, loss: {probe.loss_source}"


# What a graph recorded on real values was recorded on (ModelGraph.recorded_on), as the note says it.
_RECORDED_ON_REAL_VALUES = {
    "real": ", so the graph was recorded on one real sample",
    "example": " and rejects a single sample, so the graph was recorded on the whole example input",
}


def _time_major(batch_dim: int | None) -> str:
    """How a made-up input laid out for a batch_first=False sequence layer is described."""
    return " laid out (time, batch, …) for its batch_first=False sequence layer" if batch_dim == 1 else ""


def _describe_input(value: object) -> str:
    shape = getattr(value, "shape", None)
    return f"an input of shape {'x'.join(map(str, shape))}" if shape is not None else "an input"


class FileLinter(Protocol):
    """Lints one file on its own: `lint_file` here, or the same call in a child process (nnlint/isolation.py)."""

    def __call__(
        self, path: Path, config: Config, *, explicit: bool, chosen: Sequence[str] = (), script: ScriptOptions | None = None
    ) -> FileResult: ...


@dataclasses.dataclass(frozen=True)
class FileToLint:
    path: Path
    explicit: bool  # named on the command line, not found in a folder
    chosen: tuple[str, ...]  # the targets named with `file.py::expression`


class FilesLinter(Protocol):
    """Lints several files, each on its own, in any order or at once (nnlint/isolation.py's
    parallel children); returns their results in the order of `files`."""

    def __call__(self, files: Sequence[FileToLint], config: Config, *, script: ScriptOptions | None = None) -> list[FileResult]: ...


def lint_file(
    path: Path,
    config: Config,
    *,
    explicit: bool = True,
    chosen: Sequence[str] = (),
    script: ScriptOptions | None = None,
    on_target: Callable[[LoadedTarget], None] | None = None,
    on_linted: Callable[[FileResult], None] | None = None,
) -> FileResult:
    """Import one model file and lint each of its targets (or run a training script to its first
    step, nnlint.script); everything it produced, ready to merge.

    `explicit`: the file was named, so a file without a model is a problem rather than skipped.
    `chosen`: the `file.py::expression` targets named for this file. `script`: a named training
    script's arguments and time limit. `on_target` is told which target is about to be linted (a
    child process passes it on, so that a child that dies names the target it died in).
    `on_linted` is given, after each target, everything the file produced so far (a child sends
    it on, so that the targets finished before one that runs out of time are still reported).
    """
    linter = Linter(config)
    if _lint_as_script(linter, path, script, explicit):
        return linter.file_result(path)
    try:
        with loaded_model_file(path, chosen, forward_check=runs_on_made_up_input) as loaded_file:
            notes = loaded_file.notes
            for loaded in loaded_file.targets:
                if on_target is not None:
                    on_target(loaded)
                linter.lint(loaded, notes)
                notes = []
                if on_linted is not None:
                    on_linted(linter.file_result(path))
    except NoModelError as error:
        if explicit:
            linter.problems.append(Problem(error.path, error.message))
    except LoadError as error:
        linter._keep_traceback(error)
        linter.problems.append(Problem(error.path, error.message))
    return linter.file_result(path)


def unlintable_file(
    path: Path, config: Config, name: str, location: Location | None, reason: str, fix: str, traceback_text: str | None = None
) -> FileResult:
    """A file whose lint ended without a result (its process exited, was killed or ran out of
    time): NN002 on the target it was in, or on the file itself."""
    rule = rules_by_code()["NN002"]
    message = f"`{name}` cannot be linted: {reason}"
    finding = Finding(rule.code, rule.slug, rule.severity, rule.phase, message, location=location or Location(str(path), 1), fix=fix)
    kept = (finding,) if config.is_enabled(rule.code) else ()
    report = TargetReport(name=name, file=str(path), graph=None, device=None, findings=kept, notes=() if kept else (message,))
    return FileResult(str(path), (report,), tracebacks=(traceback_text,) if traceback_text else ())


def lint_paths(
    paths: list[Path],
    config: Config,
    *,
    skip_non_model_files: bool = False,
    script: ScriptOptions | None = None,
    lint_one: FileLinter = lint_file,
    lint_all: FilesLinter | None = None,
) -> Report:
    """Lint every model file under `paths`, each on its own; a file that fails does not stop the rest.

    `skip_non_model_files`: named files without a model are skipped quietly, as in a folder.
    `script`: a named training script's arguments and time limit (script mode, nnlint.script).
    `lint_one` lints one file: in this process by default, in a child process from the CLI;
    `lint_all`, when given, lints them all instead (several child processes at once: --jobs).
    """
    linter = Linter(config)
    paths, chosen = _chosen_targets(paths, config)
    files, errors = collect_model_files(paths, named_as_found=skip_non_model_files)
    linter.problems += [Problem(error.path, error.message) for error in errors]
    linted_from: dict[Path, int] = defaultdict(int)
    results = _lint_each(files, chosen, config, script, lint_one, lint_all)
    for (path, _), result in zip(files, results, strict=True):
        linter.absorb(result)
        linted_from[path] += len(result.reports)
    for folder in (p for p in paths if p.is_dir()):
        if not any(linted_from[f] for f, _ in files if folder in f.parents) and not any(
            Path(p.file or "").is_relative_to(folder) for p in linter.problems
        ):
            linter.problems.append(Problem(str(folder), "no model found in any of its Python files"))
    return linter.report()


def _lint_each(
    files: list[tuple[Path, bool]],
    chosen: dict[Path, list[str]],
    config: Config,
    script: ScriptOptions | None,
    lint_one: FileLinter,
    lint_all: FilesLinter | None,
) -> Iterable[FileResult]:
    """Each file's result, in the order of `files`: one file after the other, or all through `lint_all`."""
    if lint_all is not None:
        to_lint = [FileToLint(path, explicit, tuple(chosen.get(path.resolve(), ()))) for path, explicit in files]
        return lint_all(to_lint, config, script=script)
    return (lint_one(path, config, explicit=explicit, chosen=chosen.get(path.resolve(), ()), script=script) for path, explicit in files)


def _chosen_targets(arguments: list[Path], config: Config) -> tuple[list[Path], dict[Path, list[str]]]:
    """The paths to lint and, per file, the targets named with `file.py::expression` (on the command
    line, else in the config's `targets`, relative to the config file)."""
    paths: list[Path] = []
    chosen: dict[Path, list[str]] = defaultdict(list)
    for argument in arguments:
        path, expression = split_target_argument(argument)
        if path not in paths:
            paths.append(path)
        if expression is not None:
            chosen[path.resolve()].append(expression)
    base = config.source.parent if config.source is not None else Path.cwd()
    for entry in config.targets:
        path, expression = split_target_argument(entry)
        resolved = (base / path).resolve()
        if expression is not None and resolved not in chosen:
            configured = chosen.setdefault(resolved, [])
            configured.append(expression)
    return paths, dict(chosen)


def _lint_as_script(linter: Linter, path: Path, script: ScriptOptions | None, named: bool) -> bool:
    """Script mode for a training script (nnlint.script): run when named, its definitions when found
    in a folder; False: lint it as a model file. Arguments after `--` say the file is run as a
    script even when its training happens in modules it imports (Informer2020's main_informer.py)."""
    from nnlint.script.detect import is_training_script

    given_arguments = named and script is not None and bool(script.args)
    if not given_arguments and not is_training_script(path):
        return False
    from nnlint.script.lint import ScriptOptions, lint_script  # imported here: model files do not need it

    lint_script(linter, path, script or ScriptOptions(), named)
    return True
