"""`--format junit`: JUnit XML, for CI test reports (GitLab, Jenkins, Azure, test-reporter actions).

One test case per finding (many viewers show only the first failure of a case), in a class named
after its file: a finding at or above `--fail-on` fails its case (`<failure>`; a target that could
not be linted, NN002, is an `<error>`), one below it passes with its details in `<system-out>`.
Each target also has a passing case named after it, carrying its notes and skipped checks, so a
clean model shows as one passing test. A file that could not be loaded is an `<error>` case.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

from nnlint.findings import Finding
from nnlint.render.common import display_path
from nnlint.report import UNUSABLE_TARGET, Problem, Report, TargetReport

# XML 1.0 cannot carry these characters even escaped (control characters, lone surrogates).
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def render(report: Report) -> str:
    suite = ET.Element("testsuite", name="nnlint")
    for target in report.targets:
        suite.append(_target_case(target))
        suite.extend(_finding_case(target, finding, report) for finding in target.findings)
    for problem in report.problems:
        suite.append(_problem_case(problem))
    cases = list(suite)
    counts = {
        "tests": str(len(cases)),
        "failures": str(sum(1 for case in cases if case.find("failure") is not None)),
        "errors": str(sum(1 for case in cases if case.find("error") is not None)),
        "skipped": "0",
    }
    suite.attrib.update(counts)
    suites = ET.Element("testsuites", name="nnlint", tests=counts["tests"], failures=counts["failures"], errors=counts["errors"])
    suites.append(suite)
    ET.indent(suites)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(suites, encoding="unicode") + "\n"


def _target_case(target: TargetReport) -> ET.Element:
    """The target itself: it was linted (its findings are cases of their own)."""
    case = _case(target, target.name)
    lines = [f"note: {note}" for note in target.notes]
    lines += [f"skipped {', '.join(skipped.codes)}: {skipped.reason}" for skipped in target.skipped]
    if lines:
        case.append(_element("system-out", "\n\n".join(lines)))
    return case


def _finding_case(target: TargetReport, finding: Finding, report: Report) -> ET.Element:
    module = f" [{finding.module}]" if finding.module else ""
    line = f" (line {finding.location.line})" if finding.location else ""
    case = _case(target, f"{target.name}: {finding.code} {finding.name}{module}{line}")
    if finding.code == UNUSABLE_TARGET:
        case.append(_element("error", _details(finding), message=_headline(finding), type=finding.code))
    elif finding.severity.rank >= report.fail_on.rank:
        case.append(_element("failure", _details(finding), message=_headline(finding), type=finding.code))
    else:
        case.append(_element("system-out", _details(finding)))  # below --fail-on: listed, passing
    return case


def _case(target: TargetReport, name: str) -> ET.Element:
    case = _element("testcase", classname=display_path(target.file) or "nnlint", name=name)
    if target.file:
        case.set("file", _xml_text(display_path(target.file) or ""))
    return case


def _problem_case(problem: Problem) -> ET.Element:
    case = _element("testcase", classname=display_path(problem.file) or "nnlint", name="(could not be linted)")
    case.append(_element("error", problem.message, message=problem.message, type="load-error"))
    return case


def _headline(finding: Finding) -> str:
    return f"{finding.code} {finding.name}: {finding.message}"


def _details(finding: Finding) -> str:
    where = f"{display_path(finding.location.file)}:{finding.location.line}" if finding.location else "-"
    module = f" [{finding.module}]" if finding.module else ""
    lines = [f"{where}: {finding.code} {finding.severity.value} {finding.name}{module}", finding.message]
    if finding.fix:
        lines.append(f"fix: {finding.fix}")
    return "\n".join(lines)


def _element(tag: str, text: str | None = None, **attributes: str) -> ET.Element:
    element = ET.Element(tag, {key: _xml_text(value) for key, value in attributes.items()})
    if text is not None:
        element.text = _xml_text(text)
    return element


def _xml_text(text: str) -> str:
    """ElementTree escapes markup (`<`, `&`, quotes, newlines in attributes) but not these."""
    return _NOT_XML.sub(lambda match: ascii(match.group())[1:-1], text)
