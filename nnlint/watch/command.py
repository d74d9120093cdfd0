"""`nnlint watch train.py [-- ARGS]`: run the whole script under a watch and report when it ends.

The exit code is the script's when it failed (its own code, 1 for an exception, 130 for Ctrl-C),
else the report's (0 clean, 1 findings at or above --fail-on), and 2 when nothing was trained.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

from nnlint.config import Config
from nnlint.render import OutputFormat, render
from nnlint.watch.runner import run_script, script_problem
from nnlint.watch.session import Watch

NOTHING_TRAINED = 2


@dataclass(frozen=True)
class WatchOptions:
    output_format: OutputFormat = OutputFormat.TEXT
    output: Path | None = None
    html: Path | None = None
    sample_every: int = 20
    verbose: bool = False


def watch_script(script: Path, args: list[str], config: Config, options: WatchOptions) -> int:
    problem = script_problem(script)
    if problem is not None:
        print(f"nnlint: {problem}", file=sys.stderr)
        return 2
    watch = Watch(sample_every=options.sample_every, config=config, print_to=None, script=str(script.resolve()))
    # The script's own output still reaches the user, on stderr: stdout carries the report.
    with watch:
        ended = run_script(script, args)
        crash = ended.crash
        report = watch.finish(crash=crash, interrupted=ended.interrupted)
    if options.verbose and ended.traceback:
        sys.stderr.write(ended.traceback)
    if not watch.is_reporting_process:
        return ended.code
    if not watch.trained:
        print(f"nnlint: {script}: no torch optimizer stepped: nothing was trained that nnlint can watch", file=sys.stderr)
        if crash:
            print(f"nnlint: the script crashed: {crash}", file=sys.stderr)
        return ended.code or NOTHING_TRAINED
    color = options.output is None and sys.stdout.isatty() and options.output_format is OutputFormat.TEXT
    rendered = render(report, options.output_format, color=color)
    if options.output is None:
        sys.stdout.write(rendered)
        sys.stdout.flush()
    else:
        options.output.write_text(rendered, encoding="utf-8", errors="backslashreplace")
    if options.html is not None:
        from nnlint.render.html import render_html

        options.html.write_text(render_html(report), encoding="utf-8")
    if crash:
        print(f"nnlint: the script crashed: {crash}", file=sys.stderr)
    elif ended.interrupted:
        print("nnlint: interrupted (Ctrl-C): the report covers the steps that ran", file=sys.stderr)
    return ended.code or report.exit_code
