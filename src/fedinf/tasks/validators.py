"""Task validator kinds: the checks a task's ``validators:`` list may name, each registered once.

A validator kind reads fields of the merged record and returns :class:`~fedinf.extractors.checks.Check` results; a
check that lacks its inputs returns nothing (skipped, not failed). Adding a kind = one function here (or in a
module of its own) + one entry in :data:`VALIDATORS`; task specs are checked against this registry when they are
parsed, so an unknown kind or a wrong number of fields is a config error, never a silent no-op.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from fedinf.extractors import checks as ck
from fedinf.extractors.banking import iban_valid
from fedinf.extractors.checks import Check

if TYPE_CHECKING:
    from fedinf.tasks.spec import Validator

Record = dict[str, Any]


@dataclass(frozen=True, slots=True)
class ValidatorKind:
    """One registered check: ``run(validator, record)``, and the ``fields`` / ``items`` it needs."""

    run: Callable[["Validator", Record], list[Check | None]]
    min_fields: int = 0
    max_fields: int | None = None
    needs_items: bool = False

    def problem(self, v: "Validator") -> str | None:
        """Why ``v`` cannot run (wrong number of fields, missing ``items``), or None."""
        n = len(v.fields)
        if n < self.min_fields or (self.max_fields is not None and n > self.max_fields):
            want = str(self.min_fields) if self.max_fields == self.min_fields else \
                f"{self.min_fields}..{self.max_fields if self.max_fields is not None else 'n'}"
            return f"check {v.check} takes {want} field(s), got {n}"
        if self.needs_items and not v.items:
            return f"check {v.check} needs `items` (the array field)"
        return None


def _net_plus_tax(v: "Validator", record: Record) -> list[Check | None]:
    f = v.fields
    return [ck.net_plus_tax(record.get(f[0]), record.get(f[1]), record.get(f[2]), names=(f[0], f[1], f[2]))]


def _line_items_sum(v: "Validator", record: Record) -> list[Check | None]:
    assert v.items is not None
    f = v.fields
    items = record.get(v.items) or []
    amounts = [i.get(v.item_amount) for i in items if isinstance(i, dict)]
    if not amounts:
        return []
    return [ck.lines_sum(amounts, record.get(f[0]), names=(v.items, f[0]),
                         alt=record.get(f[1]) if len(f) > 1 else None, alt_name=f[1] if len(f) > 1 else None)]


def _date_order(v: "Validator", record: Record) -> list[Check | None]:
    f = v.fields
    return [ck.date_order(record.get(f[0]), record.get(f[1]), names=(f[0], f[1]))]


def _iban(v: "Validator", record: Record) -> list[Check | None]:
    out: list[Check | None] = []
    for name in v.fields:
        if record.get(name):
            ok = iban_valid(str(record[name]))
            out.append(Check("iban", ok, f"{name} {'passes' if ok else 'fails'} the IBAN mod-97 check", (name,)))
    return out


def _period_length(v: "Validator", record: Record) -> list[Check | None]:
    f = v.fields
    return [ck.period_length(record.get(f[0]), record.get(f[1]), names=(f[0], f[1]))]


def _bill_after_period(v: "Validator", record: Record) -> list[Check | None]:
    f = v.fields
    return [ck.bill_after_period(record.get(f[0]), record.get(f[1]), names=(f[0], f[1]))]


def _unique_lines(v: "Validator", record: Record) -> list[Check | None]:
    assert v.items is not None
    return [ck.unique_lines(record.get(v.items) or [], name=v.items, key=v.item_amount)]


def _required(v: "Validator", record: Record) -> list[Check | None]:
    return [Check("required", False, f"{name} was not found", (name,))
            for name in v.fields if record.get(name) in (None, "", [])]


VALIDATORS: dict[str, ValidatorKind] = {
    "net_plus_tax": ValidatorKind(_net_plus_tax, min_fields=3, max_fields=3),
    "line_items_sum": ValidatorKind(_line_items_sum, min_fields=1, max_fields=2, needs_items=True),
    "date_order": ValidatorKind(_date_order, min_fields=2, max_fields=2),
    "iban": ValidatorKind(_iban, min_fields=1),
    "required": ValidatorKind(_required, min_fields=1),
    "period_length": ValidatorKind(_period_length, min_fields=2, max_fields=2),
    "bill_after_period": ValidatorKind(_bill_after_period, min_fields=2, max_fields=2),
    "unique_lines": ValidatorKind(_unique_lines, max_fields=0, needs_items=True),
}


def run_validator(v: "Validator", record: Record) -> list[Check]:
    """Run one validator over the merged record; checks that lack their inputs are skipped (not failures)."""
    return [c for c in VALIDATORS[v.check].run(v, record) if c is not None]
