"""`nnlint.audit(model, example_input) -> Report`: the API a project's own tests call."""

from __future__ import annotations

import copy
import io
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from expectations import expected_findings, found_findings
from torch import nn

import nnlint
from nnlint.findings import Finding, Severity

DATA = Path(__file__).parent / "data"
sys.path.insert(0, str(DATA))

import api_models  # noqa: E402  (tests/data is not a package)

IMAGES = torch.randn(32, 3, 8, 8)


def test_audit_finds_the_marked_findings_at_their_construction_lines():
    report = nnlint.audit(api_models.BiasedNet(), IMAGES)
    marked = expected_findings(DATA / "api_models.py")
    assert found_findings(report) == marked
    (finding,) = report.findings
    assert isinstance(finding, Finding)
    assert finding.module == "features.0"
    assert Path(finding.location.file) == DATA / "api_models.py"
    assert report.targets[0].name == "BiasedNet"


def test_a_clean_model_is_ok_and_raise_for_returns_the_report():
    report = nnlint.audit(api_models.CleanNet(), IMAGES)
    assert report.ok
    assert report.findings == [] and report.errors == [] and report.warnings == []
    assert report.raise_for("warning") is report
    assert report.raise_for("info") is report


def test_raise_for_raises_exactly_at_or_above_the_severity():
    report = nnlint.audit(api_models.BiasedNet(), IMAGES)  # one warning
    assert not report.ok
    assert report.warnings == report.findings and report.errors == []
    assert report.raise_for("error") is report
    assert report.raise_for(Severity.ERROR) is report
    for severity in ("warning", Severity.WARNING, "info", "INFO"):
        with pytest.raises(nnlint.LintError) as raised:
            report.raise_for(severity)
        assert raised.value.findings == report.findings
    message = str(raised.value)
    assert message.splitlines()[0] == "nnlint: 1 finding"
    assert "NN104 warning bias-before-batchnorm [features.0]" in message
    assert f"{DATA / 'api_models.py'}:15" in message


def test_raise_for_lists_every_finding_and_is_an_assertion_error():
    # Two findings: a biased Linear before BatchNorm, and a batch of 2 for BatchNorm.
    report = nnlint.audit(nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8)), torch.randn(2, 4))
    assert sorted(f.code for f in report.warnings) == ["NN104", "NN105"]
    with pytest.raises(AssertionError) as raised:
        report.raise_for()  # default: warning
    assert isinstance(raised.value, nnlint.LintError)
    lines = str(raised.value).splitlines()
    assert lines[0] == "nnlint: 2 findings"
    assert [line.split()[0] for line in lines[1:] if not line.startswith("    fix: ")] == ["NN104", "NN105"]
    assert [line for line in lines if line.startswith("    fix: ")] == [f"    fix: {f.fix}" for f in report.findings]


def test_an_error_finding_is_in_errors_and_fails_raise_for_error():
    mlp = nn.Sequential(nn.Linear(8, 16, bias=False), nn.BatchNorm1d(16), nn.ReLU(), nn.Linear(16, 2))
    report = nnlint.audit(mlp, torch.randn(1, 8))  # batch of one into BatchNorm1d on (N, C): NN105 error
    assert [f.code for f in report.errors] == ["NN105"]
    with pytest.raises(nnlint.LintError):
        report.raise_for("error")


def test_a_model_whose_forward_fails_is_an_error_naming_the_module():
    report = nnlint.audit(api_models.BrokenNet(), torch.randn(4, 3, 32, 32))
    assert found_findings(report) == {("NN002", _line_of("self.head = nn.Linear(100, 10)")): 1}
    (finding,) = report.errors
    assert finding.module == "head" and "mat1 and mat2" in finding.message
    assert report.exit_code == 2 and not report.ok
    with pytest.raises(nnlint.LintError):
        report.raise_for("error")


def test_without_an_example_input_one_is_inferred():
    report = nnlint.audit(api_models.BiasedNet())
    assert [f.code for f in report.findings] == ["NN104"]
    assert any("inferred" in note for note in report.targets[0].notes)


def test_batch_size_enables_the_batch_size_rules():
    report = nnlint.audit(api_models.CleanNet(), IMAGES, batch_size=4)
    assert [f.code for f in report.findings] == ["NN105"]


