"""Small text charts of a series (one character per point), for messages and the text report."""

from __future__ import annotations

import math
from collections.abc import Sequence

_BARS = "▁▂▃▄▅▆▇█"


def resample(values: Sequence[float], width: int) -> list[float]:
    """`width` points: the mean of each of `width` equal slices (every value when there are fewer)."""
    if len(values) <= width:
        return list(values)
    out = []
    for i in range(width):
        start, end = i * len(values) // width, max((i + 1) * len(values) // width, i * len(values) // width + 1)
        chunk = [v for v in values[start:end] if math.isfinite(v)]
        out.append(sum(chunk) / len(chunk) if chunk else math.nan)
    return out


def sparkline(values: Sequence[float], width: int = 40, *, log: bool = False) -> str:
    """`▁▂▅█…` from low to high; `×` marks a non-finite point. Log scale for positive series when `log`."""
    points = resample(values, width)
    scaled = [math.log10(v) if log and v > 0 else (v if not log else math.nan) for v in points]
    finite = [v for v in scaled if math.isfinite(v)]
    if not finite:
        return "×" * len(points)
    low, high = min(finite), max(finite)
    span = high - low
    if span <= 1e-9 * max(abs(low), abs(high)):
        span = 0.0  # a constant series whose slice means differ in the last bits is flat
    chars = []
    for value in scaled:
        if not math.isfinite(value):
            chars.append("×")
        else:
            chars.append(_BARS[int((value - low) / span * (len(_BARS) - 1)) if span > 0 else 0])
    return "".join(chars)
