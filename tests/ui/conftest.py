"""Headless Chromium for the admin UI tests: Debian's `chromium` (installed by `make test`'s set-up) driven by
Python Playwright. Playwright never downloads a browser here: it launches /usr/bin/chromium.

Off CI a missing browser or driver skips the browser tests with the reason; under CI=true it fails them."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run", "--disable-sync", "--disable-dev-shm-usage"]


def chromium_path() -> str | None:
    for cand in (os.environ.get("FEDINF_CHROMIUM"), "/usr/bin/chromium", shutil.which("chromium")):
        if cand and Path(cand).exists():
            return cand
    return None


def _unavailable(reason: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason} (CI=true: the browser tests must run; `make test` installs chromium)")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    exe = chromium_path()
    if exe is None:
        _unavailable("chromium is not installed (apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("the playwright driver is not installed (the `dev` extra)")
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=exe, args=CHROMIUM_ARGS, headless=True)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture(scope="module")
def screenshots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where screenshots go: $FEDINF_UI_SCREENSHOTS (e.g. bench/results/ui) or a pytest temp dir."""
    target = os.environ.get("FEDINF_UI_SCREENSHOTS")
    path = Path(target) if target else tmp_path_factory.mktemp("ui-screens")
    path.mkdir(parents=True, exist_ok=True)
    return path