def test_select_and_ignore_take_codes_prefixes_strings_and_lists():
    assert nnlint.audit(api_models.BiasedNet(), IMAGES, ignore="NN104").findings == []
    assert nnlint.audit(api_models.BiasedNet(), IMAGES, ignore=["NN1"]).findings == []
    assert nnlint.audit(api_models.BiasedNet(), IMAGES, select="NN103").findings == []
    assert [f.code for f in nnlint.audit(api_models.BiasedNet(), IMAGES, select=["NN1"]).findings] == ["NN104"]
    assert [f.code for f in nnlint.audit(api_models.BiasedNet(), IMAGES, select="ALL").findings] == ["NN104"]


def test_bad_arguments_raise_clear_errors():
    with pytest.raises(ValueError, match="NN999"):
        nnlint.audit(api_models.CleanNet(), IMAGES, select="NN999")
    with pytest.raises(TypeError, match="torch.nn.Module"):
        nnlint.audit(lambda x: x, IMAGES)  # type: ignore[arg-type]
    for bad in (0, -1, "soon", True):
        with pytest.raises(ValueError, match="probe_timeout: expected a positive number of seconds"):
            nnlint.audit(api_models.CleanNet(), IMAGES, probe_timeout=bad)


def test_probe_and_device_reach_the_engine_config(monkeypatch):
    import nnlint.api

    seen = []

    class RecordingLinter(nnlint.api.Linter):
        def __init__(self, config):
            seen.append(config)
            super().__init__(config)

    monkeypatch.setattr(nnlint.api, "Linter", RecordingLinter)
    nnlint.audit(api_models.CleanNet(), IMAGES, probe=False, device="cpu")
    nnlint.audit(api_models.CleanNet(), IMAGES)
    nnlint.audit(api_models.CleanNet(), IMAGES, probe_timeout=5)
    assert [(c.static, c.device, c.probe_timeout) for c in seen] == [(True, "cpu", 60.0), (False, "auto", 60.0), (False, "auto", 5.0)]


class _SlowInTraining(nn.Module):
    """Instant in evaluation (the graph), a long sleep per training step (the probe)."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 2)

    def forward(self, x):
        if self.training:
            time.sleep(5)
        return self.fc(x)


def test_probe_timeout_stops_a_slow_probe_with_nn002_and_keeps_the_static_findings():
    start = time.perf_counter()
    report = nnlint.audit(_SlowInTraining(), torch.randn(16, 4), probe_timeout=0.5)
    assert time.perf_counter() - start < 4
    (finding,) = report.findings
    assert finding.code == "NN002" and "did not finish within 0.5 s" in finding.message


def test_the_model_is_left_exactly_as_it_was():
    model = api_models.BiasedNet().train()
    model.features[1].eval()  # mixed modes must survive
    state = copy.deepcopy(model.state_dict())
    modes = [m.training for m in model.modules()]
    nnlint.audit(model, IMAGES)
    assert [m.training for m in model.modules()] == modes
    after = model.state_dict()
    assert state.keys() == after.keys() and all(torch.equal(state[k], after[k]) for k in state)


def test_to_json_is_the_cli_json_report():
    report = nnlint.audit(api_models.BiasedNet(), IMAGES)
    document = json.loads(report.to_json())
    (target,) = document["targets"]
    assert target["name"] == "BiasedNet"
    assert [(f["code"], f["module"], f["location"]["line"]) for f in target["findings"]] == [("NN104", "features.0", 15)]
    assert document["summary"] == {"warning": 1, "exit_code": 1}


def test_print_writes_the_text_report():
    out = io.StringIO()
    nnlint.audit(api_models.BiasedNet(), IMAGES).print(file=out)
    text = out.getvalue()
    assert "NN104 warning  bias-before-batchnorm  [features.0]" in text
    assert "Found 1 finding (1 warning) in 1 target." in text
    assert "\x1b[" not in text  # not a terminal: no color codes


def test_the_public_api_is_exported_and_importing_nnlint_does_not_import_torch():
    assert {"audit", "Report", "LintError", "Target"} <= set(nnlint.__all__)
    assert nnlint.Report is type(nnlint.audit(api_models.CleanNet(), IMAGES))
    probe = "import sys, nnlint, nnlint.cli; assert 'torch' not in sys.modules, 'torch imported'; print('ok')"
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=False)
    assert result.stdout.strip() == "ok", result.stderr


def test_the_package_is_typed():
    assert (Path(nnlint.__file__).parent / "py.typed").is_file()


def _line_of(text: str) -> int:
    lines = (DATA / "api_models.py").read_text().splitlines()
    return next(number for number, line in enumerate(lines, start=1) if text in line)
