"""Contact details: e-mail addresses (plain and ``[at]``-obfuscated) and phone numbers (international formats)."""

from __future__ import annotations

import re

from fedinf.privacy.checksums import digits
from fedinf.privacy.detector import PatternDetector

_DATE_LIKE = re.compile(r"^(?:\d{4}[-./ ]\d{1,2}[-./ ]\d{1,2}|\d{1,2}[-./ ]\d{1,2}[-./ ]\d{2,4})$")
_PHONE_CONTEXT = (
    "phone", "telephone", "tel", "mobile", "cell", "cellphone", "fax", "call", "calling", "called", "ring", "text",
    "sms", "whatsapp", "signal", "contact", "reach", "dial", "messages", "answering", "number", "desk", "landline",
    "hotline", "telefon", "téléphone", "handy", "tlf", "ph", "mob", "office", "home", "work", "direct", "tel.",
)
_PHONE_NEGATIVE = ("order", "invoice", "isbn", "version", "tracking", "serial", "sku", "ref", "reference", "ticket",
                   "build", "ssn", "social security", "release", "v")


_EXTENSION = re.compile(r"\s?(?:x|ext\.?)\s?\d{1,5}$", re.IGNORECASE)


_NOT_PHONE = re.compile(r"^(?:\d{3}-\d{2}-\d{4}|\d{1,3}(?:\.\d{1,3}){3})$")  # SSN layout, IP/version layout


# RFC 4251 names algorithms and extensions "name@domain" ("sk-ecdsa-sha2-nistp256@openssh.com",
# "restrict-destination-v00@openssh.com"): identifiers of a protocol, not mailboxes of people
_PROTOCOL_TOKEN = re.compile(r"(?<![a-z0-9])(?:sha\d*|ecdsa|ed25519|ed448|rsa|dsa|nistp\d+|aes\d*|chacha20|"
                             r"poly1305|hmac|curve25519|curve448|etm|gcm|cbc|ctr|umac|mlkem\d*|sntrup\d*|ssh|sk)(?![a-z0-9])")
_PROTOCOL_VERSION = re.compile(r"-v\d\d$")


def _personal_mailbox(value: str) -> bool:
    """Not a role mailbox and not a protocol name (two algorithm tokens, or a ``-v00`` version suffix)."""
    local = value.split("@", 1)[0].lower()
    protocol = len(_PROTOCOL_TOKEN.findall(local)) >= 2 or _PROTOCOL_VERSION.search(local) is not None
    return local not in _ROLE_MAILBOXES and not protocol


def _phone_ok(value: str) -> bool:
    value = _EXTENSION.sub("", value).strip()
    n = len(digits(value))
    return 7 <= n <= 15 and not _DATE_LIKE.match(value) and not _NOT_PHONE.match(value)


def _intl_ok(value: str) -> bool:
    return 8 <= len(digits(_EXTENSION.sub("", value))) <= 15


# RFC 2142 and common role addresses: an organisation's function, not a person
_ROLE_MAILBOXES = frozenset({"security", "secure", "psirt", "cert", "abuse", "noc", "postmaster", "hostmaster",
                             "webmaster", "www", "info", "support", "help", "helpdesk", "sales", "marketing", "admin",
                             "administrator", "root", "noreply", "no-reply", "donotreply", "do-not-reply", "contact",
                             "office", "press", "media", "privacy", "legal", "dpo", "billing", "jobs", "careers",
                             "team", "hello", "feedback", "service", "customerservice", "newsletter", "notifications"})
_EMAIL_LOCAL = r"(?<![A-Za-z0-9._%+\-])[A-Za-z0-9][A-Za-z0-9._%+\-]{0,63}"
_DOMAIN = r"[A-Za-z0-9](?:[A-Za-z0-9\-]{0,62}[A-Za-z0-9])?"

