"""Secrets and credentials: cloud and SaaS API keys and tokens (by their documented prefixes), private-key blocks,
JWTs, passwords in connection strings and in ``password=...`` assignments."""

from __future__ import annotations

import re

from fedinf.privacy.detector import PatternDetector


def _entropy_ok(value: str) -> bool:
    """A generic secret must look random: several character classes and many distinct characters."""
    classes = sum((any(c.islower() for c in value), any(c.isupper() for c in value), any(c.isdigit() for c in value)))
    return classes >= 2 and len(set(value)) >= 10


_PLACEHOLDER_VALUES = ("changeme", "password", "example", "xxx", "***", "redacted", "placeholder", "secret", "${",
                       "{{", "<", "your", "null", "none", "true", "false", "required", "optional")


_CODE_REF = re.compile(r"[()\[\]{}$]|^[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)+$|^(?:os|env|process|config|settings|self)\b")


# "the password is stored/entered/silently ignored": prose about a password, not one. A value of lower-case letters
# only that reads as a participle, adverb or gerund (or one of these words) is the sentence going on.
_PROSE_AFTER = frozenset({"being", "never", "always", "still", "also", "only", "then", "there", "their", "incorrect",
                          "invalid", "correct", "wrong", "empty", "missing", "required", "visible", "exposed",
                          "available", "plaintext", "cleartext", "insecure", "sent", "set", "reset", "kept", "shown",
                          "known", "weak", "strong", "valid", "unknown", "taken", "given", "written", "hidden"})
_PROSE_SUFFIX = ("ed", "ly", "ing", "able", "ible")


def _password_ok(value: str) -> bool:
    """Not a placeholder, not a reference in code (``os.environ[...]``, ``settings.DB_PASSWORD``) and not the rest
    of a sentence about a password ("the password is stored in clear text")."""
    v = value.lower()
    if value.isalpha() and value.islower() and (v in _PROSE_AFTER or v.endswith(_PROSE_SUFFIX)):
        return False
    return not any(p in v for p in _PLACEHOLDER_VALUES) and len(set(v)) >= 4 and not _CODE_REF.search(value)


_URL_PLACEHOLDERS = frozenset({"pass", "password", "passwd", "pwd", "secret", "pw", "xxx", "xxxx", "***", "****",
                               "port", "user", "token", "changeme"})


def _url_password_ok(value: str) -> bool:
    """``user:pass@server`` in documentation is a template, not a password."""
    return value.lower() not in _URL_PLACEHOLDERS and not value.startswith(("<", "{", "$", "%"))


def _jwt_ok(value: str) -> bool:
    return value.count(".") == 2 and all(len(p) >= 4 for p in value.split(".")[:2])


_B = r"(?![A-Za-z0-9_\-])"
_A = r"(?<![A-Za-z0-9_\-])"

