"""Arithmetic checks that a human reviewer would do: net + tax = total, line items sum to net (or total).

Each check returns a :class:`Check` (name, passed, message, the fields it involves). Checks never change values;
the task runner reports them per field.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

TOLERANCE = Decimal("0.02")


@dataclass(frozen=True, slots=True)
class Check:
    name: str
    passed: bool
    message: str
    fields: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "passed": self.passed, "message": self.message, "fields": list(self.fields)}


def dec(value: Any) -> Decimal | None:
    if value is None or value == "" or isinstance(value, bool):
        return None
    try:
        return Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None


def net_plus_tax(net: Any, tax: Any, total: Any, *, names: tuple[str, str, str]) -> Check | None:
    """``net + tax == total`` within 0.02; None when a value is missing."""
    n, t, s = dec(net), dec(tax), dec(total)
    if n is None or t is None or s is None:
        return None
    ok = abs(n + t - s) <= TOLERANCE
    msg = f"{names[0]} + {names[1]} = {n + t}" + (" equals " if ok else " differs from ") + f"{names[2]} {s}"
    return Check("net_plus_tax_equals_total", ok, msg, names)


def lines_sum(amounts: list[Any], target: Any, *, names: tuple[str, str], alt: Any = None,
              alt_name: str | None = None) -> Check | None:
    """The sum of line amounts equals ``target`` (or ``alt``, e.g. the total when prices include tax)."""
    maybe = [dec(a) for a in amounts]
    vals = [v for v in maybe if v is not None]
    t = dec(target)
    if not vals or len(vals) < len(maybe) or (t is None and dec(alt) is None):
        return None
    total = sum(vals, Decimal(0))
    for goal, name in ((t, names[1]), (dec(alt), alt_name)):
        if goal is not None and abs(total - goal) <= TOLERANCE:
            return Check("line_items_sum", True, f"{names[0]} sum to {total} = {name}", (names[0], name or names[1]))
    return Check("line_items_sum", False, f"{names[0]} sum to {total}, not {t if t is not None else dec(alt)}",
                 (names[0], names[1]))


def date_order(first: Any, second: Any, *, names: tuple[str, str]) -> Check | None:
    """``first <= second`` for ISO dates (e.g. bill date before due date)."""
    if not first or not second:
        return None
    ok = str(first) <= str(second)
    return Check("date_order", ok, f"{names[0]} {first} {'<=' if ok else '>'} {names[1]} {second}", names)


def period_length(start: Any, end: Any, *, names: tuple[str, str], low: int = 1, high: int = 100) -> Check | None:
    """A billing period lasts ``low``..``high`` days (a year-long "period" is two unrelated dates)."""
    import datetime as dt

    try:
        days = (dt.date.fromisoformat(str(end)) - dt.date.fromisoformat(str(start))).days
    except ValueError:
        return None
    ok = low <= days <= high
    return Check("period_length", ok, f"{names[0]}..{names[1]} is {days} days" + ("" if ok else
                                                                                 f" (expected {low}-{high})"), names)


def bill_after_period(period_end: Any, bill_date: Any, *, names: tuple[str, str], before: int = 7,
                      after: int = 75) -> Check | None:
    """A bill is dated around the end of the period it bills: from ``before`` days before to ``after`` days after."""
    import datetime as dt

    try:
        gap = (dt.date.fromisoformat(str(bill_date)) - dt.date.fromisoformat(str(period_end))).days
    except ValueError:
        return None
    ok = -before <= gap <= after
    return Check("bill_after_period", ok, f"{names[1]} is {gap} days after {names[0]}" + ("" if ok else
                                                                                        " (implausible)"), names)


def unique_lines(items: list[Any], *, name: str, key: str) -> Check | None:
    """No line repeated verbatim (a model looping on the same usage line)."""
    rows = [str(i.get(key, "")).strip().casefold() if isinstance(i, dict) else str(i) for i in items]
    if len(rows) < 2:
        return None
    dupes = len(rows) - len(set(rows))
    return Check("unique_lines", dupes == 0, f"{name}: {dupes} repeated line(s)" if dupes else
                 f"{name}: no repeated lines", (name,))
