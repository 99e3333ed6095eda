"""The classifier's fast paths find exactly what the plain scans they replace find.

Each fast path is checked against a straightforward reference (the scan it replaced) on hand-picked edge cases and on
generated text: the one-pass needle search against ``needle in text`` per needle, the encoded-blob pre-check against
scanning every whitespace-separated token, the digit check against ``\\d``, the person detector's deferred
product look-up against texts where a product is named before and after a name-like word, and the code-shape check
(technical text) against the one alternation it was.
"""

from __future__ import annotations

import base64
import os
import re
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fedinf.privacy import Classifier
from fedinf.privacy.classifier import _has_digit
from fedinf.privacy.detector import TextView
from fedinf.privacy.encodings import _BASE64, _HEX, MAX_BLOB, MIN_BASE64, Blob, decoded_blobs

_SETTINGS = settings(max_examples=int(os.environ.get("PII_EXAMPLES", "300")), deadline=None,
                     suppress_health_check=[HealthCheck.function_scoped_fixture])

# pieces that generated texts are made of: needles (also upper-cased and cut), non-ASCII letters and whitespace
_PIECES = ["dob", "born", "birth", "né", "NÉ", "führerschein", "FÜHRERSCHEIN", "contraseña", "passport", "Passwort",
           "pass", "sk-", "sk-ant-", "ghp_", "akia", "eyj", "@", "://", ":", "[at]", "( at )", "mot de passe",
           "corner of", "hooks.slack.com", "-----begin", "#", "iban", "swift", "dl", "licen", "İ", "ß", "ﬁ", "ſ", "K",
           "my name is", "call me", "Name is", "version", "versions", "4111", "٤", "x", " ", "\n", "\xa0", "\u3000",
           "\u2028", "\x1c", "é", "ü", "—", "’"]
_texts = st.lists(st.sampled_from(_PIECES) | st.text(max_size=6), max_size=24).map("".join)


def _needles(clf: Classifier) -> list[str]:
    return [n for d in clf.detectors for n in getattr(d, "needs", ())]


def _wanted_by_scan(clf: Classifier, text: str) -> list[str]:
    """The pre-filter as it was: every detector whose needles include one ``in`` the lower-cased text."""
    view = TextView(text)
    return [d.name for d in clf.detectors if not getattr(d, "needs", ())
            or any(view.has_digit if n == "#digit" else n in view.lower for n in d.needs)]


def _check_needles(clf: Classifier, text: str) -> None:
    view = TextView(text)
    assert [d.name for d in clf._wanted(view)] == _wanted_by_scan(clf, text)
    for n in set(_needles(clf)):  # what the search recorded in the view is what a scan finds
        assert view.contains(n) == (view.has_digit if n == "#digit" else n in text.lower()), (n, text)


@pytest.mark.parametrize("text", [
    "", "dob", "DOB: 1980-01-01", "born", "text ending in sk-", "sk-ant-api03", "ghp_" + "a" * 36, "PASSPORT no",
    "Führerschein", "FÜHRERSCHEIN", "contraseña", "CONTRASEÑA", "né le", "NÉ LE", "mot de passe", "MOT DE PASSE",
    "corner of", "the corner\nof", "hooks.slack.com/services", "-----BEGIN RSA", "user@example.org", "a://b",
    "İstanbul", "nothing at all", "the 4th", "https://x", "no needle here but a digit 7",
    "born \ud800 in DOB", "\udcff", "passport\udc80sk-",  # lone surrogates: not UTF-8, scanned needle by needle
])
def test_needle_search_matches_a_scan_per_needle(clf, text):
    _check_needles(clf, text)


@_SETTINGS
@given(_texts)
def test_needle_search_matches_a_scan_per_needle_on_generated_text(clf, text):
    _check_needles(clf, text)


def test_needle_search_with_digit_and_empty_needles():
    from fedinf.privacy.detector import PatternDetector

    every = PatternDetector(name="every", entity="EVERY", pattern=r"x+", needs=("",))
    digit = PatternDetector(name="digit", entity="DIGIT", pattern=r"\d+", needs=("#digit",))
    word = PatternDetector(name="word", entity="WORD", pattern=r"ab+", needs=("ab",))
    clf = Classifier([every, digit, word])
    assert [d.name for d in clf._wanted(TextView("xyz"))] == ["every"]
    assert [d.name for d in clf._wanted(TextView("x 1 AB"))] == ["every", "digit", "word"]
    assert [e.type for e in clf.detect(["xx 12 abb"])] == ["EVERY", "DIGIT", "WORD"]
    assert Classifier([digit])._wanted(TextView("none")) == []  # no literal needle at all


