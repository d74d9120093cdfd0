"""The pre-commit hook, end to end: the real `pre-commit` from PyPI installs this checkout's hook
(`.pre-commit-hooks.yaml`, `language: python`) into a repository; a commit of a buggy model is
blocked with the finding, and goes through once the model is fixed.

Slow (it builds the hook's environment, torch included: about a minute); `-m "not slow"` skips it.
Skipped when git is missing or pre-commit cannot be installed.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from expectations import FIXTURES, ROOT

pytestmark = pytest.mark.slow

BIASED = FIXTURES / "nn104_bias_before_batchnorm.py"  # NN104 at lines 12 and 18
# What `pip install .` needs from this checkout, and the hook's manifest.
_NOT_PACKAGED = shutil.ignore_patterns(
    ".git", "tests", "fixtures", "bench", "docs", "__pycache__", "*.egg-info", "build", "dist", ".*cache", ".venv", "venv"
)


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    folder = tmp_path_factory.mktemp("pre-commit")
    yield folder
    # The hook's environment holds a copy of torch (about 1 GB, 15,000 files). Deleting it right
    # after pip wrote it waits on the disk (78 s measured here); let a detached `rm` do it instead.
    rm = shutil.which("rm")
    if rm is None:
        shutil.rmtree(folder, ignore_errors=True)
    else:
        subprocess.Popen([rm, "-rf", str(folder)], start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


@pytest.fixture(scope="module")
def env(workspace: Path) -> dict[str, str]:
    """Git with a known identity and no user config; pre-commit's cache inside the workspace."""
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    gitconfig = workspace / "gitconfig"
    gitconfig.write_text("[user]\n\tname = nnlint test\n\temail = test@example.invalid\n[init]\n\tdefaultBranch = main\n")
    # The hook's environment must get the torch already installed here, not whatever build is newest.
    constraints = workspace / "constraints.txt"
    constraints.write_text(f"torch=={torch.__version__.split('+')[0]}\n")
    return {
        **{key: value for key, value in os.environ.items() if not key.startswith(("GIT_", "PRE_COMMIT", "VIRTUAL_ENV"))},
        "GIT_CONFIG_GLOBAL": str(gitconfig),
        "GIT_CONFIG_NOSYSTEM": "1",
        "PRE_COMMIT_HOME": str(workspace / "cache"),
        "PIP_CONSTRAINT": str(constraints),
        "PIP_NO_COMPILE": "1",  # no .pyc for all of torch: less to write, and to delete afterwards
    }


@pytest.fixture(scope="module")
def pre_commit(workspace: Path, env: dict[str, str]) -> str:
    """The real pre-commit, installed from PyPI into a virtual environment of its own."""
    venv = workspace / "venv"
    python = venv / ("Scripts" if os.name == "nt" else "bin") / "python"
    try:
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, capture_output=True, timeout=300)
        subprocess.run(
            [str(python), "-m", "pip", "install", "--quiet", "pre-commit"], check=True, capture_output=True, timeout=600, env=env
        )
    except (OSError, subprocess.CalledProcessError, subprocess.TimeoutExpired) as error:
        detail = getattr(error, "stderr", b"") or b""
        pytest.skip(f"pre-commit could not be installed: {error} {detail.decode(errors='replace')[-300:]}")
    return str(python.parent / "pre-commit")


def run(command: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=600, check=False)


def git(cwd: Path, env: dict[str, str], *args: str) -> str:
    result = run(["git", *args], cwd, env)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


@pytest.fixture(scope="module")
def hook_repo(workspace: Path, env: dict[str, str]) -> tuple[Path, str]:
    """This checkout as pre-commit would clone it: a git repository at a commit."""
    repo = workspace / "nnlint-hook"
    shutil.copytree(ROOT, repo, ignore=_NOT_PACKAGED)
    git(repo, env, "init", "--quiet")
    git(repo, env, "add", "--all")
    git(repo, env, "commit", "--quiet", "--message", "nnlint as a pre-commit hook")
    return repo, git(repo, env, "rev-parse", "HEAD")


def test_the_hook_manifest_is_valid(pre_commit, env):
    result = run([pre_commit, "validate-manifest", str(ROOT / ".pre-commit-hooks.yaml")], ROOT, env)
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_commit_with_a_buggy_model_is_blocked_then_passes_once_fixed(pre_commit, env, hook_repo, workspace):
    hook_path, rev = hook_repo
    project = workspace / "project"
    project.mkdir()
    git(project, env, "init", "--quiet")
    (project / ".pre-commit-config.yaml").write_text(f"repos:\n  - repo: {hook_path}\n    rev: {rev}\n    hooks:\n      - id: nnlint\n")
    installed = run([pre_commit, "install"], project, env)
    assert installed.returncode == 0, installed.stdout + installed.stderr

    model = project / "model.py"
    model.write_text(BIASED.read_text())
    (project / "helpers.py").write_text("def double(x):\n    return 2 * x\n")  # no model: the hook skips it
    git(project, env, "add", "--all")
    blocked = run(["git", "commit", "--message", "add a model"], project, env)
    output = blocked.stdout + blocked.stderr
    assert blocked.returncode != 0, output
    assert re.search(r"^nnlint\.+Failed$", output, flags=re.MULTILINE)
    assert "model.py:12  NN104 warning  bias-before-batchnorm" in output
    assert "model.py:18  NN104 warning  bias-before-batchnorm" in output
    assert "helpers.py" not in output
    assert run(["git", "rev-parse", "--verify", "HEAD"], project, env).returncode != 0  # nothing was committed

    fixed = BIASED.read_text().replace("nn.Conv2d(3, 32, 3, padding=1)", "nn.Conv2d(3, 32, 3, padding=1, bias=False)")
    model.write_text(fixed.replace("nn.Linear(32, 64)", "nn.Linear(32, 64, bias=False)"))
    git(project, env, "add", "--all")
    passed = run(["git", "commit", "--message", "add a model"], project, env)
    assert passed.returncode == 0, passed.stdout + passed.stderr
    assert re.search(r"^nnlint\.+Passed$", passed.stdout + passed.stderr, flags=re.MULTILINE)
    assert git(project, env, "log", "--format=%s") == "add a model"
