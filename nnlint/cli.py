"""The command line: parse, build the config, call the engine, render, exit (docs/architecture.md, "The pipeline")."""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import gc
import io
import json
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import click

from nnlint import __version__
from nnlint.config import Config, find_config_file, load_config, parse_budget, parse_codes, parse_severity, parse_shape, parse_timeout
from nnlint.errors import NnlintError
from nnlint.render import OutputFormat, display_path, render, render_statistics
from nnlint.report import Report

if TYPE_CHECKING:
    from nnlint.script.lint import ScriptOptions

_LINT = "check"


class _LintByDefault(click.Group):
    """`nnlint model.py` means `nnlint check model.py`; `rules` and `explain` are subcommands."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """As a program (`nnlint ...`, the arguments from sys.argv): once every file was linted in
        a child process, this process ran none of the user's code and ends without the
        interpreter's teardown (nnlint/runtime/quick_exit.py). Called with arguments (tests, the
        API), it returns or raises as click does."""
        if args or kwargs:
            return super().__call__(*args, **kwargs)
        try:
            return super().__call__()
        except SystemExit as ending:
            if _linted_in_children_only:
                from nnlint.runtime.quick_exit import exit_without_teardown

                exit_without_teardown(ending.code)
            raise

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        args = _split_script_arguments(ctx, args)
        if args and args[0] not in self.commands and args[0] not in ("--help", "-h", "--version"):
            args = [_LINT, *args]
        return super().parse_args(ctx, args)

    def format_usage(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        formatter.write_usage(ctx.command_path, "[OPTIONS] PATHS...")
        formatter.write_usage(ctx.command_path, "COMMAND [ARGS]...", prefix="       ")

    def format_options(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """The default command's options first: they are what `nnlint model.py` takes."""
        lint = self.commands[_LINT]
        with click.Context(lint, info_name=ctx.info_name, parent=ctx.parent) as lint_ctx:
            options = [param for param in lint.get_params(lint_ctx) if isinstance(param, click.Option) and "--help" not in param.opts]
            rows = [row for param in options if (row := param.get_help_record(lint_ctx))]
        with formatter.section("Lint options (nnlint [OPTIONS] PATHS...)"):
            formatter.write_dl(rows)
        super().format_options(ctx, formatter)


_SCRIPT_ARGUMENTS = "nnlint.script_arguments"
# Set by `_lint` when it linted every file in a child process: then no user code ran here.
_linted_in_children_only = False


def _split_script_arguments(ctx: click.Context, args: list[str]) -> list[str]:
    """`nnlint train.py -- --epochs 1`: what follows `--` is the training script's own argv."""
    if "--" in args:
        at = args.index("--")
        ctx.meta[_SCRIPT_ARGUMENTS] = tuple(args[at + 1 :])
        return args[:at]
    return args


def _script_options(options: dict[str, Any]) -> ScriptOptions | None:
    """The training script's arguments and --script-timeout (script mode); None: the defaults."""
    timeout = options.pop("script_timeout")
    arguments = click.get_current_context().meta.get(_SCRIPT_ARGUMENTS, ())
    if timeout is None and not arguments:
        return None  # the engine uses the defaults; script mode's modules (~40 ms) load only for a script
    from nnlint.script.lint import ScriptOptions
    from nnlint.script.runner import DEFAULT_SCRIPT_TIMEOUT

    return ScriptOptions(arguments, DEFAULT_SCRIPT_TIMEOUT if timeout is None else timeout)


@click.group(cls=_LintByDefault, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="nnlint")
def main() -> None:
    """nnlint: find the mistakes that make a PyTorch model train badly.

    \b
    nnlint model.py            lint a model file (or a folder of them)
    nnlint rules               list the rules
    nnlint explain NN104       document one rule
    """
    _tolerate_unencodable_text()


def _tolerate_unencodable_text() -> None:
    # A lone surrogate (a file name that is not UTF-8, an odd module name) must not crash the report.
    for stream in (sys.stdout, sys.stderr):
        if isinstance(stream, io.TextIOWrapper):
            stream.reconfigure(errors="backslashreplace")


def _shape(ctx: click.Context, param: click.Parameter, value: str | None) -> tuple[int, ...] | None:
    try:
        return parse_shape(value) if value is not None else None
    except ValueError as error:
        raise click.BadParameter(str(error)) from None


def _seconds(ctx: click.Context, param: click.Parameter, value: str | None) -> float | None:
    try:
        return parse_timeout(value) if value is not None else None
    except ValueError as error:
        raise click.BadParameter(str(error)) from None


