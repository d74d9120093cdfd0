"""How nnlint writes numbers, everywhere: in findings, in the report's chart, in the rule docs."""

from __future__ import annotations


def number(value: float, plain_from: float = 1e-3, plain_below: float = 1e4) -> str:
    """A measured number: 3 significant digits, scientific outside [plain_from, plain_below)."""
    if value != value or value in (float("inf"), float("-inf")):
        return str(value)
    if value == 0 or plain_from <= abs(value) < plain_below:
        return f"{value:.3g}"
    return f"{value:.2e}"


def exact_number(value: float) -> str:
    """A configured number as a user writes it: `16`, `0.001`, `1e-05` (no rounding)."""
    return str(int(value)) if float(value).is_integer() else repr(value)
