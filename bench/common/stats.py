"""Small statistics helpers for benchmarks (no numpy needed)."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0-100) with linear interpolation; NaN for no values."""
    if not values:
        return math.nan
    data = sorted(values)
    if len(data) == 1:
        return float(data[0])
    pos = (len(data) - 1) * q / 100.0
    lo = math.floor(pos)
    hi = min(lo + 1, len(data) - 1)
    return float(data[lo] + (data[hi] - data[lo]) * (pos - lo))


def median(values: Iterable[float]) -> float:
    """Median ignoring NaN; NaN when nothing is left."""
    data = [v for v in values if not math.isnan(v)]
    return percentile(data, 50) if data else math.nan


def spread(values: Iterable[float]) -> float:
    """(max - min) / median of the finite values: the run-to-run noise of one cell; NaN when undefined."""
    data = [v for v in values if not math.isnan(v)]
    if len(data) < 2:
        return math.nan
    mid = median(data)
    return (max(data) - min(data)) / mid if mid else math.nan


def fmt(value: float, digits: int = 2, unit: str = "") -> str:
    """Format a number for a table; NaN becomes ``n/a``."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return f"{value:.{digits}f}{unit}"


def ratio(a: float, b: float) -> float:
    """a / b, NaN when undefined."""
    if a is None or b is None or math.isnan(a) or math.isnan(b) or b == 0:
        return math.nan
    return a / b
