"""Errors nnlint reports to the user as one line and exit code 2 (never a bare traceback)."""

from __future__ import annotations


class NnlintError(Exception):
    """A problem with what the user gave nnlint: a path, a file, the configuration, an option."""


class ConfigError(NnlintError):
    pass


class LoadError(NnlintError):
    """A model file could not be imported, or holds no model."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"{path}: {message}")
        self.path = path
        self.message = message


class NoModelError(LoadError):
    """A file imported fine but defines nothing to lint (skipped quietly when found in a folder)."""
