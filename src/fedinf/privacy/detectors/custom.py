"""Caller-supplied patterns from ``governance.custom_patterns``.

Each entry: ``{"name": "EMPLOYEE_ID", "pattern": "EMP-\\\\d{6}", "class": "confidential", "context": [...],
"context_required": false, "score": 0.9, "ignore_case": false}``. ``name`` becomes the entity type (upper-cased),
``class`` (optional) adds it to the entity -> class map. A bad entry is a :class:`~fedinf.errors.ConfigError`.
"""

from __future__ import annotations

import re
from typing import Any

from fedinf.data_class import DataClass
from fedinf.errors import ConfigError
from fedinf.privacy.detector import PatternDetector

_KEYS = frozenset({"name", "pattern", "class", "context", "context_required", "score", "ignore_case"})
_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,63}$")


def build(entries: list[dict[str, Any]]) -> tuple[list[PatternDetector], dict[str, DataClass]]:
    """Detectors and their entity classes from the config entries."""
    detectors: list[PatternDetector] = []
    classes: dict[str, DataClass] = {}
    for i, entry in enumerate(entries):
        where = f"governance.custom_patterns[{i}]"
        unknown = set(entry) - _KEYS
        if unknown:
            raise ConfigError(f"{where}: unknown key(s) {sorted(unknown)}; allowed: {sorted(_KEYS)}")
        name, pattern = entry.get("name"), entry.get("pattern")
        if not isinstance(name, str) or not _NAME.match(name):
            raise ConfigError(f"{where}.name: required, letters/digits/underscore, starting with a letter")
        if not isinstance(pattern, str) or not pattern:
            raise ConfigError(f"{where}.pattern: required regular expression")
        try:
            flags = re.IGNORECASE if entry.get("ignore_case") else 0
            re.compile(pattern, flags)
        except re.error as exc:
            raise ConfigError(f"{where}.pattern: invalid regular expression: {exc}") from None
        entity = name.upper()
        context = tuple(str(w).lower() for w in entry.get("context") or ())
        score = float(entry.get("score", 0.9))
        if not 0 < score <= 1:
            raise ConfigError(f"{where}.score: must be in (0, 1]")
        detectors.append(PatternDetector(
            name=f"custom:{entity}", entity=entity, pattern=pattern, flags=flags, context=context,
            context_required=bool(entry.get("context_required", False)), score=score, context_score=max(score, 0.95),
        ))
        if entry.get("class") is not None:
            try:
                classes[entity] = DataClass.parse(entry["class"])
            except ValueError as exc:
                raise ConfigError(f"{where}.class: {exc}") from None
    return detectors, classes
