"""The detector registry: one module per family, each exporting its detectors.

Adding a detector: a :class:`~fedinf.privacy.detector.PatternDetector` (or any object with ``name``, ``entities``
and ``detect(view)``) in its family's file, listed in that file's ``DETECTORS``; a new family is one new file plus
one entry in :data:`FAMILIES`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from fedinf.privacy.detector import Detector
from fedinf.privacy.detectors import contact, financial, government, health, network, people, secrets


def _static(detectors: Sequence[Detector]) -> Callable[[], list[Detector]]:
    return lambda: list(detectors)


FAMILIES: dict[str, Callable[[], list[Detector]]] = {
    "contact": _static(contact.DETECTORS),
    "government": _static(government.DETECTORS),
    "financial": _static(financial.DETECTORS),
    "health": _static(health.DETECTORS),
    "secrets": _static(secrets.DETECTORS),
    "network": _static(network.DETECTORS),
    "people": people.build,  # loads the name lexicon
}


def build_all(families: list[str] | None = None) -> list[Detector]:
    """Instantiate the detectors of ``families`` (default: all) in registry order."""
    out: list[Detector] = []
    for fam in families or list(FAMILIES):
        out.extend(FAMILIES[fam]())
    return out
