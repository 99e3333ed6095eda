"""Network identifiers: IPv4 and IPv6 addresses (validated with :mod:`ipaddress`)."""

from __future__ import annotations

import ipaddress

from fedinf.privacy.detector import PatternDetector

_NEGATIVE = ("version", "ver", "release", "v", "build", "firmware", "python", "java", "node", "package")
_IP_CONTEXT = ("ip", "address", "host", "server", "client", "client_ip", "remote", "src", "dst", "gateway", "addr")


def _v4_ok(value: str) -> bool:
    parts = value.split(".")
    return len(parts) == 4 and all(p.isdigit() and int(p) <= 255 and (p == "0" or p[0] != "0") for p in parts)


def _v6_ok(value: str) -> bool:
    if value.count(":") < 2 or sum(1 for g in value.split(":") if g) < 3:
        return False
    try:
        ipaddress.IPv6Address(value)
    except ValueError:
        return False
    return True


DETECTORS = [
    PatternDetector(
        name="ipv4", entity="IP_ADDRESS", needs=("#digit",),
        pattern=r"(?<![\w.])(?:\d{1,3}\.){3}\d{1,3}(?![\w]|\.\d)",
        validate=_v4_ok, context=_IP_CONTEXT, negative=_NEGATIVE, score=0.8, window=24, scope="digits",
        min_digits=4,
    ),
    PatternDetector(
        name="ipv6", entity="IP_ADDRESS", needs=(":",),
        pattern=r"(?<![\w:])(?:[0-9A-Fa-f]{0,4}:){2,7}(?:[0-9A-Fa-f]{1,4}|(?:\d{1,3}\.){3}\d{1,3})?(?![\w:])",
        validate=_v6_ok, context=_IP_CONTEXT, score=0.85, precheck=r"[0-9A-Fa-f]:[0-9A-Fa-f]{0,4}:",
    ),
]
