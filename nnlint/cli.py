"""The command line: parse, build the config, call the engine, render, exit (DESIGN.md, "CLI")."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from nnlint import __version__
from nnlint.config import Config, find_config_file, load_config, parse_codes, parse_severity, parse_shape
from nnlint.errors import NnlintError
from nnlint.render import OutputFormat, display_path, render

_LINT = "check"


class _LintByDefault(click.Group):
    """`nnlint model.py` means `nnlint check model.py`; `rules` and `explain` are subcommands."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ("--help", "-h", "--version"):
            args = [_LINT, *args]
        return super().parse_args(ctx, args)


@click.group(cls=_LintByDefault, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="nnlint")
def main() -> None:
    """nnlint: find the mistakes that make a PyTorch model train badly.

    \b
    nnlint model.py            lint a model file (or a folder of them)
    nnlint rules               list the rules
    nnlint explain NN104       document one rule
    """


def _shape(ctx: click.Context, param: click.Parameter, value: str | None) -> tuple[int, ...] | None:
    try:
        return parse_shape(value) if value is not None else None
    except ValueError as error:
        raise click.BadParameter(str(error)) from None


def _codes(ctx: click.Context, param: click.Parameter, value: str | None) -> tuple[str, ...] | None:
    return parse_codes(value) if value is not None else None


@main.command(_LINT)
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--select", callback=_codes, help="Codes or prefixes to check (NN1, NN104, ALL).")
@click.option("--ignore", callback=_codes, help="Codes or prefixes to skip.")
@click.option("--static", is_flag=True, default=None, help="Only the static checks; skip the probe.")
@click.option("--device", help="Probe device: auto, cpu, cuda[:N] (auto: cuda when available).")
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
def check(
    paths: tuple[Path, ...], output_format: str, output: Path | None, verbose: bool, config_file: Path | None, **options: Any
) -> None:
    """Lint model files or folders of them."""
    try:
        config = _config(list(paths), config_file, options)
        from nnlint.engine import lint_paths  # imported here: `nnlint --help` should not wait for torch

        report = lint_paths(list(paths), config)
    except NnlintError as error:
        _fail(str(error))
    if verbose:
        for text in report.tracebacks:
            click.echo(text, err=True)
    fmt = OutputFormat(output_format)
    if output is None:
        click.echo(render(report, fmt, color=sys.stdout.isatty() and fmt is OutputFormat.TEXT), nl=False)
    else:
        try:
            output.write_text(render(report, fmt), encoding="utf-8")
        except OSError as error:
            _fail(f"{output}: cannot write the report: {error.strerror}")
    for problem in report.problems:
        where = f"{display_path(problem.file)}: " if problem.file else ""
        click.echo(f"nnlint: {where}{problem.message}", err=True)
    sys.exit(report.exit_code)


def _config(paths: list[Path], config_file: Path | None, options: dict[str, Any]) -> Config:
    source = config_file if config_file is not None else find_config_file(_common_folder(paths))
    config = load_config(source)
    fail_on = options.pop("fail_on")
    return config.with_overrides(
        select=options["select"],
        ignore=options["ignore"],
        static=options["static"],
        device=options["device"],
        input_shape=options["input_shape"],
        batch_size=options["batch_size"],
        graph=options["graph_method"],
        fail_on=parse_severity(fail_on) if fail_on else None,
    )


def _common_folder(paths: list[Path]) -> Path:
    folders = [(path if path.is_dir() else path.parent).resolve() for path in paths]
    common = folders[0]
    for folder in folders[1:]:
        while not folder.is_relative_to(common):
            common = common.parent
    return common


def _fail(message: str) -> None:
    click.echo(f"nnlint: {message}", err=True)
    sys.exit(2)