DETECTORS = [
    PatternDetector(name="aws_access_key", entity="AWS_ACCESS_KEY", needs=("akia", "asia", "agpa", "aroa", "aida", "anpa", "anva", "aipa"),
                    scope="anchors",
                    pattern=_A + r"(?:AKIA|ASIA|AGPA|AROA|AIDA|ANPA|ANVA|AIPA)[A-Z0-9]{16}" + _B, score=0.95),
    PatternDetector(name="aws_secret_key", entity="AWS_SECRET_KEY", needs=("aws", "secret"),
                    pattern=_A + r"[A-Za-z0-9/+]{40}" + r"(?![A-Za-z0-9/+])", validate=_entropy_ok,
                    context=("aws_secret", "secret_access_key", "aws secret", "secret key", "secretaccesskey"),
                    context_required=True),
    PatternDetector(name="github_token", entity="GITHUB_TOKEN", needs=("ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_"), scope="anchors",
                    pattern=_A + r"(?:gh[pousr]_[A-Za-z0-9]{36,251}|github_pat_[A-Za-z0-9_]{22,255})" + _B,
                    score=0.99),
    PatternDetector(name="anthropic_key", entity="ANTHROPIC_API_KEY", needs=("sk-ant-",), scope="anchors",
                    pattern=_A + r"sk-ant-(?:api|admin)\d{2}-[A-Za-z0-9_\-]{20,}" + _B, score=0.99),
    PatternDetector(name="openai_key", entity="OPENAI_API_KEY", needs=("sk-",), scope="anchors",
                    pattern=_A + r"sk-(?!ant-)(?:proj-|svcacct-|admin-)?[A-Za-z0-9_\-]{20,}" + _B,
                    validate=_entropy_ok, score=0.95),
    PatternDetector(name="slack_token", entity="SLACK_TOKEN", needs=("xox",), scope="anchors",
                    pattern=_A + r"xox[abposre]-(?:\d+-)?[A-Za-z0-9\-]{10,}" + _B, score=0.97),
    PatternDetector(name="slack_webhook", entity="SLACK_WEBHOOK", needs=("hooks.slack.com",), scope="anchors", before=8,
                    pattern=r"https://hooks\.slack\.com/services/T[A-Za-z0-9_]+/B[A-Za-z0-9_]+/[A-Za-z0-9_]+",
                    score=0.97),
    PatternDetector(name="google_api_key", entity="GOOGLE_API_KEY", needs=("aiza",), scope="anchors",
                    pattern=_A + r"AIza[0-9A-Za-z_\-]{35}" + _B, score=0.97),
    PatternDetector(name="google_oauth", entity="GOOGLE_OAUTH_TOKEN", needs=("ya29.",), scope="anchors",
                    pattern=_A + r"ya29\.[0-9A-Za-z_\-]{20,}" + _B, score=0.95),
    PatternDetector(name="stripe_key", entity="STRIPE_KEY", needs=("_live_", "_test_"), scope="anchors", before=2,
                    pattern=_A + r"(?:sk|rk|pk)_(?:live|test)_[0-9A-Za-z]{16,}" + _B, score=0.97),
    PatternDetector(name="twilio_key", entity="TWILIO_KEY", needs=("twilio", "sid"),
                    pattern=_A + r"(?:SK|AC)[0-9a-f]{32}" + _B, context=("twilio", "sid", "account"),
                    context_required=True),
    PatternDetector(name="huggingface_token", entity="HUGGINGFACE_TOKEN", needs=("hf_",), scope="anchors",
                    pattern=_A + r"hf_[A-Za-z0-9]{30,40}" + _B, validate=_entropy_ok, score=0.95),
    PatternDetector(name="gitlab_token", entity="GITLAB_TOKEN", needs=("glpat-",), scope="anchors",
                    pattern=_A + r"glpat-[A-Za-z0-9_\-]{20,}" + _B, score=0.97),
    PatternDetector(name="npm_token", entity="NPM_TOKEN", needs=("npm_",), scope="anchors",
                    pattern=_A + r"npm_[A-Za-z0-9]{36}" + _B, score=0.95),
    PatternDetector(name="private_key", entity="PRIVATE_KEY", needs=("-----begin",), scope="anchors",
                    pattern=r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----[\s\S]*?"
                    r"(?:-----END (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----|\Z)", score=0.99),
    PatternDetector(name="jwt", entity="JWT", needs=("eyj",), scope="anchors",
                    pattern=_A + r"eyJ[A-Za-z0-9_\-]{6,}\.eyJ[A-Za-z0-9_\-]{6,}\.[A-Za-z0-9_\-]{0,}" + _B,
                    validate=_jwt_ok, score=0.95),
    PatternDetector(name="connection_string_password", entity="PASSWORD", needs=("://",),
                    pattern=r"(?<![A-Za-z0-9+.\-])[a-z][a-z0-9+.\-]{1,20}://[^\s:/@]{1,64}:([^\s@/]{1,128})@[^\s/]+",
                    group=1, validate=_url_password_ok, score=0.98),
    PatternDetector(name="password_assignment", entity="PASSWORD",
                    needs=("pass", "pwd", "secret", "token", "api_key", "apikey", "api-key", "access_key",
                           "access-key", "auth_token", "auth-token", "mot de passe", "passwort", "contraseña"),
                    flags=re.IGNORECASE, scope="anchors",
                    pattern=r"(?<![a-z])(?:password|passwd|pass|pwd|passphrase|secret|client_secret|token|api[_\-]?key|"
                    r"access[_\-]?key|auth[_\-]?token|mot de passe|passwort|contraseña)"
                    r"[\"']?\s*(?:[:=]|\bis\b|=>)\s*[\"']?([^\s\"',;]{6,128})",
                    group=1, validate=_password_ok, score=0.85),
]