def _budget(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """Checked here, applied in `_config` (None there means "not given", and "none" is a value)."""
    try:
        parse_budget(value) if value is not None else None
    except ValueError as error:
        raise click.BadParameter(str(error)) from None
    return value


def _codes(ctx: click.Context, param: click.Parameter, value: str | None) -> tuple[str, ...] | None:
    return parse_codes(value) if value is not None else None


def _exit_130_on_interrupt(command: Callable[..., None]) -> Callable[..., None]:
    """Ctrl-C: one line and exit 130 (1 means findings), after the user's state is put back (the
    in-process lint's context managers) or the file's child process is killed."""

    @functools.wraps(command)
    def interruptible(*args: Any, **kwargs: Any) -> None:
        try:
            command(*args, **kwargs)
        except KeyboardInterrupt:
            click.echo("nnlint: interrupted", err=True)
            sys.exit(130)

    return interruptible


@main.command(_LINT)
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--select", callback=_codes, help="Codes or prefixes to check (NN1, NN104, ALL).")
@click.option("--ignore", callback=_codes, help="Codes or prefixes to skip.")
@click.option("--static", is_flag=True, default=None, help="Only the static checks; skip the probe.")
@click.option("--device", help="Probe device: auto, cpu, cuda[:N] (auto: cuda when available).")
@click.option("--probe-timeout", callback=_seconds, help="Stop the forward (graph building, probe) after this many seconds (default 60).")
@click.option(
    "--file-timeout",
    callback=_seconds,
    help="Stop linting a file (import, every forward, the probe) after this many seconds: NN002 (default 900).",
)
@click.option("--probe-steps", type=click.IntRange(min=1), help="Instrumented training steps the probe runs (default 3).")
@click.option(
    "--probe-budget",
    callback=_budget,
    help="Seconds the probe plans its work to fit: fewer steps, samples or optional checks (default 10; none: no budget).",
)
@click.option(
    "--script-timeout",
    callback=_seconds,
    help="Stop a training script that has not reached its first optimizer step after this many seconds (default 600).",
)
@click.option("--deep", is_flag=True, default=None, help="Also run the slower probe checks (NN904: overfit a few samples).")
@click.option("--input-shape", callback=_shape, help="Example input shape when the file gives none, e.g. 32,3,224,224.")
@click.option("--batch-size", type=click.IntRange(min=1), help="The training batch size.")
@click.option("--graph", "graph_method", type=click.Choice(["auto", "fx", "recorded"]), help="How to recover the graph (default auto).")
@click.option("--format", "output_format", type=click.Choice([f.value for f in OutputFormat]), default="text", show_default=True)
@click.option("--output", type=click.Path(dir_okay=False, path_type=Path), help="Write the report to FILE instead of stdout.")
@click.option(
    "--fail-on", type=click.Choice(["error", "warning", "info"]), help="Lowest severity that makes the exit code 1 (default warning)."
)
@click.option(
    "--config",
    "config_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Config file (default: nearest pyproject.toml with [tool.nnlint]).",
)
@click.option("--verbose", is_flag=True, help="Show tracebacks for errors in the user's code.")
@click.option("--statistics", is_flag=True, help="Print how many findings of each code instead of the findings (text or json).")
@click.option(
    "--skip-non-model-files",
    is_flag=True,
    help="Skip named files that do not import torch or define no model, as in a folder (for pre-commit, which names every file).",
)
@click.option("--no-isolation", is_flag=True, help="Lint every file in nnlint's own process instead of one child process each (debugging).")
@click.option(
    "--jobs",
    "-j",
    type=click.IntRange(min=1),
    help="With --static, lint up to N files at once, each in its own child process (default: the CPUs nnlint may use; 1: in turn).",
)
@_exit_130_on_interrupt
def check(
    paths: tuple[Path, ...],
    output_format: str,
    output: Path | None,
    verbose: bool,
    config_file: Path | None,
    statistics: bool,
    skip_non_model_files: bool,
    no_isolation: bool,
    **options: Any,
) -> None:
    """Lint model files or folders of them."""
    fresh_process = "torch" not in sys.modules  # no torch operation can have run here yet
    fmt = OutputFormat(output_format)
    if statistics and fmt not in (OutputFormat.TEXT, OutputFormat.JSON):
        _fail(f"--statistics prints text or json, not {fmt.value}")
    try:
        with _imported_outside_garbage_collection():
            config = _config(list(paths), config_file, options)  # imports the rules, and torch
            from nnlint import engine, isolation  # noqa: F401 - imported here: `nnlint --help` should not wait for torch

        report = _lint(
            list(paths),
            config,
            skip_non_model_files,
            isolated=not no_isolation,
            fresh_process=fresh_process,
            script=_script_options(options),
        )
    except NnlintError as error:
        _fail(str(error))
    if verbose:
        for text in report.tracebacks:
            click.echo(text, err=True)
    color = output is None and sys.stdout.isatty() and fmt is OutputFormat.TEXT
    rendered = render_statistics(report, fmt) if statistics else render(report, fmt, color=color)
    if output is None:
        click.echo(rendered, nl=False)
    else:
        try:
            output.write_text(rendered, encoding="utf-8", errors="backslashreplace")
        except OSError as error:
            _fail(f"{output}: cannot write the report: {error.strerror}")
    for problem in report.problems:
        where = f"{display_path(problem.file)}: " if problem.file else ""
        click.echo(f"nnlint: {where}{problem.message}", err=True)
    sys.exit(report.exit_code)


def _lint(
    paths: list[Path],
    config: Config,
    skip_non_model_files: bool,
    *,
    isolated: bool,
    fresh_process: bool,
    script: ScriptOptions | None = None,
) -> Report:
    """Each file in its own child process (nnlint/isolation.py), or all of them here (--no-isolation)."""
    from nnlint.engine import lint_paths
    from nnlint.isolation import IsolatedFileLinter, isolation_unavailable

    why_not = isolation_unavailable() if isolated else None
    if why_not is not None:
        click.echo(f"nnlint: note: linting in nnlint's own process: {why_not}", err=True)
    if not isolated or why_not is not None:
        return lint_paths(paths, config, skip_non_model_files=skip_non_model_files, script=script)
    # This process is the fork server: it runs no user code, and no parallel torch operation when
    # it imported torch itself (its warm-up lint runs on one thread), so that children may use torch's threads.
    lint_one = IsolatedFileLinter(fresh_process=fresh_process, jobs=_jobs(config))
    lint_all = lint_one.lint_all
    report = lint_paths(paths, config, skip_non_model_files=skip_non_model_files, script=script, lint_one=lint_one, lint_all=lint_all)
    global _linted_in_children_only
    _linted_in_children_only = True
    return report


def _jobs(config: Config) -> int:
    """Files at once (nnlint.isolation.parallel_jobs); a note when --jobs asks for more while the probe runs."""
    from nnlint.isolation import parallel_jobs

    jobs = parallel_jobs(config)
    if config.jobs is not None and config.jobs > jobs:
        click.echo("nnlint: note: the probe times its work, so files are probed one at a time; --static lints them in parallel", err=True)
    return jobs


@main.command("rules")
@click.option(
    "--format",
    "output_format",
    type=click.Choice(["text", "json", "markdown"]),
    default="text",
    show_default=True,
    help="markdown is docs/rules.md.",
)
def rules_command(output_format: str) -> None:
    """List the rules: code, name, severity, phase and summary."""
    from nnlint.docs import catalogue_markdown, rule_summary
    from nnlint.registry import all_rules

    if output_format == "json":
        click.echo(json.dumps([rule_summary(rule) for rule in all_rules()], indent=2, ensure_ascii=False))
    elif output_format == "markdown":
        click.echo(catalogue_markdown(), nl=False)
    else:
        _print_rule_table()


def _print_rule_table() -> None:
    from rich.console import Console
    from rich.table import Table

    from nnlint.registry import all_rules

    table = Table(box=None, header_style="bold", pad_edge=False)
    for column in ("code", "name", "severity", "phase", "summary"):
        table.add_column(column, no_wrap=column != "summary")
    for rule in all_rules():
        table.add_row(rule.code, rule.slug, rule.severity.value, rule.phase.value, rule.summary)
    console = Console(highlight=False)
    if not console.is_terminal:
        console.width = 200  # piped or redirected: one line per rule rather than wrapped summaries
    console.print(table)


@main.command("explain")
@click.argument("code")
def explain_command(code: str) -> None:
    """Print one rule's documentation: what it does, why, an example, the fix, references."""
    from nnlint.docs import UnknownRuleError, find_rule, rule_markdown

    try:
        rule = find_rule(code)
    except UnknownRuleError as error:
        _fail(str(error))
    text = rule_markdown(rule)
    if sys.stdout.isatty():
        from rich.console import Console
        from rich.markdown import Markdown

        Console().print(Markdown(text))
    else:
        click.echo(text, nl=False)


@main.command("watch", context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False})
@click.argument("script", type=click.Path(path_type=Path))
@click.argument("script_args", nargs=-1, type=click.UNPROCESSED)
@click.option("--select", callback=_codes, help="Codes or prefixes to check (NN6, NN601, ALL).")
@click.option("--ignore", callback=_codes, help="Codes or prefixes to skip.")
@click.option("--format", "output_format", type=click.Choice([f.value for f in OutputFormat]), default="text", show_default=True)
@click.option("--output", type=click.Path(dir_okay=False, path_type=Path), help="Write the report to FILE instead of stdout.")
@click.option("--html", type=click.Path(dir_okay=False, path_type=Path), help="Also write a self-contained HTML report with plots.")
@click.option("--sample-every", type=click.IntRange(min=1), default=20, show_default=True, help="Steps between per-layer measurements.")
@click.option(
    "--fail-on", type=click.Choice(["error", "warning", "info"]), help="Lowest severity that makes the exit code 1 (default warning)."
)
@click.option(
    "--config", "config_file", type=click.Path(dir_okay=False, path_type=Path), help="Config file (default: nearest pyproject.toml)."
)
@click.option("--verbose", is_flag=True, help="Show the script's traceback when it crashes.")
def watch_command(
    script: Path,
    script_args: tuple[str, ...],
    output_format: str,
    output: Path | None,
    html: Path | None,
    sample_every: int,
    config_file: Path | None,
    verbose: bool,
    **options: Any,
) -> None:
    """Run a training script to its end, watch it, and explain the run (NN6).

    \b
    nnlint watch train.py -- --epochs 10 --lr 0.1
    """
    try:
        config = load_config(config_file if config_file is not None else find_config_file(script.resolve().parent))
        fail_on = options["fail_on"]
        severity = parse_severity(fail_on) if fail_on else None
        config = config.with_overrides(select=options["select"], ignore=options["ignore"], fail_on=severity)
    except NnlintError as error:
        _fail(str(error))
    from nnlint.watch.command import WatchOptions, watch_script

    watch_options = WatchOptions(OutputFormat(output_format), output, html, sample_every, verbose)
    # `nnlint watch train.py -- --epochs 3`: the group set aside what follows `--` (_split_script_arguments).
    arguments = [*script_args, *click.get_current_context().meta.get(_SCRIPT_ARGUMENTS, ())]
    sys.exit(watch_script(script, arguments, config, watch_options))


