"""Probe work is gated by typed measurements: rules declare the `Measure`s they read, the engine asks
the probe for their union, and the probe never knows a rule code."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch
from torch import nn

import nnlint.probe
from nnlint.findings import Phase
from nnlint.measures import Measure
from nnlint.registry import all_rules, rule, rules_by_code

PROBE_PACKAGE = Path(nnlint.probe.__file__).parent


def test_no_probe_module_mentions_a_rule_code():
    mentions = [
        f"{path.name}:{number}: {line.strip()}"
        for path in sorted(PROBE_PACKAGE.glob("*.py"))
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if re.search(r"NN\d{3}", line)
    ]
    assert mentions == []


def test_a_misspelled_measure_fails_where_the_rule_is_declared():
    with pytest.raises(AttributeError):
        Measure.TRAIN_EVAL_GAPP  # noqa: B018 - the typo a rule author could make


def test_a_probe_rule_requires_the_probe_without_saying_so():
    for registered in all_rules():
        if registered.phase is Phase.PROBE:
            assert "probe" in registered.requires and "graph" not in registered.requires, registered.code
        elif registered.phase is Phase.WATCH:  # the training run's rules read the recorded run, no graph
            assert "run" in registered.requires and "graph" not in registered.requires, registered.code
        elif registered.check is not None:
            assert "graph" in registered.requires and "probe" not in registered.requires, registered.code


def test_rules_declare_the_measurements_they_read():
    rules = rules_by_code()
    assert rules["NN901"].needs == {Measure.EVAL_DETERMINISM}
    assert rules["NN902"].needs == {Measure.TRAIN_EVAL_GAP}
    assert rules["NN904"].needs == {Measure.OVERFIT}
    assert rules["NN905"].needs == {Measure.UPDATE_RATIOS}
    assert rules["NN906"].needs == {Measure.SAMPLE_MIXING}
    # A static rule whose finding the probe measures names what its evidence hook reads.
    assert rules["NN105"].needs == {Measure.BATCHNORM_SPREAD} and rules["NN105"].probe_evidence is not None
    # Every measurement is read by some rule: none is taken for nobody.
    assert set().union(*(r.needs for r in all_rules())) == set(Measure)


def test_only_a_static_rule_gets_probe_evidence():
    def documented(graph, context):
        """Doc.

        ## What it does
        x
        """
        return iter(())

    with pytest.raises(ValueError, match="only a static rule"):
        rule("NN999", "x", rules_by_code()["NN901"].severity, phase=Phase.PROBE, probe_evidence=lambda f, p: f)(documented)


def test_the_probe_takes_only_the_measurements_asked_for():
    from nnlint.probe import ProbeSettings, run_probe
    from nnlint.targets import Target

    model = nn.Sequential(nn.Linear(4, 8), nn.Dropout(0.2), nn.ReLU(), nn.Linear(8, 2))
    only_gap = run_probe(model, torch.randn(16, 4), Target(model), ProbeSettings(measures=frozenset({Measure.TRAIN_EVAL_GAP})))
    assert only_gap.train_eval is not None and only_gap.determinism is None and only_gap.mixing is None
    only_mixing = run_probe(model, torch.randn(16, 4), Target(model), ProbeSettings(measures=frozenset({Measure.SAMPLE_MIXING})))
    assert only_mixing.mixing is not None and only_mixing.train_eval is None and only_mixing.determinism is None


def test_a_note_about_a_measurement_names_the_rules_that_read_it():
    import nnlint

    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
    elsewhere = torch.optim.SGD(nn.Linear(2, 2).parameters(), lr=0.1)
    report = nnlint.audit(model, torch.randn(16, 4), optimizer=elsewhere)
    assert "probe: NN905: the optimizer was not stepped: it updates none of this model's parameters" in report.targets[0].notes
