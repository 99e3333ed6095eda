"""A generated set for what the presidio-research corpus lacks: secrets, health and more national identifiers,
plus hard negatives (identifier-shaped values that are not sensitive). Deterministic (seeded); nothing is shipped.

Each item: ``{"text", "kind": "positive"|"negative", "type", "start", "end"}`` where the span is the planted value.
Check digits are computed here, independently of fedinf's validators.
"""

from __future__ import annotations

import base64
import json
import random
import string
import uuid

A = string.ascii_letters + string.digits


def _luhn_complete(prefix: str) -> str:
    total = 0
    for i, ch in enumerate(reversed(prefix + "0")):
        d = int(ch)
        if i % 2 == 1:
            d = d * 2 - 9 if d * 2 > 9 else d * 2
        total += d
    return prefix + str((10 - total % 10) % 10)


def _npi(r: random.Random) -> str:
    body = str(r.choice("12")) + "".join(r.choice(string.digits) for _ in range(8))
    full = _luhn_complete("80840" + body)
    return body + full[-1]


def _nhs(r: random.Random) -> str:
    while True:
        d = [r.randrange(10) for _ in range(9)]
        check = 11 - sum(x * (10 - i) for i, x in enumerate(d)) % 11
        check = 0 if check == 11 else check
        if check != 10:
            s = "".join(map(str, d)) + str(check)
            return f"{s[:3]} {s[3:6]} {s[6:]}"


def _dea(r: random.Random) -> str:
    d = [r.randrange(10) for _ in range(6)]
    check = (d[0] + d[2] + d[4] + 2 * (d[1] + d[3] + d[5])) % 10
    return r.choice("ABFM") + r.choice(string.ascii_uppercase) + "".join(map(str, d)) + str(check)


def _jwt(r: random.Random) -> str:
    def b64(obj: dict) -> str:
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).decode().rstrip("=")
    sig = "".join(r.choice(A + "-_") for _ in range(43))
    return f"{b64({'alg': 'HS256', 'typ': 'JWT'})}.{b64({'sub': str(r.randrange(10**9)), 'name': 'x'})}.{sig}"


def _rand(r: random.Random, n: int, alphabet: str = A) -> str:
    return "".join(r.choice(alphabet) for _ in range(n))


POSITIVES = [
    ("AWS_ACCESS_KEY", lambda r: "AKIA" + _rand(r, 16, string.ascii_uppercase + string.digits),
     ["aws_access_key_id = {v}", "The key {v} was leaked in the repo.", "export AWS_ACCESS_KEY_ID={v}"]),
    ("GITHUB_TOKEN", lambda r: "ghp_" + _rand(r, 36), ["token: {v}", "git clone https://{v}@github.com/org/repo",
                                                     "use {v} for the CI"]),
    ("OPENAI_API_KEY", lambda r: "sk-proj-" + _rand(r, 48, A + "-_"), ["OPENAI_API_KEY={v}",
                                                                       "my key is {v}, why does it fail?"]),
    ("SLACK_TOKEN", lambda r: f"xoxb-{r.randrange(10**11, 10**12)}-{r.randrange(10**11, 10**12)}-{_rand(r, 24)}",
     ["slack bot token {v}", "SLACK_TOKEN: {v}"]),
    ("STRIPE_KEY", lambda r: "sk_live_" + _rand(r, 24), ["stripe.api_key = '{v}'", "Stripe secret {v}"]),
    ("GOOGLE_API_KEY", lambda r: "AIza" + _rand(r, 35, A + "-_"), ["maps key {v}", "key={v}&q=paris"]),
    ("JWT", _jwt, ["Authorization: Bearer {v}", "the session cookie is {v}"]),
    ("PASSWORD", lambda r: _rand(r, 12), ["postgres://app:{v}@db.internal:5432/prod", "password: {v}",
                                          "DB_PASSWORD={v}"]),
    ("PRIVATE_KEY", lambda r: "-----BEGIN RSA PRIVATE KEY-----\n" + "\n".join(_rand(r, 64, A + "+/")
                                                                               for _ in range(4))
     + "\n-----END RSA PRIVATE KEY-----", ["here is the key:\n{v}\nthanks"]),
    ("MEDICAL_RECORD_NUMBER", lambda r: str(r.randrange(10**6, 10**8)),
     ["Patient MRN: {v}, admitted for observation.", "medical record number {v}"]),
    ("HEALTH_PLAN_ID", lambda r: _rand(r, 3, string.ascii_uppercase) + str(r.randrange(10**8, 10**9)),
     ["Member ID: {v}", "her health plan subscriber id is {v}"]),
    ("NPI", _npi, ["referring physician NPI {v}", "Provider NPI: {v}"]),
    ("DEA_NUMBER", _dea, ["prescriber DEA number {v}"]),
    ("ICD10_CODE", lambda r: r.choice(["E11.9", "J45.909", "I10", "F32.1", "M54.5", "C50.911"]),
     ["diagnosis code {v} recorded", "ICD-10: {v}"]),
    ("UK_NHS", _nhs, ["NHS number {v}", "patient NHS no. {v}"]),
    ("US_ITIN", lambda r: f"9{r.randrange(10, 100)}-{r.choice([50, 65, 70, 88, 92])}-{r.randrange(1000, 10000)}",
     ["my ITIN is {v}", "taxpayer id (ITIN) {v}"]),
    ("PASSPORT_NUMBER", lambda r: r.choice(string.ascii_uppercase) + str(r.randrange(10**7, 10**8)),
     ["passport number {v}", "Passport: {v}"]),
]