def _blobs_by_scan(text: str) -> Iterator[Blob]:
    """The base64/hex half of :func:`decoded_blobs` as it was: every token of 16+ characters scanned."""
    from fedinf.privacy.encodings import _from_base64, _from_hex

    pos = 0
    for token in text.split():
        start = text.find(token, pos)
        pos = start + len(token)
        if len(token) < MIN_BASE64 or len(token) > MAX_BLOB:
            continue
        for rx, decode in ((_HEX, _from_hex), (_BASE64, _from_base64)):
            for m in rx.finditer(text, start, pos):
                text_of = decode(m.group())
                if text_of is not None:
                    yield Blob(m.start(), m.end(), text_of)


_SECRET = "SSN 078-05-1120 card 4111 1111 1111 1111"
_ENCODED = [base64.b64encode(_SECRET.encode()).decode(), base64.urlsafe_b64encode(b"\xfb\xff" + _SECRET.encode())
            .decode(), _SECRET.encode().hex(), _SECRET.encode().hex().upper(), "QUJD" * 4, "a" * 15, "a" * 16,
            "internationalization", "x" * 40 + "é", "\ud800" + "QUJD" * 5]
_SPACES = [" ", "\n", "\t", "\xa0", "\u2003", "\u3000", "\x1c", "\x85", "\u2028", "é", "", ".", "=", "%41"]


@pytest.mark.parametrize("blob", _ENCODED)
@pytest.mark.parametrize("space", _SPACES)
def test_blob_precheck_finds_what_a_scan_of_every_token_finds(blob, space):
    for text in (blob, f"x{space}{blob}", f"{blob}{space}y", f"café{space}{blob}{space}{blob[::-1]} fin",
                 f"plain prose here{space}{blob}{space}and more prose — done"):
        assert [b for b in decoded_blobs(text) if b.offsets is None] == list(_blobs_by_scan(text)), text


def test_blob_precheck_skips_prose_and_still_decodes():
    assert list(decoded_blobs("Our customer support team received the following message this morning.")) == []
    text = f"note: {base64.b64encode(_SECRET.encode()).decode()} — thanks"
    (blob,) = decoded_blobs(text)
    assert blob.decoded == _SECRET and text[blob.start:blob.end].startswith("U1NO")


@_SETTINGS
@given(st.lists(st.sampled_from(_ENCODED + _SPACES + ["word", "Ünïcödé", "’"]) | st.text(max_size=20),
                max_size=12).map("".join))
def test_blob_precheck_on_generated_text(text):
    assert [b for b in decoded_blobs(text) if b.offsets is None] == list(_blobs_by_scan(text))


def test_url_encoded_runs_need_an_escape():
    assert list(decoded_blobs("growth of 12.5% and 40%, up 3%")) == []
    (blob,) = decoded_blobs("see 078%2D05%2D1120 now")
    assert blob.decoded == "078-05-1120" and blob.offsets is not None


@pytest.mark.parametrize("text", ["", "abc", "a1", "٤", "x\u0664y", "１", "no digits — here", "𝟏"])
def test_has_digit_is_regex_digit(text):
    assert _has_digit(text) == (re.search(r"\d", text) is not None)


@pytest.mark.parametrize("text, expected", [
    # a product named after the name-like word ("Wagtail 4.1.4") makes it a product, before and after it
    ("We talked to Wagtail about it.", [("PERSON", "Wagtail")]),
    ("We talked to Wagtail about it. Wagtail 4.1.4 is out.", []),
    ("Wagtail 4.1.4 is out. We talked to Wagtail about it.", []),
    ("Thanks Wagtail.", [("PERSON", "Wagtail")]),
    ("Thanks Wagtail. Install the Wagtail plugin.", []),
    ("Ask Jouko about it. Wagtail 4.1.4 is out.", [("PERSON", "Ask Jouko")]),
    ("Please ask Maria Gonzalez. The team agreed.", [("PERSON", "Maria Gonzalez")]),
    ("The team agreed. Please keep it short.", []),
    ("MY NAME IS jouko", [("PERSON", "jouko")]),
    ("you can call me jouko", [("PERSON", "jouko")]),
])
def test_person_detector_products_and_lower_case_cues(found, text, expected):
    assert [f for f in found(text) if f[0] == "PERSON"] == expected


