"""On generated models (tests/strategies.py), nnlint never crashes, never changes the model, the
loss, the inputs or the process, never flaps, and finds the same things on the FX graph as on the
recorded one. The models include hostile but working code (strategies.HAZARDS: inputs and weights
written in place, checkpointed layers, process-wide settings changed in forward or at import) and
forwards that call sys.exit() or raise GeneratorExit (NN002, never the end of the run).

The default run checks a few dozen models, the same ones every time (derandomized, so CI does
not flap either); `NNLINT_FUZZ_EXAMPLES=1000 pytest tests/test_fuzz.py` runs the long campaign
with fresh random models. `lint` uses the default configuration, so whatever nnlint runs by
default (the probe, once it lands) is held to the same invariants.
"""

from __future__ import annotations

import importlib.util
import itertools
import json
import os
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import jsonschema
from click.testing import CliRunner
from expectations import ROOT
from hypothesis import HealthCheck, event, given, note, settings
from hypothesis import strategies as st
from invariants import Snapshot, process_state, same_structure
from strategies import ModelProgram, model_programs

from nnlint.cli import main
from nnlint.config import Config
from nnlint.engine import Linter
from nnlint.loader import LoadedTarget, loaded_model_file
from nnlint.report import Report
from nnlint.runtime.state import preserved_process_state
from nnlint.targets import RESERVED_NAMES, Target

EXAMPLES = int(os.environ.get("NNLINT_FUZZ_EXAMPLES", "40"))
CAMPAIGN = "NNLINT_FUZZ_EXAMPLES" in os.environ
SCHEMA = json.loads((ROOT / "docs" / "report.schema.json").read_text())

fuzz = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=not CAMPAIGN,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

# Two ways in: the CLI's (nnlint imports the file and finds the targets) and the API's (the user
# built the model; nnlint gets the object, with no construction sites recorded).
ROUTES = st.sampled_from(["loader", "api"])
_imported = itertools.count()


@contextmanager
def loaded_targets(program: ModelProgram, route: str) -> Iterator[list[LoadedTarget]]:
    note(program.source)
    for feature in sorted(program.features):
        event(feature)
    with tempfile.TemporaryDirectory() as folder:
        path = program.write(Path(folder))
        if route == "loader":
            before = process_state()
            with loaded_model_file(path) as loaded:
                yield loaded.targets
            # What the file set at import (default dtype, working directory) held while its targets
            # were linted, and must not leak into the next file.
            assert same_structure(before, process_state()), f"the file's import leaked: {_changed(before, process_state())}"
        else:
            # The user imported the file: what it set at import is the user's doing, undone here
            # only so that it does not leak into the next example.
            with preserved_process_state():
                yield [_built_by_the_user(path)]


def _changed(before: dict[str, object], after: dict[str, object]) -> list[str]:
    return [key for key in before if not same_structure(before[key], after[key])]


def _built_by_the_user(path: Path) -> LoadedTarget:
    name = f"_fuzzed_by_user_{next(_imported)}"
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    namespace = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(namespace)
    finally:
        sys.modules.pop(name, None)
    model = namespace.model if hasattr(namespace, "model") else namespace.Net()
    extras = {key: getattr(namespace, key) for key in RESERVED_NAMES if hasattr(namespace, key)}
    return LoadedTarget(Target(model, **extras), "model", path, None)


def lint(loaded: LoadedTarget, **settings: object) -> Report:
    linter = Linter(Config(**settings))  # type: ignore[arg-type]
    linter.lint(loaded)
    return linter.report()


def assert_lintable(program: ModelProgram, report: Report) -> None:
    """A report, never an internal error; NN002 only where the model is broken on purpose."""
    assert not report.problems, report.problems
    for finding in report.findings:
        assert "\n" not in finding.message, finding.message
    unusable = [f.message for f in report.findings if f.code == "NN002"]
    if program.fault in ("raises", "returns_none", "returns_number", "exits"):
        assert unusable, f"a forward that {program.fault.replace('_', ' ')} was linted as if it worked"
    elif program.fault is None and program.example_given:
        assert not unusable, unusable
    elif program.fault is None:
        assert all("cannot infer an input" in message for message in unusable), unusable


def snapshot(loaded: LoadedTarget) -> Snapshot:
    target = loaded.target
    return Snapshot.take(target.model, target.optimizer, loss_fn=target.loss_fn, inputs=(target.example_input, target.example_batch))


def assert_unchanged(before: Snapshot, loaded: LoadedTarget) -> None:
    changes = before.differences(snapshot(loaded))
    assert not changes, f"linting changed the model: {changes}"


def _difference(traced: Report, recorded: Report) -> str:
    only_fx = [f for f in traced.findings if f not in recorded.findings]
    only_recorded = [f for f in recorded.findings if f not in traced.findings]
    return f"only on the FX graph: {only_fx}; only on the recorded graph: {only_recorded}"


@fuzz
@given(program=model_programs(), route=ROUTES)
def test_lint_never_crashes_never_changes_the_model_and_never_flaps(program, route):
    with loaded_targets(program, route) as targets:
        for loaded in targets:
            before = snapshot(loaded)
            first = lint(loaded)
            assert_unchanged(before, loaded)
            second = lint(loaded)
            assert_unchanged(before, loaded)
            assert_lintable(program, first)
            # Compared as the JSON users read, where NaN (a measurement of a NaN batch) equals NaN.
            assert second.to_json() == first.to_json(), "a second run gave another report"


@fuzz
@given(program=model_programs(faults=False, hazards=False), route=ROUTES)
def test_fx_and_recorded_graphs_give_the_same_findings(program, route):
    with loaded_targets(program, route) as targets:
        for loaded in targets:
            before = snapshot(loaded)
            traced = lint(loaded, graph="fx")
            if any(f.code == "NN002" and "torch.fx:" in f.message for f in traced.findings):
                event("torch.fx could not trace it")
                continue
            recorded = lint(loaded, graph="recorded")
            assert_unchanged(before, loaded)
            assert (traced.targets[0].graph, recorded.targets[0].graph) in (("fx", "recorded"), (None, None))
            assert recorded.findings == traced.findings, _difference(traced, recorded)


@settings(fuzz, max_examples=max(EXAMPLES // 5, 5))
@given(program=model_programs())
def test_cli_json_stays_parseable_and_agrees_with_the_exit_code(program):
    note(program.source)
    with tempfile.TemporaryDirectory() as folder:
        path = program.write(Path(folder))
        result = CliRunner().invoke(main, ["--format", "json", str(path)])
    report = json.loads(result.stdout)
    jsonschema.validate(report, SCHEMA)
    findings = [f for target in report["targets"] for f in target["findings"]]
    unusable = report["errors"] or any(f["code"] == "NN002" for f in findings)
    failing = any(f["severity"] in ("error", "warning") for f in findings)  # the default --fail-on warning
    assert result.exit_code == report["summary"]["exit_code"] == (2 if unusable else 1 if failing else 0)
    assert "Traceback" not in result.stderr
    assert all(line.startswith("nnlint: ") for line in result.stderr.splitlines() if line != "building the model...")
