"""Configuration: `[tool.nnlint]` in the nearest pyproject.toml, overridden by command-line options."""

from __future__ import annotations

import ast
import dataclasses
import fnmatch
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from nnlint.errors import ConfigError
from nnlint.findings import Severity
from nnlint.registry import Rule, all_rules, expand_codes

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

# NN002 (a target could not be linted) is reported even when not selected, so that a broken
# model never passes silently; `ignore` can still turn it off.
ALWAYS_SELECTED = frozenset({"NN002"})


@dataclass(frozen=True)
class Config:
    select: tuple[str, ...] = ("ALL",)
    ignore: tuple[str, ...] = ()
    fail_on: Severity = Severity.WARNING
    per_module_ignores: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    thresholds: Mapping[str, Mapping[str, float]] = field(default_factory=dict)  # by code
    static: bool = False
    device: str = "auto"
    input_shape: tuple[int, ...] | None = None
    batch_size: int | None = None
    graph: str = "auto"  # "auto", "fx" or "recorded"
    probe_timeout: float = 60.0  # seconds; building the graph or probing longer stops with NN002
    probe_steps: int = 3  # instrumented training steps
    # seconds the probe plans its work to fit (fewer steps, samples or optional checks); None: no budget
    probe_budget: float | None = 10.0
    deep: bool = False  # opt-in probe checks that cost more (NN904)
    targets: tuple[str, ...] = ()  # `file.py::expression` entries, files relative to the config file
    # seconds; the whole lint of one file (import, every target, every forward), after which its
    # child process is killed and the file is NN002. Generous: it must leave room for the limits
    # inside it (--probe-timeout per forward; a training script's own, 600 s by default).
    file_timeout: float = 900.0
    # files linted at once, each in its own child process, with --static (nnlint.isolation.parallel_jobs);
    # None: as many as the CPUs this process may use
    jobs: int | None = None
    source: Path | None = None  # the file the settings were read from

    def __post_init__(self) -> None:
        try:
            self.enabled_codes  # noqa: B018 - validates select and ignore early
            for codes in self.per_module_ignores.values():
                expand_codes(codes)
        except ValueError as error:
            raise ConfigError(f"{self._origin()}{error}") from None

    def _origin(self) -> str:
        return f"{self.source}: " if self.source else ""

    @cached_property
    def enabled_codes(self) -> frozenset[str]:
        return frozenset((expand_codes(self.select) | ALWAYS_SELECTED) - expand_codes(self.ignore))

    def is_enabled(self, code: str) -> bool:
        return code in self.enabled_codes

    def ignored_for_module(self, code: str, module: str | None) -> bool:
        if module is None:
            return False
        return any(
            fnmatch.fnmatchcase(module, pattern) and code in expand_codes(codes) for pattern, codes in self.per_module_ignores.items()
        )

    def thresholds_for(self, rule: Rule) -> dict[str, float]:
        return {**rule.thresholds, **self.thresholds.get(rule.code, {})}

    def with_overrides(self, **overrides: Any) -> Config:
        """A copy with the given settings replaced; `None` means "not given"."""
        given = {key: value for key, value in overrides.items() if value is not None}
        return dataclasses.replace(self, **given)


_KEYS = {
    "select": "select",
    "ignore": "ignore",
    "fail-on": "fail_on",
    "per-module-ignores": "per_module_ignores",
    "thresholds": "thresholds",
    "static": "static",
    "device": "device",
    "input-shape": "input_shape",
    "batch-size": "batch_size",
    "probe-timeout": "probe_timeout",
    "probe-steps": "probe_steps",
    "probe-budget": "probe_budget",
    "deep": "deep",
    "targets": "targets",
    "file-timeout": "file_timeout",
    "jobs": "jobs",
}


def find_config_file(start: Path) -> Path | None:
    """The nearest pyproject.toml at or above `start` that has a `[tool.nnlint]` table."""
    directory = start if start.is_dir() else start.parent
    for folder in [directory, *directory.parents]:
        candidate = folder / "pyproject.toml"
        if candidate.is_file() and _nnlint_table(_read_toml(candidate)) is not None:
            return candidate
    return None


def load_config(path: Path | None) -> Config:
    """Settings from a pyproject.toml's `[tool.nnlint]` (or a standalone TOML file's top level)."""
    if path is None:
        return Config()
    if not path.is_file():
        raise ConfigError(f"{path}: config file not found")
    document = _read_toml(path)
    table = _nnlint_table(document)
    if table is None:
        table = {} if path.name == "pyproject.toml" else document
    return config_from_table(table, path)


def _nnlint_table(document: Mapping[str, Any]) -> Any:
    """`[tool.nnlint]`, or None; whatever its type, so that config_from_table can name a bad one."""
    tool = document.get("tool")
    return tool.get("nnlint") if isinstance(tool, Mapping) else None


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(f"{path}: cannot read: {error}") from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{path}: invalid TOML: {error}") from None


def config_from_table(table: Mapping[str, Any], path: Path | None = None) -> Config:
    origin = f"{path}: " if path else ""
    if not isinstance(table, Mapping):
        raise ConfigError(f"{origin}[tool.nnlint] must be a table of settings, got {table!r}")
    settings: dict[str, Any] = {"source": path}
    for key, value in table.items():
        if key not in _KEYS:
            raise ConfigError(f"{origin}[tool.nnlint] unknown key {key!r} (known: {', '.join(sorted(_KEYS))})")
        try:
            settings[_KEYS[key]] = _PARSERS[key](value)
        except (TypeError, ValueError) as error:
            raise ConfigError(f"{origin}[tool.nnlint] {key}: {error}") from None
    return Config(**settings)