DETECTORS = [
    PatternDetector(
        name="email", entity="EMAIL_ADDRESS", needs=("@",),
        pattern=_EMAIL_LOCAL + r"@" + _DOMAIN + r"(?:\." + _DOMAIN + r")*\.[A-Za-z]{2,24}(?![A-Za-z0-9\-])",
        validate=_personal_mailbox, score=0.95,
    ),
    PatternDetector(  # role mailboxes (security@) and protocol names (x@openssh.com) name no person:
        name="email_role", entity="EMAIL_ADDRESS", needs=("@",),  # pseudonymized, but not class-raising
        pattern=_EMAIL_LOCAL + r"@" + _DOMAIN + r"(?:\." + _DOMAIN + r")*\.[A-Za-z]{2,24}(?![A-Za-z0-9\-])",
        validate=lambda v: not _personal_mailbox(v), score=0.5,
    ),
    PatternDetector(
        name="email_obfuscated", entity="EMAIL_ADDRESS", flags=re.IGNORECASE,
        needs=("[at]", "(at)", "{at}", "<at>", "[ at ]", "( at )"),
        pattern=_EMAIL_LOCAL + r"\s*[\[({<]\s*at\s*[\])}>]\s*" + _DOMAIN
        + r"(?:\s*(?:[\[({<]\s*dot\s*[\])}>]|\.)\s*" + _DOMAIN + r")+",
        score=0.9,
    ),
    PatternDetector(  # +CC / 00CC international
        name="phone_international", entity="PHONE_NUMBER", needs=("#digit",),
        pattern=r"(?<![\w+])(?:\+|00)[1-9]\d{0,2}(?:[ .\-]?\(0?\d{1,4}\))?(?:[ .\-]?\d{1,5}){1,6}"
        r"(?:\s?(?:x|ext\.?)\s?\d{1,5})?(?![\w])",
        validate=_intl_ok, context=_PHONE_CONTEXT, score=0.85, context_score=0.9, scope="digits", min_digits=8, before=3, after=12,
    ),
    PatternDetector(  # North American (NXX) NXX-XXXX with separators
        name="phone_nanp", entity="PHONE_NUMBER", needs=("#digit",),
        pattern=r"(?<![\w+.\-])(?:1[ .\-]?)?(?:\([2-9]\d{2}\)\s?|[2-9]\d{2}[ .\-])[2-9]\d{2}[ .\-]\d{4}"
        r"(?:\s?(?:x|ext\.?)\s?\d{1,5})?(?![\w\-])",
        context=_PHONE_CONTEXT, negative=_PHONE_NEGATIVE, score=0.8, context_score=0.85, scope="digits",
        min_digits=10,
        after=12,
    ),
    PatternDetector(  # grouped national formats (0688 872 49 99, 699 956 915): weak alone, strong with context
        name="phone_grouped", entity="PHONE_NUMBER", needs=("#digit",),
        pattern=r"(?<![\w+.\-/:=@#])\(?\d{2,5}\)?(?:[ \-]\d{2,8}){1,4}(?:\s?(?:x|ext\.?)\s?\d{1,5})?(?![\w/:.]|-\d)",
        validate=_phone_ok, context=_PHONE_CONTEXT, negative=_PHONE_NEGATIVE, score=0.55, context_score=0.75,
        scope="digits",
        min_digits=7, after=12,
    ),
    PatternDetector(  # dotted groups (986.291.2294) look like versions and dates: only with context
        name="phone_dotted", entity="PHONE_NUMBER", needs=("#digit",),
        pattern=r"(?<![\w+.\-/:=@#])\d{2,5}(?:\.\d{2,8}){2,4}(?![\w/:]|[.\-]\d)",
        validate=_phone_ok, context=_PHONE_CONTEXT, context_required=True, negative=_PHONE_NEGATIVE,
        context_score=0.75, window=24, scope="digits", min_digits=7,
    ),
    PatternDetector(  # bare digit strings only with context
        name="phone_bare", entity="PHONE_NUMBER", needs=("#digit",),
        pattern=r"(?<![\w+.\-])\d{7,12}(?![\w\-])",
        validate=_phone_ok, context=_PHONE_CONTEXT, context_required=True, negative=_PHONE_NEGATIVE,
        context_score=0.7, window=24, scope="digits", min_digits=7,
    ),
]
