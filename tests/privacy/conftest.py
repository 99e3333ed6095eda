"""Shared fixtures for the privacy tests: one classifier (building it loads the name lexicon once)."""

from __future__ import annotations

import pytest

from fedinf.privacy import Classifier


@pytest.fixture(scope="session")
def clf() -> Classifier:
    return Classifier.from_config()


@pytest.fixture(scope="session")
def found(clf: Classifier):
    """found(text) -> list of (type, value) pairs detected in ``text``."""

    def _found(text: str) -> list[tuple[str, str]]:
        return [(e.type, text[e.start:e.end]) for e in clf.detect([text])]

    return _found


@pytest.fixture(scope="session")
def types(found):
    """types(text) -> set of entity types detected in ``text``."""

    def _types(text: str) -> set[str]:
        return {t for t, _ in found(text)}

    return _types
