"""`--format junit`: JUnit XML, for CI test reports (GitLab, Jenkins, Azure, test-reporter actions).

One test case per target, named after it, in a class named after its file. A finding at or
above `--fail-on` is a `<failure>` (one per finding); a target that could not be linted (NN002)
and a file that could not be loaded are `<error>`s; findings below `--fail-on`, notes and
skipped checks go to the case's `<system-out>`. The case passes exactly when the exit code
would be 0 for it alone.
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
        suite.append(_target_case(target, report))
    for problem in report.problems:
        suite.append(_problem_case(problem))
    cases = list(suite)
    counts = {
        "tests": str(len(cases)),
        "failures": str(sum(1 for case in cases if case.find("failure") is not None and case.find("error") is None)),
        "errors": str(sum(1 for case in cases if case.find("error") is not None)),
        "skipped": "0",
    }
    suite.attrib.update(counts)
    suites = ET.Element("testsuites", name="nnlint", tests=counts["tests"], failures=counts["failures"], errors=counts["errors"])
    suites.append(suite)
    ET.indent(suites)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(suites, encoding="unicode") + "\n"


def _target_case(target: TargetReport, report: Report) -> ET.Element:
    case = _element("testcase", classname=display_path(target.file) or "nnlint", name=target.name)
    if target.file:
        case.set("file", _xml_text(display_path(target.file) or ""))
    below: list[str] = []
    for finding in target.findings:
        if finding.code == UNUSABLE_TARGET:
            case.append(_element("error", _details(finding), message=_headline(finding), type=finding.code))
        elif finding.severity.rank >= report.fail_on.rank:
            case.append(_element("failure", _details(finding), message=_headline(finding), type=finding.code))
        else:
            below.append(_details(finding))
    below += [f"note: {note}" for note in target.notes]
    below += [f"skipped {', '.join(skipped.codes)}: {skipped.reason}" for skipped in target.skipped]
    if below:
        case.append(_element("system-out", "\n\n".join(below)))
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
