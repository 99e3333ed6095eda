"""Helpers that make check-digit-valid values for the tests (independent of the code under test)."""

from __future__ import annotations


def luhn_complete(prefix: str) -> str:
    """``prefix`` + the Luhn check digit."""
    total = 0
    for i, ch in enumerate(reversed(prefix + "0")):
        d = int(ch)
        if i % 2 == 1:
            d = d * 2 - 9 if d * 2 > 9 else d * 2
        total += d
    return prefix + str((10 - total % 10) % 10)


def iban_complete(country: str, bban: str) -> str:
    """A valid IBAN for ``country`` + ``bban`` (computes the two check digits)."""
    rearranged = bban + country + "00"
    num = int("".join(str(int(c, 36)) for c in rearranged))
    return f"{country}{98 - num % 97:02d}{bban}"
