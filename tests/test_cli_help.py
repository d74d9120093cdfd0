"""`nnlint --help` is what a new user reads first: it shows the options of `nnlint model.py` (the
default command) as well as the subcommands."""

from __future__ import annotations

from click.testing import CliRunner

from nnlint.cli import main


def test_top_level_help_lists_the_lint_options_and_the_subcommands():
    result = CliRunner().invoke(main, ["--help"], prog_name="nnlint")
    assert result.exit_code == 0
    assert result.stdout.startswith("Usage: nnlint [OPTIONS] PATHS...\n       nnlint COMMAND [ARGS]...\n")
    lint_section = result.stdout.split("Lint options (nnlint [OPTIONS] PATHS...):\n", 1)[1].split("\nOptions:\n", 1)[0]
    for option in ("--select", "--ignore", "--static", "--format", "--output", "--fail-on", "--input-shape", "--config"):
        assert f"  {option} " in lint_section, option
    assert "--help" not in lint_section  # once, under Options
    commands = result.stdout.split("\nCommands:\n", 1)[1]
    assert [line.split()[0] for line in commands.splitlines() if line.strip()] == ["check", "explain", "rules", "watch"]


def test_the_lint_options_shown_are_the_ones_that_work_without_the_subcommand(tmp_path):
    helper = tmp_path / "helpers.py"
    helper.write_text("def scale(x):\n    return 2 * x\n")
    result = CliRunner().invoke(main, ["--static", "--skip-non-model-files", "--format", "json", str(helper)])
    assert result.exit_code == 0, result.output