# the code-shape check as it was: one alternation
_CODE_SHAPES_ONE_REGEX = re.compile(
    r"\b\d+\.\d+\.\d+\b|`|\w\(\)|\b[a-z]+_[a-z_]+\b|\b\w+\.(?:py|js|ts|c|h|go|rs|rb|php|java|so|dll|json|ya?ml|xml|"
    r"html?|cfg|ini|toml)\b|</?[a-z]+>|\bcve-\d")
_SHAPES = ["1.2.3", "v1.2.3", "a1.2.3", "10.20.30", "1.2", "1.2.3a", "é1.2.3", "_1.2.3", "`", "f()", "()", " ()", "é()",
           "a_b", "_a", "a_", "x.py", ".py", "é.py", "_.json", "x.pyc", "x.yml", "<a>", "</b>", "< a>", "cve-1", "xcve-1",
           "cve-", "٣.٤.٥", "x", " ", ".", "\n", "1", "a", "_", "-"]


@pytest.mark.parametrize("shape", _SHAPES)
def test_code_shapes_match_the_one_regex(shape):
    from fedinf.privacy.detectors.people import _code_shaped

    for text in (shape, f"see {shape} here", f"{shape}{shape}", f"x{shape}", f"{shape}x"):
        assert _code_shaped(text) == (_CODE_SHAPES_ONE_REGEX.search(text) is not None), text


@_SETTINGS
@given(st.lists(st.sampled_from(_SHAPES) | st.text(alphabet="ab1_.()<>/`- é٣", max_size=6), max_size=10).map("".join))
def test_code_shapes_match_the_one_regex_on_generated_text(text):
    from fedinf.privacy.detectors.people import _code_shaped

    assert _code_shaped(text) == (_CODE_SHAPES_ONE_REGEX.search(text) is not None)


# --------------------------------------------------------------------------- the per-piece memo

def _fresh_detect(clf: Classifier, texts: list[str], monkeypatch: pytest.MonkeyPatch) -> tuple:
    """``clf.detect(texts)`` with the memo out of the way (nothing looked up, nothing stored)."""
    from fedinf.privacy import classifier as mod

    with monkeypatch.context() as m:
        m.setattr(mod, "MEMO_CHARS", -1)
        return clf.detect(texts)


_MEMO_CASES = [
    ["You are a helpful assistant.", "Mail bob@example.org about the order."],
    ["card 4111 1111", "1111 1111 please"],  # a card number split over two pieces: `taken` comes from the memo
    ["my name is anna lindqvist", "call me"], ["SSN: 536-22-1234", "SSN: 536-22-1234"],
    ["c2tfbGl2ZV9hYmNkZWZnaGlqa2xtbm9wcXJzdHV2d3h5ejAx", ""],  # an encoded blob: decoded entities are memoised too
    ["Ｍｙ ｐｈｏｎｅ： ＋４４ ２０ ７９４６ ０９５８", "IBAN DE89 3704 0044 0532 0130 00"],  # normalised offsets map back
]


@pytest.mark.parametrize("texts", _MEMO_CASES)
def test_memoised_pieces_give_what_a_fresh_classification_gives(clf, texts, monkeypatch):
    """A piece's entities from the memo equal those detected afresh, in every position of the request (sources,
    offsets in the original text, split values across pieces, decoded blobs, normalised text)."""
    fresh = _fresh_detect(clf, texts, monkeypatch)
    assert clf.detect(texts) == fresh  # stores (or hits, if an earlier test sent the same piece)
    assert all(t in clf._memo for t in texts)
    assert clf.detect(texts) == fresh  # hits
    assert clf.detect(list(reversed(texts))) == _fresh_detect(clf, list(reversed(texts)), monkeypatch)


@_SETTINGS
@given(st.lists(_texts, min_size=1, max_size=3))
def test_memoised_pieces_match_on_generated_text(clf, texts):
    from fedinf.privacy import classifier as mod

    first, again = clf.detect(texts), clf.detect(texts)
    saved = mod.MEMO_CHARS
    mod.MEMO_CHARS = -1  # (not monkeypatch: hypothesis runs this body many times in one test)
    try:
        fresh = clf.detect(texts)
    finally:
        mod.MEMO_CHARS = saved
    assert first == again == fresh