def parse_codes(value: str | Iterable[str]) -> tuple[str, ...]:
    """`"NN1,NN104"` or `["NN1", "NN104"]` -> ("NN1", "NN104"); codes are checked by Config."""
    if not isinstance(value, (str, list, tuple)):
        raise TypeError(f'expected rule codes as a list such as ["NN1", "NN104"], got {value!r}')
    items = value.split(",") if isinstance(value, str) else list(value)
    if not all(isinstance(item, str) for item in items):
        raise TypeError("expected rule codes as strings")
    return tuple(item.strip().upper() for item in items if item.strip())


def parse_severity(value: str) -> Severity:
    try:
        return Severity(str(value).lower())
    except ValueError:
        raise ValueError(f"expected one of error, warning, info; got {value!r}") from None


def parse_shape(value: str | Iterable[int]) -> tuple[int, ...]:
    """`"32,3,224,224"` -> (32, 3, 224, 224)."""
    parts = value.replace("x", ",").split(",") if isinstance(value, str) else list(value)
    try:
        shape = tuple(int(str(part).strip()) for part in parts)
    except ValueError:
        raise ValueError(f"expected comma-separated positive integers such as 32,3,224,224; got {value!r}") from None
    if not shape or any(size <= 0 or size >= 2**63 for size in shape):  # torch sizes are 64-bit
        raise ValueError(f"expected comma-separated positive integers such as 32,3,224,224; got {value!r}")
    return shape


def _parse_positive_int(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f"expected a positive integer, got {value!r}")
    return value


def parse_timeout(value: Any) -> float:
    """Seconds, a positive number."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise ValueError(f"expected a positive number of seconds, got {value!r}")
    try:
        seconds = float(value)
    except ValueError:
        raise ValueError(f"expected a positive number of seconds, got {value!r}") from None
    if not seconds > 0 or seconds == float("inf"):
        raise ValueError(f"expected a positive number of seconds, got {value!r}")
    return seconds


def parse_budget(value: Any) -> float | None:
    """Seconds, a positive number; "none" (or "off") for no budget: the probe's full fixed workload."""
    if isinstance(value, str) and value.strip().lower() in ("none", "off"):
        return None
    try:
        return parse_timeout(value)
    except ValueError:
        raise ValueError(f'expected a positive number of seconds or "none", got {value!r}') from None


def _parse_bool(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"expected true or false, got {value!r}")
    return value


def parse_targets(value: Any) -> tuple[str, ...]:
    """`["model.py::GPT(GPTConfig(n_layer=2))", "resnet.py::ResNet18"]`: each a file and a Python expression."""
    if not isinstance(value, (list, tuple)) or not all(isinstance(entry, str) for entry in value):
        raise TypeError(f'expected a list of "file.py::expression" strings, got {value!r}')
    for entry in value:
        file, separator, expression = entry.partition("::")
        if not separator or not file.endswith(".py") or not expression.strip():
            raise ValueError(f'expected "file.py::expression" (e.g. "model.py::GPT(GPTConfig())"), got {entry!r}')
        try:
            ast.parse(expression.strip(), mode="eval")
        except SyntaxError as error:
            raise ValueError(f"{entry!r}: not a Python expression ({error.msg})") from None
    return tuple(value)


def _parse_device(value: Any) -> str:
    text = str(value)
    if text not in ("auto", "cpu") and not text.startswith("cuda"):
        raise ValueError(f"expected auto, cpu or cuda[:N], got {value!r}")
    return text


def _parse_module_ignores(value: Any) -> dict[str, tuple[str, ...]]:
    if not isinstance(value, Mapping):
        raise TypeError("expected a table of module-path globs to lists of codes")
    return {str(pattern): parse_codes(codes) for pattern, codes in value.items()}


def _parse_thresholds(value: Any) -> dict[str, dict[str, float]]:
    if not isinstance(value, Mapping):
        raise TypeError("expected a table of rule codes to tables of thresholds")
    by_code = {r.code: r for r in all_rules()} | {r.slug: r for r in all_rules()}
    parsed: dict[str, dict[str, float]] = {}
    for key, overrides in value.items():
        rule = by_code.get(str(key).upper()) or by_code.get(str(key))
        if rule is None:
            raise ValueError(f"unknown rule {key!r}")
        if not isinstance(overrides, Mapping):
            raise TypeError(f"{key}: expected a table such as {{ {next(iter(rule.thresholds), 'name')} = 1 }}")
        for name, number in overrides.items():
            if name not in rule.thresholds:
                known = ", ".join(rule.thresholds) or "none"
                raise ValueError(f"{rule.code} has no threshold {name!r} (known: {known})")
            if isinstance(number, bool) or not isinstance(number, (int, float)):
                raise ValueError(f"{rule.code}.{name}: expected a number, got {number!r}")
        parsed[rule.code] = {name: float(number) for name, number in overrides.items()}
    return parsed


_PARSERS = {
    "select": parse_codes,
    "ignore": parse_codes,
    "fail-on": parse_severity,
    "per-module-ignores": _parse_module_ignores,
    "thresholds": _parse_thresholds,
    "static": _parse_bool,
    "device": _parse_device,
    "input-shape": parse_shape,
    "batch-size": _parse_positive_int,
    "probe-timeout": parse_timeout,
    "probe-steps": _parse_positive_int,
    "probe-budget": parse_budget,
    "deep": _parse_bool,
    "targets": parse_targets,
    "file-timeout": parse_timeout,
    "jobs": _parse_positive_int,
}
