"""SARIF, GitHub annotations and JUnit XML: each parsed and checked field by field against the
findings the fixtures mark next to their lines, and against a module name built to break them."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path
from urllib.parse import unquote, urljoin
from urllib.request import url2pathname

import jsonschema
import numpy as np
import pytest
from expectations import FIXTURES, ROOT, expected_findings

from nnlint.config import Config
from nnlint.docs import rule_markdown
from nnlint.engine import lint_paths
from nnlint.findings import Finding, GraphMethod, Phase, Severity
from nnlint.registry import DOC_SECTIONS, all_rules
from nnlint.render import OutputFormat, render
from nnlint.report import Report, TargetReport

DATA = Path(__file__).parent / "data"


def _sarif_schema() -> dict:
    schema = json.loads((DATA / "sarif-schema-2.1.0.json").read_text(encoding="utf-8"))
    # This copy keeps the log object's schema under definitions.Root, which nothing references:
    # used as is, it would accept any document. Validate the log against Root.
    if "properties" not in schema:
        schema = {**schema, "$ref": "#/definitions/Root"}
    return schema


SARIF_VALIDATOR = jsonschema.Draft7Validator(_sarif_schema(), format_checker=jsonschema.Draft7Validator.FORMAT_CHECKER)

# Between them: error (NN002, NN105 at batch size 1), warning and info (NN001) findings, and a path that does not exist.
FORMAT_FIXTURES = ["nn104_bias_before_batchnorm", "nn003_suppressions", "nn002_shape_mismatch", "nn101_cell_loop", "nn105_batch_of_one"]
MISSING = "fixtures/does_not_exist.py"
BIASED_FIXTURE = FIXTURES / "nn104_bias_before_batchnorm.py"


@pytest.fixture(autouse=True)
def _in_repository_root(monkeypatch):
    monkeypatch.chdir(ROOT)  # paths in reports are relative to the working directory


@pytest.fixture(scope="module")
def report() -> Report:
    paths = [FIXTURES / f"{name}.py" for name in FORMAT_FIXTURES]
    return lint_paths([path.relative_to(ROOT) for path in paths] + [Path(MISSING)], Config())


@pytest.fixture(scope="module")
def marked() -> Counter[tuple[str, str, int]]:
    """(code, path, line) of every finding the fixtures mark: what each format must carry."""
    found: Counter[tuple[str, str, int]] = Counter()
    for name in FORMAT_FIXTURES:
        found.update({(code, f"fixtures/{name}.py", line): n for (code, line), n in expected_findings(FIXTURES / f"{name}.py").items()})
    return found


def test_the_fixture_report_has_every_severity_and_a_load_problem(report, marked):
    assert {finding.severity for finding in report.findings} == set(Severity)
    assert [problem.file for problem in report.problems] == [MISSING]
    assert sum(marked.values()) == len(report.findings)


# -- SARIF ---------------------------------------------------------------------------------------


def sarif_of(report: Report) -> dict:
    document = json.loads(render(report, OutputFormat.SARIF))
    errors = sorted(SARIF_VALIDATOR.iter_errors(document), key=lambda e: list(e.absolute_path))
    assert not errors, "\n".join(f"{list(e.absolute_path)}: {e.message}" for e in errors)
    # The OASIS schema also requires these (anyOf constraints this copy lacks).
    for run in document["runs"]:
        for item in [*run["results"], *(n for i in run["invocations"] for n in i["toolExecutionNotifications"])]:
            assert item["message"].get("text")
            for location in item.get("locations", []):
                physical = location.get("physicalLocation")
                assert physical is None or "artifactLocation" in physical
                assert physical is None or "region" not in physical or physical["region"].get("startLine", 0) >= 1
    return document


def test_the_sarif_schema_rejects_what_it_should():
    broken = {
        "version": "2.1.0",
        "runs": [{"tool": {"driver": {"name": "nnlint"}}, "results": [{"message": {"text": "m"}, "level": "info"}]}],
    }
    assert [e.message for e in SARIF_VALIDATOR.iter_errors(broken)] == ["'info' is not one of ['none', 'note', 'warning', 'error']"]
    assert list(SARIF_VALIDATOR.iter_errors({"runs": []}))  # no version


def test_sarif_is_valid_against_the_official_schema_with_one_run(report):
    document = sarif_of(report)
    assert document["version"] == "2.1.0"
    assert len(document["runs"]) == 1


def test_sarif_driver_carries_every_rule_with_its_documentation(report):
    driver = sarif_of(report)["runs"][0]["tool"]["driver"]
    assert driver["name"] == "nnlint"
    rules = all_rules()
    assert [entry["id"] for entry in driver["rules"]] == [rule.code for rule in rules]
    for entry, rule in zip(driver["rules"], rules, strict=True):
        assert entry["name"] == rule.slug
        assert entry["shortDescription"]["text"] == rule.summary
        assert rule.sections["What it does"] in entry["fullDescription"]["text"]
        assert rule.sections["Why is this bad?"] in entry["fullDescription"]["text"]
        assert entry["help"]["text"] == rule.doc
        assert entry["help"]["markdown"] == rule_markdown(rule, level=2)
        assert all(f"### {section}" in entry["help"]["markdown"] for section in DOC_SECTIONS)
        assert entry["defaultConfiguration"]["level"] == {"error": "error", "warning": "warning", "info": "note"}[rule.severity.value]


def test_sarif_results_are_the_marked_findings_at_their_construction_lines(report, marked):
    run = sarif_of(report)["runs"][0]
    base = run["originalUriBaseIds"]["%SRCROOT%"]["uri"]
    assert base.endswith("/") and Path(url2pathname(base.removeprefix("file://"))) == ROOT
    located = Counter()
    for result in run["results"]:
        (location,) = result["locations"]
        artifact = location["physicalLocation"]["artifactLocation"]
        assert artifact["uriBaseId"] == "%SRCROOT%"
        assert (ROOT / unquote(artifact["uri"])).is_file()  # the URI resolves to the real file
        located[result["ruleId"], unquote(artifact["uri"]), location["physicalLocation"]["region"]["startLine"]] += 1
        assert run["tool"]["driver"]["rules"][result["ruleIndex"]]["id"] == result["ruleId"]
    assert located == marked


def test_sarif_levels_messages_and_modules_match_the_findings(report):
    results = sarif_of(report)["runs"][0]["results"]
    assert len(results) == len(report.findings)
    levels = {Severity.ERROR: "error", Severity.WARNING: "warning", Severity.INFO: "note"}
    for result, finding in zip(results, report.findings, strict=True):
        assert result["ruleId"] == finding.code
        assert result["level"] == levels[finding.severity]
        assert result["message"]["text"].startswith(finding.message)
        assert result["properties"]["fix"] == finding.fix
        logical = result["locations"][0].get("logicalLocations")
        assert (logical[0]["fullyQualifiedName"] if logical else None) == finding.module
    assert {result["level"] for result in results} == {"error", "warning", "note"}


def test_sarif_reports_files_that_could_not_be_linted_as_notifications(report):
    (invocation,) = sarif_of(report)["runs"][0]["invocations"]
    assert invocation["executionSuccessful"] is False
    (notification,) = invocation["toolExecutionNotifications"]
    assert notification["level"] == "error"
    assert unquote(notification["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]) == MISSING


def test_sarif_uses_file_uris_outside_the_working_directory(report, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    run = sarif_of(report)["runs"][0]
    uris = {result["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] for result in run["results"]}
    assert all(uri.startswith("file:///") for uri in uris)
    assert {Path(url2pathname(unquote(uri.removeprefix("file://")))) for uri in uris} == {
        (FIXTURES / f"{name}.py").resolve() for name in FORMAT_FIXTURES
    }
    assert all("uriBaseId" not in result["locations"][0]["physicalLocation"]["artifactLocation"] for result in run["results"])


def test_sarif_fingerprints_do_not_change_when_lines_move(report):
    results = sarif_of(report)["runs"][0]["results"]
    prints = [result["partialFingerprints"]["nnlint/v1"] for result in results]
    assert len(set(prints)) == len(prints)


# -- GitHub workflow commands --------------------------------------------------------------------

_COMMAND = re.compile(r"^::(?P<command>error|warning|notice)(?: (?P<properties>[^:]*))?::(?P<message>.*)$")


def unescape(text: str) -> str:
    return re.sub("%(25|0D|0A|3A|2C)", lambda m: {"25": "%", "0D": "\r", "0A": "\n", "3A": ":", "2C": ","}[m.group(1)], text)


def parse_commands(output: str) -> list[tuple[str, dict[str, str], str]]:
    commands = []
    for line in output.splitlines():
        match = _COMMAND.match(line)
        assert match, f"not a workflow command: {line!r}"
        properties = dict(item.split("=", 1) for item in match["properties"].split(",")) if match["properties"] else {}
        commands.append((match["command"], {key: unescape(value) for key, value in properties.items()}, unescape(match["message"])))
    return commands


def test_github_annotations_are_the_marked_findings(report, marked):
    output = render(report, OutputFormat.GITHUB)
    commands = parse_commands(output)
    findings = [c for c in commands if c[1].get("title", "").startswith("NN")]
    assert Counter((props["title"].split()[0], props["file"], int(props["line"])) for _, props, _ in findings) == marked
    kinds = {Severity.ERROR: "error", Severity.WARNING: "warning", Severity.INFO: "notice"}
    for (command, props, message), finding in zip(findings, report.findings, strict=True):
        assert command == kinds[finding.severity]
        assert props["title"] == f"{finding.code} {finding.name}"
        assert message == f"{finding.message}\nfix: {finding.fix}"


def test_github_annotates_files_that_could_not_be_linted(report):
    problems = [c for c in parse_commands(render(report, OutputFormat.GITHUB)) if not c[1].get("title", "").startswith("NN")]
    assert problems == [("error", {"file": MISSING, "title": "nnlint: not linted"}, "no such file or directory")]


# -- JUnit XML -----------------------------------------------------------------------------------


def test_junit_has_one_case_per_finding_and_one_per_target(report, marked):
    root = ET.fromstring(render(report, OutputFormat.JUNIT))
    assert root.tag == "testsuites"
    (suite,) = root.findall("testsuite")
    cases = suite.findall("testcase")
    # Each target's own case, in file order, followed by one case per finding of that target.
    target_cases = [case for case in cases if case.get("name") in {target.name for target in report.targets}]
    assert [(case.get("classname"), case.get("name")) for case in target_cases] == [
        (f"fixtures/{name}.py", target.name) for name, target in zip(FORMAT_FIXTURES, report.targets, strict=True)
    ]
    reported = Counter()
    position = 0
    for target in report.targets:
        assert cases[position].get("name") == target.name and not [c for c in cases[position] if c.tag in ("failure", "error")]
        finding_cases = cases[position + 1 : position + 1 + len(target.findings)]
        position += 1 + len(target.findings)
        for case, finding in zip(finding_cases, target.findings, strict=True):
            assert case.get("name").startswith(f"{target.name}: {finding.code} {finding.name}")
            outcomes = [child for child in case if child.tag in ("failure", "error")]
            if finding.severity.rank >= report.fail_on.rank:
                (outcome,) = outcomes  # exactly one outcome per case: viewers show only the first
                assert outcome.tag == ("error" if finding.code == "NN002" else "failure")
                assert outcome.get("type") == finding.code
                assert outcome.get("message") == f"{finding.code} {finding.name}: {finding.message}"
                details = outcome.text
            else:  # info findings are listed, but do not fail their case
                assert outcomes == []
                details = case.find("system-out").text
            assert finding.message in details
            path, line = details.splitlines()[0].split(": ")[0].rsplit(":", 1)
            reported[finding.code, path, int(line)] += 1
    assert reported == marked


def test_junit_counts_and_load_errors(report):
    suite = ET.fromstring(render(report, OutputFormat.JUNIT)).find("testsuite")
    cases = suite.findall("testcase")
    (missing,) = [case for case in cases if case.get("classname") == MISSING]
    assert missing.find("error").get("message") == "no such file or directory"
    failed = [case for case in cases if case.find("failure") is not None]
    errored = [case for case in cases if case.find("error") is not None]
    findings = sum(len(target.findings) for target in report.targets)
    assert suite.get("tests") == str(len(report.targets) + findings + len(report.problems)) == str(len(cases))
    assert suite.get("failures") == str(len(failed)) and suite.get("errors") == str(len(errored))
    # A target that could not be linted (NN002) and a file that could not be loaded are errors, not failures.
    assert sorted(case.get("classname") for case in errored) == [MISSING, "fixtures/nn002_shape_mismatch.py"]


def test_a_clean_model_is_a_passing_case():
    clean = lint_paths([Path("fixtures/clean_resnet.py")], Config())
    (case,) = ET.fromstring(render(clean, OutputFormat.JUNIT)).iter("testcase")
    assert case.find("failure") is None and case.find("error") is None
    assert json.loads(render(clean, OutputFormat.SARIF))["runs"][0]["results"] == []
    assert render(clean, OutputFormat.GITHUB) == ""


# -- a module name and a file name built to break every format -----------------------------------


@pytest.fixture(scope="module")
def hostile(tmp_path_factory) -> tuple[Path, Report]:
    folder = tmp_path_factory.mktemp("hostile")
    path = folder / "we,ird:na%me 1.py"
    shutil.copy(DATA / "hostile_model.py", path)
    return path, lint_paths([path], Config())


def test_the_hostile_model_yields_one_finding_with_the_hostile_name(hostile):
    _, report = hostile
    (finding,) = report.findings
    assert finding.code == "NN104" and "\r\n<tag" in finding.module and finding.module in finding.message


def test_github_escapes_the_hostile_message_and_file(hostile, monkeypatch):
    path, report = hostile
    monkeypatch.chdir(path.parent)
    output = render(report, OutputFormat.GITHUB)
    assert output.count("\n") == 1 and "\r" not in output  # one command, one line
    ((command, props, message),) = parse_commands(output)
    (finding,) = report.findings
    assert command == "warning"
    assert props == {"file": path.name, "line": "15", "title": "NN104 bias-before-batchnorm"}
    assert message == f"{finding.message}\nfix: {finding.fix}"


def test_sarif_carries_the_hostile_message_and_file(hostile, monkeypatch):
    path, report = hostile
    monkeypatch.chdir(path.parent)
    (result,) = sarif_of(report)["runs"][0]["results"]
    (finding,) = report.findings
    assert result["message"]["text"] == f"{finding.message}\nFix: {finding.fix}"
    artifact = result["locations"][0]["physicalLocation"]["artifactLocation"]
    base = sarif_of(report)["runs"][0]["originalUriBaseIds"]["%SRCROOT%"]["uri"]
    assert Path(url2pathname(unquote(urljoin(base, artifact["uri"]).removeprefix("file://")))) == path.resolve()


def test_junit_is_well_formed_despite_the_hostile_message(hostile):
    _, report = hostile
    (finding,) = report.findings
    failure = ET.fromstring(render(report, OutputFormat.JUNIT)).find(".//failure")
    # Markup, quotes and newlines survive; characters XML 1.0 cannot carry are spelled out.
    expected = finding.message.replace("\x1b", "\\x1b").replace("\x00", "\\x00").replace("\ud800", "\\ud800")
    assert failure.get("message") == f"NN104 bias-before-batchnorm: {expected}"


@pytest.mark.parametrize("output_format", [f.value for f in OutputFormat])
def test_the_cli_writes_the_hostile_report_without_crashing(hostile, output_format):
    path, _ = hostile
    result = subprocess.run(
        [sys.executable, "-m", "nnlint", path.name, "--format", output_format],
        cwd=path.parent,
        capture_output=True,
        check=False,
    )
    assert result.returncode == 1, result.stderr.decode(errors="replace")
    assert b"bias-before-batchnorm" in result.stdout and result.stderr == b""


# -- findings nnlint could not place, and evidence that is not plain JSON ------------------------


def _strict_json(text: str) -> dict:
    def reject(constant: str) -> None:
        raise ValueError(f"not JSON: {constant}")

    return json.loads(text, parse_constant=reject)


@pytest.fixture
def unplaced() -> Report:
    finding = Finding(
        "NN104",
        "bias-before-batchnorm",
        Severity.WARNING,
        Phase.STATIC,
        "a message",
        module="features.0",
        evidence={"nan": float("nan"), "inf": float("-inf"), "count": np.int64(3), "ratio": np.float32(0.5), "shape": (2, 3)},
    )
    target = TargetReport("model", str(BIASED_FIXTURE), GraphMethod.FX, None, (finding,))
    return Report((target,))


def test_unplaced_findings_go_on_the_target_file(unplaced):
    (result,) = sarif_of(unplaced)["runs"][0]["results"]
    physical = result["locations"][0]["physicalLocation"]
    assert (physical["artifactLocation"]["uri"], physical["region"]["startLine"]) == ("fixtures/nn104_bias_before_batchnorm.py", 1)
    (command,) = parse_commands(render(unplaced, OutputFormat.GITHUB))
    assert command[1] == {"file": "fixtures/nn104_bias_before_batchnorm.py", "title": "NN104 bias-before-batchnorm"}


@pytest.mark.parametrize("output_format", [OutputFormat.JSON, OutputFormat.SARIF])
def test_evidence_is_strict_json(unplaced, output_format):
    document = _strict_json(render(unplaced, output_format))
    if output_format is OutputFormat.JSON:
        evidence = document["targets"][0]["findings"][0]["evidence"]
    else:
        evidence = document["runs"][0]["results"][0]["properties"]["evidence"]
    assert evidence == {"nan": "nan", "inf": "-inf", "count": 3, "ratio": 0.5, "shape": [2, 3]}