def test_the_memo_is_bounded_and_skips_long_pieces(monkeypatch):
    """At most MEMO_PIECES pieces, the oldest dropped first; pieces over MEMO_CHARS are never kept."""
    from fedinf.privacy import classifier as mod

    monkeypatch.setattr(mod, "MEMO_PIECES", 8)
    clf = Classifier(Classifier.from_config().detectors)
    for i in range(30):
        clf.detect([f"note number {i} for the team"])
    assert len(clf._memo) == 8 and "note number 29 for the team" in clf._memo
    assert "note number 0 for the team" not in clf._memo
    long = "plain words " * (mod.MEMO_CHARS // 12 + 1)
    clf.detect([long])
    assert long not in clf._memo and len(clf._memo) == 8


def test_the_memo_can_be_turned_off():
    clf = Classifier.from_config(memo=False)
    assert clf.detect(["Mail bob@example.org"]) == Classifier.from_config().detect(["Mail bob@example.org"])
    assert clf._memo == {}


_CUE_PIECES = ["account", "acct", "iban", "card", "ssn", "routing", "number", "account number", "no", "#", " ", "\n",
               "-", ":", "x", "é", "İ", "7", "1234", "0000 1111"]


@_SETTINGS
@given(pieces=st.lists(st.lists(st.sampled_from(_CUE_PIECES) | st.text(max_size=4), max_size=30).map("".join),
                       min_size=1, max_size=3),
       windows=st.lists(st.tuples(st.integers(0, 2), st.integers(0, 120), st.integers(0, 120)), min_size=1,
                        max_size=12))
def test_context_windows_answered_from_a_piece_scan_match_a_search_per_window(clf, pieces, windows):
    """``_Cues._search`` answers a window from the piece's matches found once; it must give what searching the
    window gives (``rx.search(lower, lo, hi)``) for any window: matches straddling its start, ending past its end,
    words cut short by it, a letter right after it, Unicode that lower-casing changes."""
    from fedinf.privacy.context import _Cues

    rx = clf._split_cues
    cues = _Cues(pieces, rx)
    for j, lo, hi in windows:
        j = min(j, len(pieces) - 1)
        lower = cues.lower[j]
        lo, hi = min(lo, len(lower)), min(max(lo, hi), len(lower))
        m = rx.search(lower, lo, hi)
        assert cues._search(rx, j, lo, hi) == (m.group() if m is not None else ""), (lower, lo, hi)


def test_a_table_of_numbers_is_classified_in_milliseconds_per_kilobyte_not_tens(clf):
    """Regression guard for the context search per pair of digit runs (number-heavy text: a CSV table): the
    split-value pass must not search the text once per run (this asserts the work, not a time: the window search
    runs only where a piece's own matches cannot answer)."""
    import random
    from unittest import mock

    rng = random.Random(1)
    table = "\n".join(f"{rng.randint(1, 99999)},{rng.randint(1, 9999)}.{rng.randint(0, 99):02d},"
                      f"2024-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d},{rng.randint(100, 999)}"
                      for _ in range(200))
    text = "Account statement\n" + table
    real = clf._split_cues
    calls = {"search": 0}

    class Counting:
        pattern = real.pattern

        def search(self, *a):
            calls["search"] += 1
            return real.search(*a)

        def finditer(self, *a):
            return real.finditer(*a)

    with mock.patch.object(clf, "_split_cues", Counting()):
        clf.classify([text])
    assert calls["search"] < 20  # was one per pair of neighbouring runs: ~1,600 here


_NUMBER_PIECES = _CUE_PIECES + ["4539 7709", "1453-4169", "DE89 3704", "0044 0532 0130 00", "123-45-6789", "000123456789",
                                "ends", "starts", "card number", "iban:", "routing 021000021", "x7", "7x"]


@_SETTINGS
@given(st.lists(st.lists(st.sampled_from(_NUMBER_PIECES) | st.text(max_size=3), max_size=16).map(" ".join),
                min_size=1, max_size=4))
def test_the_split_value_pass_skipped_without_any_context_word_finds_what_it_would_find(clf, monkeypatch, texts):
    """``_Cues.may_be_near`` lets the split-value pass skip a text where no window can hold a context word; with
    the check forced to say yes, the pass must find exactly the same parts."""
    from fedinf.privacy.context import _Cues, across

    def run() -> list:
        return list(across(clf._split_detectors, texts, {}, split=clf._split_detectors, split_cues=clf._split_cues))

    fast = run()
    with monkeypatch.context() as patched:  # undone after each example
        patched.setattr(_Cues, "may_be_near", lambda self, rx, runs: True)
        assert run() == fast