NEGATIVES = [
    ("UUID", lambda r: str(uuid.UUID(int=r.getrandbits(128))), ["request id {v} failed", "trace {v}"]),
    ("ORDER_NUMBER", lambda r: f"{r.randrange(10**7, 10**8)}-{r.randrange(10**3, 10**4)}",
     ["order {v} shipped", "Order number: {v}"]),
    ("VERSION", lambda r: f"{r.randrange(1, 20)}.{r.randrange(0, 30)}.{r.randrange(0, 30)}.{r.randrange(0, 99)}",
     ["upgrade to version {v}", "build {v} is green"]),
    ("GIT_SHA", lambda r: _rand(r, 40, "0123456789abcdef"), ["commit {v} fixed it"]),
    ("LUHN_INVALID_CARD", lambda r: (lambda c: c[:-1] + str((int(c[-1]) + 1) % 10))(_luhn_complete(
        "4" + _rand(r, 14, string.digits))), ["card {v} declined"]),
    ("BAD_IBAN", lambda r: "GB" + str(r.randrange(10, 99)) + "WEST" + _rand(r, 14, string.digits),
     ["IBAN {v}"]),
    ("INVALID_SSN", lambda r: r.choice(["000", "666", "9" + str(r.randrange(10, 99))]) + f"-{r.randrange(10, 99)}-"
     f"{r.randrange(1000, 9999)}", ["SSN {v}"]),
    ("TIMESTAMP", lambda r: f"2024-{r.randrange(1, 13):02d}-{r.randrange(1, 29):02d} {r.randrange(24):02d}:00:00",
     ["logged at {v}"]),
]


def generate(n_per_type: int = 25, seed: int = 7) -> list[dict]:
    """Planted positives and hard negatives. A bad IBAN may pass mod-97 by chance (1 in 97): dropped here."""
    r = random.Random(seed)
    out = []
    for kind, table in (("positive", POSITIVES), ("negative", NEGATIVES)):
        for etype, make, templates in table:
            for i in range(n_per_type):
                v = make(r)
                if etype == "BAD_IBAN" and _iban_valid(v):
                    continue
                t = templates[i % len(templates)]
                pre = t.split("{v}")[0]
                text = t.replace("{v}", v)
                out.append({"text": text, "kind": kind, "type": etype, "start": len(pre), "end": len(pre) + len(v)})
    return out


def _iban_valid(s: str) -> bool:
    rearranged = s[4:] + s[:4]
    return int("".join(str(int(c, 36)) for c in rearranged)) % 97 == 1
