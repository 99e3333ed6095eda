"""Data classes: how sensitive a request's content is, ordered ``public < internal < confidential < restricted``."""

from __future__ import annotations

from enum import IntEnum


class DataClass(IntEnum):
    PUBLIC = 0
    INTERNAL = 1
    CONFIDENTIAL = 2
    RESTRICTED = 3

    @classmethod
    def parse(cls, value: "str | DataClass") -> "DataClass":
        if isinstance(value, DataClass):
            return value
        try:
            return cls[str(value).strip().upper()]
        except KeyError:
            names = ", ".join(c.label for c in cls)
            raise ValueError(f"unknown data class {value!r}; expected one of: {names}") from None

    @property
    def label(self) -> str:
        return self.name.lower()

    def __str__(self) -> str:
        return self.label