@contextlib.contextmanager
def _imported_outside_garbage_collection() -> Iterator[None]:
    """Import torch and nnlint with the cyclic garbage collector paused, then freeze what they made.

    torch leaves about 170,000 objects behind; every full collection afterwards would walk them all
    again (importing rich took 85 ms instead of 13 ms). Frozen, they are skipped until the command
    ends and unfreezes them (for a caller that goes on in this process: tests, CliRunner). Nothing
    the user's code makes is frozen: the collector runs as usual from here on.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        click.get_current_context().call_on_close(gc.unfreeze)
        if was_enabled:
            gc.enable()


def _config(paths: list[Path], config_file: Path | None, options: dict[str, Any]) -> Config:
    source = config_file if config_file is not None else find_config_file(_common_folder(paths))
    config = load_config(source)
    fail_on = options.pop("fail_on")
    config = config.with_overrides(
        select=options["select"],
        ignore=options["ignore"],
        static=options["static"],
        device=options["device"],
        input_shape=options["input_shape"],
        batch_size=options["batch_size"],
        graph=options["graph_method"],
        probe_timeout=options["probe_timeout"],
        file_timeout=options["file_timeout"],
        jobs=options["jobs"],
        probe_steps=options["probe_steps"],
        deep=options["deep"],
        fail_on=parse_severity(fail_on) if fail_on else None,
    )
    return _with_budget(config, options["probe_budget"])


def _with_budget(config: Config, value: str | None) -> Config:
    """`--probe-budget`, applied on its own: "none" turns the budget off (None elsewhere means "not given")."""
    return config if value is None else dataclasses.replace(config, probe_budget=parse_budget(value))


def _common_folder(paths: list[Path]) -> Path:
    # `model.py::GPT(...)` is the file's folder: a long expression is no path to stat (ENAMETOOLONG).
    paths = [Path(str(path).partition("::")[0]) if "::" in str(path) else path for path in paths]
    folders = [(path if path.is_dir() else path.parent).resolve() for path in paths]
    common = folders[0]
    for folder in folders[1:]:
        while not folder.is_relative_to(common):
            common = common.parent
    return common


def _fail(message: str) -> NoReturn:
    click.echo(f"nnlint: {message}", err=True)
    sys.exit(2)
