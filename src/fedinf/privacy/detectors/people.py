"""People and places without a model download: person names, street addresses, dates of birth.

Person names come from capitalised token sequences scored against a shipped lexicon (``data/lexicon.json``: US Census
first names and surnames, public domain; SCOWL English words, permissive licence - see ``data/NOTICE.md``):

- a token is a *name* (in a name list and not an English word), *ambiguous* (both, e.g. "White", "Will"), a *word*
  (English only), or *unknown* (neither: often a foreign name, sometimes a place or brand);
- a title (Mr, Dr, ...) or a strong cue ("my name is", "Name:", "dear") makes the following tokens a name;
- two or more tokens with at least one name and no plain English word are a name; so are two unknown tokens;
- one name token alone counts, one unknown token alone counts mid-sentence with a lower score;
- organisation and street suffixes ("Inc", "Street") veto the sequence.

Street addresses are assembled from parts (house number + street with an English or European street suffix,
"ul./Rua/Via/Rue" + name + number, apartment/suite/box units, US military PSC/Unit/DPO lines, "City, ST 12345"), and
a block of short lines after a part (city, region, postcode, country) is merged into the same address.
Dates of birth are dates with a birth cue nearby.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from importlib import resources

from fedinf.privacy.detector import Detector, PatternDetector, Span, TextView

_UPPER = "A-Z" + "".join(
    c for c in map(chr, list(range(0xC0, 0x250)) + list(range(0x391, 0x3AA)) + list(range(0x400, 0x430)))
    if c.isupper()
)
_L = r"[^\W\d_]"  # any letter
# the class comes first and the lookbehind second so that the regex engine can skip ahead to capitals quickly
_CAP_TOKEN = re.compile(rf"[{_UPPER}](?<![\w'’\-][{_UPPER}])(?:{_L}|['’\-](?={_L}))*\.?")
_PARTICLES = frozenset({"van", "von", "de", "da", "di", "del", "della", "der", "den", "du", "le", "la", "bin",
                        "ibn", "al", "el", "dos", "das", "y", "ter", "ten", "zu", "af"})
_TITLES = frozenset({"mr", "mrs", "ms", "miss", "mx", "dr", "prof", "professor", "sir", "madam", "dame", "lord",
                     "lady", "rev", "fr", "sr", "sra", "srta", "herr", "frau", "mme", "mlle", "m", "capt", "col",
                     "gen", "sgt", "lt", "officer", "nurse", "judge", "senator", "president", "doctor", "señor",
                     "señora", "signor", "signora", "dott"})
# organisation/place words: the whole capitalised sequence is not a person ("Acme Group", "Hotel Adlon")
_VETO = frozenset({"inc", "ltd", "llc", "gmbh", "corp", "corporation", "company", "co", "plc", "ag", "sa", "bv",
                   "university", "college", "school", "bank", "group", "foundation", "institute", "hospital",
                   "hotel", "restaurant", "orchestra", "band", "weekly", "times", "news", "airlines", "airport",
                   "church", "river", "mountain", "lake", "county", "city", "state", "republic", "kingdom", "ocean",
                   "sea", "island", "park", "station", "center", "centre", "museum", "club", "team", "records",
                   "studios", "labs", "technologies", "systems", "solutions", "services", "partners", "associates",
                   "holdings", "software", "research", "consulting", "media", "international", "global",
                   "service", "cloud", "platform", "api", "app", "framework", "library", "server", "engine"})
# street and unit words: the sequence is cut before them ("Diana Usamov Suite 913" -> "Diana Usamov")
_CUT = frozenset({"street", "st", "road", "rd", "avenue", "ave", "lane", "boulevard", "blvd", "drive", "rua", "via",
                  "viale", "rue", "calle", "avenida", "ul", "ulica", "piazza", "corso", "plaza", "strada", "carrer",
                  "paseo", "largo", "travessa", "praça", "chemin", "allée", "apt", "suite", "unit", "box", "vicolo"})
_CAMEL = re.compile(r"[^\W\d_][^\W\d_]*?[a-z][A-Z]|[A-Z]{2}[a-z]")
_NAME_CAPS = re.compile(r"^(?:Mc|Mac|O'|O’|D'|D’|De|Di|Da|La|Le|Van|Von|Fitz)[A-Z][a-z]+$")
# form labels and other capitalised non-names that the word list lacks
_LABELS = frozenset({"e-mail", "email", "website", "fax", "tel", "phone", "mobile", "desk", "address", "name",
                     "zip", "dob", "ssn", "iban", "url", "id", "pin", "ok", "okay", "hi", "hello", "thanks", "re",
                     "fwd", "cc", "bcc", "subject", "when", "where", "who", "what", "date", "time", "user", "bot",
                     "customer", "agent", "assistant", "system", "nan", "none", "null"})
# words after a single capitalised token at a sentence start that make it a subject: "Jouko is from ..."
_SUBJECT_NEXT = frozenset({"is", "was", "has", "had", "will", "would", "said", "says", "lives", "lived", "works",
                           "worked", "can", "could", "does", "did", "wants", "went", "and", "began", "told", "asked"})
_MONTHS_DAYS = frozenset({"january", "february", "march", "april", "may", "june", "july", "august", "september",
                          "october", "november", "december", "monday", "tuesday", "wednesday", "thursday", "friday",
                          "saturday", "sunday", "jan", "feb", "mar", "apr", "jun", "jul", "aug", "sep", "sept", "oct",
                          "nov", "dec", "mon", "tue", "wed", "thu", "fri", "sat", "sun"})
# cues: the last one to three words before a capitalised sequence (lower case, trailing ':' and ',' stripped)
_CUES = frozenset({
    "my name is", "my name's", "name is", "name", "names", "full name", "patient", "call me", "i am", "i'm", "im",
    "this is", "signed", "regards", "sincerely", "dear", "hi", "hello", "hey", "thanks", "cheers", "contact", "attn",
    "from", "to", "named", "called", "mr", "mr.", "mrs", "mrs.", "ms", "ms.", "dr", "dr.", "by", "customer",
    "account holder", "cardholder", "holder", "kid", "son", "daughter", "wife", "husband", "brother", "sister",
    "mother", "father", "friend", "colleague", "boss", "manager", "client", "employee", "tenant", "applicant",
    "beneficiary", "recipient", "sender", "author", "user", "member", "guest", "passenger", "driver", "owner",
    "under", "it to", "with", "for", "and", "about", "ask", "meet", "met", "tell", "told", "asked", "thank",
})
_LOWER_CUE = re.compile(r"(?:my name is|my name's|name is|call me)\s+")  # not "name:": YAML and code
_WORD = re.compile(rf"(?<![\w'’\-]){_L}+(?:['’\-]{_L}+)*(?![\w])")

# English function words and code literals: never part of a name, even where a surname list has them ("In", "True")
_FUNCTION = frozenset({"a", "an", "the", "in", "on", "at", "of", "for", "to", "from", "with", "by", "and", "or", "as",
                       "is", "if", "when", "while", "this", "that", "these", "those", "it", "its", "all", "any",
                       "some", "no", "not", "but", "so", "then", "than", "via", "per", "into", "onto", "upon", "after",
                       "before", "since", "until", "where", "which", "who", "how", "why", "true", "false", "none",
                       "null", "nil", "nan", "yes", "also", "only", "see", "use", "users", "update", "fixed"})
# German and French function words: "Der Kunde", "Bitte", "Merci" start sentences, they are no names
_FOREIGN_FUNCTION = frozenset({"der", "die", "das", "dem", "ein", "eine", "einen", "einem", "und", "oder", "aber",
                               "mit", "für", "sie", "ich", "wir", "bitte", "danke", "une", "et", "pour", "avec",
                               "dans", "nous", "vous", "merci", "bonjour", "les", "auch", "noch"})
# prose in German or French: there every noun is capitalised ("die Rechnung") or names are written differently;
# three distinct function words of one language mark it (_GERMAN_WORDS, _FRENCH_WORDS below)
# people's names used as technical terms (algorithms, checks, attacks): "Luhn check", "Bleichenbacher attack"
_EPONYMS = frozenset({"luhn", "verhoeff", "levenshtein", "hamming", "bayes", "bayesian", "fourier", "gauss",
                      "gaussian", "markov", "dijkstra", "bleichenbacher", "diffie", "hellman", "huffman", "kalman",
                      "boolean", "lamport", "merkle", "schnorr", "feistel", "vigenere", "karatsuba", "jaccard",
                      "poisson", "bernoulli", "laplace", "lagrange", "kruskal", "warshall", "fulkerson", "tarjan",
                      "kosaraju", "corasick", "lempel"})
# cues that are ordinary prepositions: with nothing else they do not make an English word or a product a name
_WEAK_CUES = frozenset({"from", "to", "by", "with", "for", "and", "about", "under", "it to"})
# cues that are about a person in any register; role nouns ("user", "client", "owner") are not in technical text,
# where they precede accounts and products ("as the user Spark", "the client Docker")
_PERSONAL_CUES = frozenset({"my name is", "my name's", "name is", "name", "names", "full name", "patient", "call me",
                            "i am", "i'm", "im", "this is", "signed", "regards", "sincerely", "dear", "hi", "hello",
                            "hey", "thanks", "cheers", "attn", "named", "called", "mr", "mr.", "mrs", "mrs.", "ms",
                            "ms.", "dr", "dr.", "wife", "husband", "brother", "sister", "mother", "father", "son",
                            "daughter", "kid", "friend", "colleague", "boss", "thank", "ask", "asked", "tell", "told",
                            "meet", "met", "cardholder", "account holder", "beneficiary", "applicant", "tenant"})
# what follows a product name, never a person's: "Wagtail 4.1.4", "Trac before 0.11.6", "Ansible versions",
# "Docker containers", "Scrapy plugin"
_VERSION_AFTER = re.compile(
    r"(?:'s|’s)?[ \t]+(?:v?\d+(?:\.\d+)+\b|v\d|versions\b|version[ \t]+v?\d|releases?[ \t]+v?\d|"
    r"(?:before|prior to|through|thru|up to|until|since|below|<=?|>=?|=)(?: and including)?[ \t]+(?:versions?[ \t]+|v)?\d|"
    r"(?:from|and|or)[ \t]+(?:versions?[ \t]+v?\d|v?\d+\.\d)|"
    r"[ \t]*[a-z][\w.\-]*[ \t]+(?:v?\d+(?:\.\d+)+\b|(?:before|prior to|through|up to)[ \t]+v?\d))", re.IGNORECASE)
_PRODUCT_NOUNS = frozenset({
    "plugin", "plugins", "plug-in", "module", "modules", "package", "packages", "library", "libraries", "server",
    "servers", "client", "clients", "container", "containers", "notebook", "notebooks", "code", "callback",
    "callbacks", "cluster", "clusters", "project", "projects", "app", "apps", "application", "applications",
    "instance", "instances", "site", "sites", "database", "databases", "engine", "engines", "implementation",
    "implementations", "class", "classes", "usage", "payload", "payloads", "functionality", "filesystem",
    "filesystems", "repository", "repositories", "framework", "frameworks", "extension", "extensions", "integration",
    "integrations", "sdk", "api", "apis", "cli", "component", "components", "attack", "attacks", "vulnerability",
    "vulnerabilities", "webserver", "ui", "backend", "backends", "frontend", "deployment", "deployments", "image",
    "images", "binary", "binaries", "daemon", "service", "services", "protocol", "format", "files", "file", "crate",
    "gem", "bot", "connector", "driver", "drivers", "provider", "providers", "endpoint", "endpoints", "dashboard",
    "controller", "operator", "runtime", "compiler", "parser", "template", "templates", "theme", "themes", "widget",
    "widgets", "node", "nodes", "pipeline", "pipelines", "job", "jobs", "task", "tasks", "worker", "workers",
    "environment", "environments", "installation", "installations", "configuration", "source", "releases",
    "users", "administrators", "admins", "developers", "maintainers", "team", "community", "ecosystem", "docs",
    "documentation", "wiki", "issue", "issues", "bug", "bugs", "advisory", "patch", "patches", "fix", "upgrade"})
# signs of technical text (advisories, code, logs): there a lone capitalised word is usually a product
_TECH_TERMS = frozenset(
    "attacker attackers xss csrf ssrf injection overflow malicious arbitrary remote api library package plugin "
    "plugins module modules function parameter server configuration repository github python javascript java "
    "version versions release releases fixed affected cve runtime endpoint backend frontend database kubernetes "
    "docker linux windows http https url json yaml xml html sql regex exception traceback bug commit framework sdk "
    "cli untrusted escalation payload payloads traversal buffer heap cross-site scripting use-after-free "
    "certificate certificates ssl tls token tokens cookie cookies header headers component webassembly wasm memory "
    "kernel shell".split())
_TECH_PREFIXES = ("vulnerab", "exploit", "install", "deploy", "upgrade", "patch", "debug", "compil", "crash",
                  "deserializ", "serializ", "sanitiz", "authenticat", "privilege", "bypass", "cryptograph", "encrypt",
                  "sandbox", "dependenc")
_TECH_PHRASES = ("denial of service", "source code", "stack trace", "pull request", "open source", "null pointer",
                 "race condition", "garbage collection", "command execution", "code execution")
_GERMAN_WORDS = frozenset("und der die das nicht ist mit für sie ein eine ich wir bitte noch auch hat haben wird "
                          "werden sind von zu auf den dem im sich oder aber wenn dass kann möchte".split())
_FRENCH_WORDS = frozenset("le la les et est une des pour avec dans sur nous vous pas que qui du au aux merci ce "
                          "cette je il elle sont mais ou leur très".split())
_LOWER_WORD = re.compile(r"[^\W\d_][^\W\d_\-]*(?:-[^\W\d_]+)*")
# code-shaped tokens: a three-part version, a backtick, "f()", an identifier with "_", a file name, an HTML tag, a CVE
# id. Each shape is its own regex behind a cheap ``in`` check (one alternation of them all cost a regex attempt at
# every position of the text); the version and file-name regexes start with a class or a literal so that the regex
# engine skips ahead (``\d(?<!\w\d)\d*`` is ``\b\d+``, ``\.(?<=\w\.)`` is the ``.`` of ``\b\w+\.``).
_CODE_SHAPES: tuple[tuple[str, re.Pattern[str] | None], ...] = (
    (".", re.compile(r"\d(?<!\w\d)\d*\.\d+\.\d+\b")),
    ("`", None),
    ("()", re.compile(r"\w\(\)")),
    ("_", re.compile(r"\b[a-z]+_[a-z_]+\b")),
    (".", re.compile(r"\.(?<=\w\.)(?:py|js|ts|c|h|go|rs|rb|php|java|so|dll|json|ya?ml|xml|html?|cfg|ini|toml)\b")),
    ("<", re.compile(r"</?[a-z]+>")),
    ("cve-", re.compile(r"\bcve-\d")),
)

NAME, AMBIGUOUS, WORD, UNKNOWN, TITLE, PROPER, INITIAL, VETO, CUT = range(9)
_NAMEISH = frozenset({NAME, AMBIGUOUS, UNKNOWN, PROPER})


@dataclass(frozen=True)
class Lexicon:
    """Name and word lists, lower-case. Loaded once per classifier from the shipped ``lexicon.json``."""

    first: frozenset[str]
    last: frozenset[str]
    words: frozenset[str]
    proper: frozenset[str]
    placelike: frozenset[str]

    @classmethod
    def load(cls) -> "Lexicon":
        raw = json.loads(resources.files("fedinf.privacy").joinpath("data/lexicon.json").read_text("utf-8"))
        return cls(*(frozenset(raw[k]) for k in ("first", "last", "words", "proper", "placelike")))

    def kind(self, token: str) -> int:
        t = token.rstrip(".").lower()
        if t.endswith(("'s", "’s")):
            t = t[:-2]
        if len(t) == 1:
            return INITIAL
        if t in _VETO:
            return VETO
        if t in _CUT:
            return CUT
        if "'" in t or "’" in t:  # contractions: I'm, I'd, Don't
            return WORD
        if t in _FUNCTION or t in _EPONYMS or t in _FOREIGN_FUNCTION:
            return WORD
        if t in _TITLES and (token.endswith(".") or t in ("mr", "mrs", "ms", "dr", "prof")):
            return TITLE
        named = t in self.first or t in self.last
        if t in self.words or t in _MONTHS_DAYS or t in self.placelike:
            return AMBIGUOUS if named and t not in _MONTHS_DAYS else WORD
        if token.isupper() and len(t) > 1:
            return WORD  # acronyms and all-caps city lines ("IBAN", "TV", "UPPLANDS VÄSBY")
        if _CAMEL.search(token) and not _NAME_CAPS.match(token):
            return WORD  # code and product identifiers: "BaseModel", "OpenAI", "SQLite" (not "McDowell")
        if "-" in t and any(p in self.words and p not in self.first for p in t.split("-")):
            return WORD  # "OpenAI-compatible", "Set-up" (not "Anne-Lotte")
        if t in _LABELS:
            return WORD
        if named:
            return NAME
        if t in self.proper or t in _TITLES:
            return PROPER
        return UNKNOWN


def _cue(lower: str, pos: int) -> str | None:
    """The cue right before ``pos`` ("my name is", "dear", "by"), or None."""
    words = lower[max(0, pos - 32):pos].split()
    for k in (3, 2, 1):
        if len(words) >= k:
            cue = " ".join(words[-k:]).rstrip(":,")
            if cue in _CUES:
                return cue
    return None


def _guarded(view: TextView) -> bool:
    """Text where capitalisation says little about names: technical text, German or French prose."""
    return _technical(view) or _foreign(view)


def _words(view: TextView) -> frozenset[str]:
    """The distinct lower-case words of the text (computed once per text)."""
    got = view.memo("people.words", lambda: frozenset(_LOWER_WORD.findall(view.lower)))
    assert isinstance(got, frozenset)
    return got


def _foreign(view: TextView) -> bool:
    def compute() -> bool:
        words = _words(view)
        return len(words & _GERMAN_WORDS) >= 3 or len(words & _FRENCH_WORDS) >= 3
    return bool(view.memo("people.foreign", compute))


def _technical(view: TextView) -> bool:
    """Does the text read as technical (code, advisories, logs)? Two distinct technical words, or one and a
    code-shaped token (a three-part version, an identifier with ``_``, a file name, ``f()``, a backtick)."""
    def compute() -> bool:
        words = _words(view)
        found = set(words & _TECH_TERMS)
        found.update(p for w in words if w.startswith(_TECH_PREFIXES) for p in _TECH_PREFIXES if w.startswith(p))
        if len(found) < 2:
            found.update(p for p in _TECH_PHRASES if p in view.lower)
        return len(found) >= 2 or (len(found) == 1 and _code_shaped(view.lower))
    return bool(view.memo("people.technical", compute))


def _code_shaped(lower: str) -> bool:
    """Does the (lower-case) text hold a code-shaped token (see ``_CODE_SHAPES``)?"""
    return any(need in lower and (rx is None or rx.search(lower) is not None) for need, rx in _CODE_SHAPES)


_IDENT_PUNCT = "._/-:"


def _echoed_as_identifier(text: str, token: str, unknown: bool) -> bool:
    """Does ``token`` (lower case) occur in ``text`` written in lower case as part of an identifier - a module
    path, a package or file name, a URL path (``airflow.contrib``, ``django-grappelli``, ``/ansible/``) - or, for a
    word no name list knows, as a plain lower-case word? E-mail addresses do not count (``john.smith@...``)."""
    if len(token) < 3:
        return False
    i = text.find(token)
    while i >= 0:
        j = i + len(token)
        before, after = text[i - 1:i] if i else "", text[j:j + 1]
        if not (before.isalnum() or after.isalnum()):
            ident = (before and before in _IDENT_PUNCT) or (after and after in _IDENT_PUNCT and
                                                           text[j + 1:j + 2].isalnum())
            if ident or unknown:
                lo, hi = text.rfind(" ", 0, i) + 1, text.find(" ", j)
                if "@" not in text[lo:hi if hi >= 0 else len(text)]:
                    return True
        i = text.find(token, j)
    return False


def _sentence_start(text: str, pos: int) -> bool:
    i = pos - 1
    while i >= 0 and text[i] in " \t\"'(“‘*-":
        i -= 1
    return i < 0 or text[i] in ".!?\n;>|#"


def _trim_possessive(text: str, start: int, end: int) -> int:
    if text[end - 2:end] in ("'s", "’s"):
        return end - 2
    return end - 1 if text[end - 1] == "." and end - start > 2 else end


class PersonDetector:
    """Person names from capitalised sequences, name lists and cues; lower-case names after "my name is"."""

    name = "person"
    entities = ("PERSON",)

    def __init__(self, lexicon: Lexicon) -> None:
        self.lex = lexicon
        self._kinds: dict[str, int] = {}

    def _kind(self, token: str) -> int:
        k = self._kinds.get(token)
        if k is None:
            k = self.lex.kind(token)
            if len(self._kinds) < 100_000:
                self._kinds[token] = k
        return k

    def detect(self, view: TextView) -> Iterator[Span]:
        text = view.text
        yield from self._lowercase_after_cue(view)
        if view.text == view.lower:
            yield from self._lowercase_names(view)
            return
        seqs = list(self._sequences(text))
        # a capitalised sequence followed by a version or a product noun is a product; so is the same word elsewhere
        # in the same text ("Wagtail 4.1.4 ... upgrade Wagtail"): one sense per text. Both are looked for only where
        # a sequence reads as a name (in ordinary prose none does: "The", "Please").
        memo: list[set[str]] = []

        def products() -> set[str]:
            if not memo:
                memo.append({text[s:e].rstrip(".").lower() for seq in seqs
                             if self._product_after(text, view.lower, seq[-1][1]) for s, e in seq})
            return memo[0]

        for seq in seqs:
            kinds = [self._kind(text[s:e]) for s, e in seq]
            if _NAMEISH.isdisjoint(kinds) or VETO in kinds:  # fast exit: "The", "It", "Acme Group"
                continue
            for span in self._judge(view, seq, kinds, products):
                if not self._product_after(text, view.lower, seq[-1][1]):
                    yield span

    def _sequences(self, text: str) -> Iterator[list[tuple[int, int]]]:
        """Runs of capitalised tokens separated by one space (or a particle such as "van")."""
        seq: list[tuple[int, int]] = []
        last_end = -1
        for m in _CAP_TOKEN.finditer(text):
            s, e = m.span()
            if seq and (s != last_end + 1 or text[last_end] != " "):  # not exactly one space: maybe a particle
                gap = text[last_end:s]
                if not (gap[:1] == " " and gap[-1:] == " " and gap.strip().lower() in _PARTICLES):
                    yield seq
                    seq = []
            elif seq and text[last_end - 1] == "." and last_end - seq[-1][0] > 3 \
                    and text[seq[-1][0]:last_end - 1].lower() not in _TITLES:  # "Cyprus. Producer": a full stop
                yield seq
                seq = []
            seq.append((s, e))
            last_end = e
            if text[e - 1] == "s" and text[e - 2] in "'’":  # a possessive ends the name: "Ström's Cautionary Tales"
                yield seq
                seq = []
        if seq:
            yield seq

    @staticmethod
    def _product_after(text: str, lower: str, end: int) -> bool:
        """Is the sequence ending at ``end`` followed by a version ("4.1.4", "before 2.3") or a product noun?"""
        if _VERSION_AFTER.match(text, end):
            return True
        if text[end:end + 1] != " ":
            return False
        nxt = lower[end + 1:end + 24].split(maxsplit=1)
        return bool(nxt) and nxt[0].rstrip(".,;:)") in _PRODUCT_NOUNS

    def _judge(self, view: TextView, seq: list[tuple[int, int]], kinds: list[int],
               products: Callable[[], set[str]]) -> Iterator[Span]:
        """A span when the sequence (its tokens' ``kinds``: a name-like one, no veto word) reads as a person's name
        (``products``: the text's product words)."""
        text, lower = view.text, view.lower
        if kinds[0] == INITIAL and text[seq[0][1] - 1] != "." and _sentence_start(text, seq[0][0]):
            kinds, seq = kinds[1:], seq[1:]  # "A Dask cluster": the article, not an initial
        titled = False
        while kinds and kinds[0] == TITLE:
            titled, kinds, seq = True, kinds[1:], seq[1:]
        if CUT in kinds:
            i = kinds.index(CUT)
            kinds, seq = kinds[:i], seq[:i]
        if not seq or len(seq) > 5:
            return
        start = seq[0][0]
        cue = _cue(lower, start)
        sent_start = _sentence_start(text, start)
        if not cue and not titled:
            # leading English words ("Why", "The") at a sentence start are not part of a name
            while len(kinds) > 1 and kinds[0] == WORD and _sentence_start(text, seq[0][0]):
                kinds, seq = kinds[1:], seq[1:]
            start = seq[0][0]
            sent_start = _sentence_start(text, start)
        score = self._score(kinds, cue is not None, titled, sent_start)
        if score == 0 and self._first_last(text, seq, kinds):
            score = 0.6
        if score == 0 and sent_start and len(kinds) == 1 and kinds[0] in (NAME, UNKNOWN) \
                and self._subject(text, lower, seq[0][1]):
            score = 0.6 if kinds[0] == NAME else 0.5
        if score == 0:
            return
        strong = titled or (cue is not None and cue not in _WEAK_CUES
                            and (cue in _PERSONAL_CUES or not _technical(view)))
        if not strong and self._is_product(text, seq, kinds, products()):
            return
        if score > 0.5 and not strong:
            score = self._weak_evidence(view, kinds, cue, score)
        if score > 0:
            yield Span(start, _trim_possessive(text, seq[-1][0], seq[-1][1]), "PERSON", score)

    def _first_last(self, text: str, seq: list[tuple[int, int]], kinds: list[int]) -> bool:
        """Two or three tokens that read as English words but are a first name then a surname ("Maria Gonzalez",
        "Rose Miller"): a name when nothing else in the sequence is only an English word."""
        if not 2 <= len(kinds) <= 3 or WORD in kinds or kinds[0] not in (NAME, AMBIGUOUS):
            return False
        first = text[seq[0][0]:seq[0][1]].rstrip(".").lower()
        last = text[seq[-1][0]:seq[-1][1]].lower().removesuffix("'s").removesuffix("’s")
        return first in self.lex.first and last in self.lex.last and kinds[-1] in (NAME, AMBIGUOUS)

    @staticmethod
    def _weak_evidence(view: TextView, kinds: list[int], cue: str | None, score: float) -> float:
        """Without a title or a strong cue: one English-word-or-name token after a preposition ("with Flight",
        "for Rust") is weak, one unknown word after a preposition is a little stronger; in technical text and in
        German or French prose only a known first name or surname in a sequence of two or more words still
        counts (scores at 0.5 are still reported and pseudonymized, they only do not raise the class)."""
        names, unk = kinds.count(NAME), kinds.count(UNKNOWN)
        real = len(kinds) - kinds.count(INITIAL)
        if _guarded(view) and not (names >= 1 and real >= 2):
            return 0.5
        if cue is not None and real == 1 and names == 0:
            return 0.6 if unk else 0.5
        return score

    @staticmethod
    def _is_product(text: str, seq: list[tuple[int, int]], kinds: list[int], products: set[str]) -> bool:
        """Every name-like token is known as a product in this text (seen before a version or a product noun, or
        written in lower case as part of an identifier: ``airflow.contrib``, ``django-grappelli``)."""
        toks = [(text[s:e].rstrip(".").lower(), k) for (s, e), k in zip(seq, kinds) if k in _NAMEISH]
        return bool(toks) and all(t in products or _echoed_as_identifier(text, t, k == UNKNOWN) for t, k in toks)

    @staticmethod
    def _subject(text: str, lower: str, end: int) -> bool:
        """Is the single token ending at ``end`` followed by a speaker colon, a vocative comma or a verb?"""
        nxt = text[end:end + 1]
        if nxt in (":", ","):
            return True
        words = lower[end:end + 12].split()
        return bool(words) and words[0] in _SUBJECT_NEXT

    @staticmethod
    def _score(kinds: list[int], cue: bool, titled: bool, sent_start: bool) -> float:
        names, amb, unk = kinds.count(NAME), kinds.count(AMBIGUOUS), kinds.count(UNKNOWN)
        words, proper = kinds.count(WORD), kinds.count(PROPER)
        real = names + amb + unk + words + proper  # tokens other than initials
        if real == 1:
            words += proper  # "Canada" alone is a place; in a sequence a proper noun is neutral ("Philippe Guernon")
        if real == 0:
            return 0.0
        if titled:
            return 0.9 if names + amb + unk else 0.0
        if cue:
            if words == 0:
                return 0.9 if names + unk else 0.6
            return 0.0
        if real >= 2:
            if words == 0 and names >= 1:
                return 0.85
            if words == 0 and unk >= 1:
                return 0.6
            if names >= 1 and names + unk >= 2 and words <= 1 and kinds[-1] != WORD:
                return 0.55
            return 0.0
        if names:
            return 0.85 if len(kinds) > 1 else (0.6 if sent_start else 0.7)
        if unk:
            return 0.6 if len(kinds) > 1 else (0.0 if sent_start else 0.5)
        return 0.0

    def _lowercase_names(self, view: TextView) -> Iterator[Span]:
        """All-lower-case text: a first name (not an English word), extended by initials and surnames."""
        text, lex = view.text, self.lex
        toks = [(m.start(), m.end(), m.group()) for m in _WORD.finditer(text)]
        i = 0
        while i < len(toks):
            s, e, t = toks[i]
            if t not in lex.first or t in lex.words or len(t) < 3:
                i += 1
                continue
            j, end = i + 1, e
            while j < len(toks) and text[end:toks[j][0]] in (" ", ". ") and j - i < 4:
                w = toks[j][2]
                if len(w) == 1 or ((w in lex.last or w in lex.first or w not in lex.words) and len(w) > 2):
                    end = toks[j][1]
                    j += 1
                else:
                    break
            while j - 1 > i and len(toks[j - 1][2]) == 1:  # never end on an initial
                j -= 1
                end = toks[j - 1][1]
            yield Span(s, end, "PERSON", 0.7 if j - i > 1 else 0.55)
            i = j

    def _lowercase_after_cue(self, view: TextView) -> Iterator[Span]:
        if "name" not in view.lower and "call me" not in view.lower:  # every cue holds one of them
            return
        for m in _LOWER_CUE.finditer(view.lower):
            pos, end, count = m.end(), None, 0
            start = pos
            for w in _WORD.finditer(view.text, pos, min(len(view.text), pos + 60)):
                if view.text[pos:w.start()].strip() or count == 3:
                    break
                t = w.group().lower()
                if not w.group()[0].islower():
                    break  # capitalised: the sequence scan handles it
                if t in self.lex.words and t not in self.lex.first and t not in self.lex.last:
                    break
                end, pos, count = w.end(), w.end(), count + 1
            if end is not None:
                yield Span(start, end, "PERSON", 0.8)


# ---------------------------------------------------------------- street addresses

_EN_SUFFIX = (r"Street|St|Avenue|Ave|Road|Rd|Boulevard|Blvd|Lane|Ln|Drive|Dr|Court|Ct|Place|Pl|Square|Sq|Terrace|"
              r"Ter|Way|Parkway|Pkwy|Highway|Hwy|Circle|Cir|Trail|Trl|Crescent|Cres|Close|Grove|Gardens|Row|Mews|"
              r"Alley|Route|Rte|Pike|Plaza|Walk|Hill|Heights|Point|Junction|Loop|Path|Ridge|Run|Crossing|Estates|"
              r"View|Villas|Green|Bypass|Causeway|Expressway|Freeway|Turnpike|Wharf|Quay|Esplanade|Parade|Rise")
_EU_MORPH = (r"straße|strasse|str\.|weg|gasse|platz|allee|ring|damm|ufer|utca|út|tér|tie|katu|kuja|polku|kaari|"
             r"gatan|vägen|väg|gränd|gata|veien|vei|vegen|gate|gaten|gade|vej|laan|straat|plein|singel|gracht|"
             r"ulica|ulitsa|iela|gatvė|tee|bakken|lia|torget|torg|stien|svingen|kroken|haugen|vænget|parken")
_EU_LEAD = (r"ul\.|u\.|útja|ulica|al\.|aleja|os\.|pl\.|rua|r\.|via|viale|vicolo|piazza|piazzale|corso|largo|rue|avenue|av\.|"
            r"avenida|calle|c/|carrer|paseo|plaza|camino|carretera|travessa|praça|estrada|boulevard|bd|chemin|allée|"
            r"impasse|quai|place|route|strada|ulitsa|prospekt|cesta|trg|utca|út|sokak|cadde|caddesi|mahallesi|"
            r"jalan|jl\.")
_W = rf"[{_UPPER}0-9][\w'’.\-]*"
_UNIT = r"(?:Apt\.?|Apartment|Suite|Ste\.?|Unit|Flat|Room|Rm\.?|Floor|Fl\.?|Box|PO Box|P\.O\. Box|Bldg\.?|#)\s*#?\s*\d+[A-Za-z]?"
_ADDRESS_PARTS = re.compile(
    rf"(?<![\w\-])(?:\d{{1,6}}[A-Za-z]?,?\s+)?(?:{_W}\s+){{0,4}}?(?:{_EN_SUFFIX})\.?(?![\w])"  # 12 Main Street
    rf"|(?<![\w\-])(?:\d{{1,6}}[A-Za-z]?\s+)?(?:{_W}\s+)?[{_UPPER}][\w'’\-]*(?:{_EU_MORPH})\.?\s+\d{{1,5}}[A-Za-z]?(?![\w])"
    rf"|(?<![\w\-])(?:PSC|Unit|USNS|USNV|USS|USCGC)\s+\d{{3,5}},?\s+Box\s+\d{{3,5}}"
    rf"|(?<![\w\-])(?:USNS|USNV|USS|USCGC)\s+[{_UPPER}][\w'’\-]*(?:[ \t][{_UPPER}][\w'’\-]*)?\s+(?:APO|FPO|DPO)\s+(?:AA|AE|AP)"
    rf"\s+\d{{5}}"
    rf"|(?<![\w\-])(?:APO|FPO|DPO)\s+(?:AA|AE|AP)\s+\d{{5}}"
    rf"|(?<![\w\-]){_UNIT}(?![\w])"
    rf"|(?<![\w\-])(?:[{_UPPER}][\w'’.\-]*\s){{0,3}}[{_UPPER}][\w'’.\-]*,\s+[A-Z]{{2}}\s+\d{{5}}(?:-\d{{4}})?(?![\w])"
)
# street-word-led parts ("Rua Diadema 1903", "ul. Miła 57"), tried only where such a word was found
_LEAD_PART = re.compile(rf"(?i:{_EU_LEAD})\s+(?:[\w'’.\-]+\s+){{0,4}}?\d{{1,5}}[A-Za-z]?(?:/\d+)?(?![\w])")
_LEAD_TAIL = re.compile(rf"(?i:{_EU_LEAD})\s+(?:[\w'’\-]+\s?){{1,4}}")  # "33 avenue de Provence": number first
_NUMBER_BEFORE = re.compile(r"(?<![\w\-.])\d{1,6}[A-Za-z]?\s+$")  # not the end of a version "0.2.3"
_LEAD_WORDS = frozenset(w.lower().rstrip(".\\").rstrip("/") for w in _EU_LEAD.split("|"))
_UNIT_ONLY = re.compile(rf"^{_UNIT}$")
# house number, one to four words, number: "28245 Puruntie 82", "46 velký průhon 426", "329 Arenales 9462"
_GENERIC = re.compile(rf"\d(?<![\w\-.#]\d)\d{{0,5}}[A-Za-z]?[ \t]+((?:{_L}[\w'’.\-]*[ \t]+){{1,4}}?)\d{{1,5}}[A-Za-z]?\.?"
                      r"(?![\w\-]|\.\d)")
_GENERIC_STOP = frozenset({"and", "or", "of", "to", "the", "for", "in", "at", "on", "by", "with", "from", "than",
                           "x", "years", "year", "days", "items", "songs", "version", "page", "pages", "chapter"})
_STATE_ZIP = re.compile(r", [A-Z]{2} \d{5}")
_ANCHOR_WORDS = frozenset(
    w.lower().rstrip(".\\") for w in (_EN_SUFFIX + "|" + _EU_LEAD + "|apt|apartment|suite|ste|unit|flat|room|rm|floor|"
                                        "fl|box|bldg|psc|usns|usnv|uss|uscgc|apo|fpo|dpo|c").split("|")
)
_MORPHS = tuple(m.replace("\\.", ".") for m in _EU_MORPH.split("|"))
_LETTERS = re.compile(r"[^\W\d_]+")
# street suffixes that are also everyday English words: alone after a number they are no street ("5. Run")
_EN_WORDLIKE = frozenset({"run", "path", "way", "view", "point", "walk", "rise", "green", "row", "close", "loop",
                          "place", "route", "crossing", "hill", "heights", "parade", "junction", "estates", "court"})
_PUNCT = ".,;:!?()[]{}\"'<>*"


def _positions(lower: str, word: str, lo: int, hi: int) -> list[int]:
    """Start offsets of ``word`` as a whole word in ``lower[lo:hi]``."""
    out, n, k = [], len(lower), len(word)
    i = lower.find(word, lo, hi)
    while i >= 0:
        if (i == 0 or not lower[i - 1].isalpha()) and (i + k >= n or not lower[i + k].isalpha()):
            out.append(i)
        i = lower.find(word, i + 1, hi)
    return out


def _is_anchor(w: str) -> bool:
    return w in _ANCHOR_WORDS or (len(w) > 4 and w.endswith(_MORPHS))
_ADDRESS_CUE = re.compile(r"address|lives? (?:at|on|in)|located|ship(?:ping)? to|deliver|send (?:it )?to|"
                          r"mail(?:ing)? to|residence|resides|home|billing|return (?:it )?to|drops? you off|"
                          r"moved to|visit|post to|street")
_BLOCK_LINE = re.compile(rf"[ \t>]*,?[ \t]*(?:[{_UPPER}0-9][\w'’.\-]*|\([\w ]+\)|nan)(?:[ \t,]+(?:[\w'’.\-]+|\([\w ]+\)))*[ \t]*,?")


class AddressDetector:
    """Street addresses: parts found by one combined regex, merged with their neighbours and the block below."""

    name = "street_address"
    entities = ("STREET_ADDRESS",)

    def __init__(self, lexicon: Lexicon) -> None:
        self.lex = lexicon

    def _plain_words(self, part: str) -> bool:
        """A part whose words are all ordinary English words and none a street word ("During 2008") is not one."""
        words = [w.lower() for w in _LETTERS.findall(part) if len(w) > 1]
        return bool(words) and all(w in self.lex.words and w not in _ANCHOR_WORDS for w in words)

    def _lead_plain(self, part: str) -> bool:
        """A part led by a street word whose other words are all English ("route is a 3") is prose."""
        words = [w.lower() for w in _LETTERS.findall(part)]
        rest = [w for w in words if w not in _ANCHOR_WORDS and not _is_anchor(w)]
        return bool(rest) and all(w in self.lex.words for w in rest)

    @staticmethod
    def _named(part: str) -> bool:
        """A street part names its street: a bare street word ("Path.", "5000 5. Run") is not an address."""
        words = [w.lower() for w in _LETTERS.findall(part)]
        return len(words) != 1 or words[0] not in _ANCHOR_WORDS or bool(_UNIT_ONLY.match(part)) \
            or part.lstrip()[:1].isdigit() and len(words[0]) > 3 and not words[0] in _EN_WORDLIKE

    def _generic(self, text: str) -> Iterator[tuple[int, int]]:
        for m in _GENERIC.finditer(text):
            words = [w.lower().strip(".") for w in m.group(1).split()]
            if any(w not in self.lex.words for w in words if len(w) > 1) and not (
                    set(words) & _GENERIC_STOP):
                yield m.span()

    def detect(self, view: TextView) -> Iterator[Span]:
        if not view.has_digit:
            return
        text = view.text
        windows, anchors = self._windows(view)
        found = {m.span() for a, b in windows for m in _ADDRESS_PARTS.finditer(text, a, b)
                 if not self._plain_words(m.group())}
        found = {(a, b) for a, b in found if text[a].isdigit() or not self._lead_plain(text[a:b])}
        found = {(a, b) for a, b in found if self._named(text[a:b])}
        # street-word-led parts: "3 via crafted content in a" is prose even with a number in front
        found.update((a, b) for a, b in self._lead_parts(text, anchors) if not self._lead_plain(text[a:b]))
        found.update(self._generic(text))
        if _technical(view):  # "Auth Bypass in crypto/x509": in technical text a street part needs its number
            found = {(a, b) for a, b in found if any(c.isdigit() for c in text[a:b])}
        parts = sorted(found)
        if not parts:
            return
        merged: list[list[int]] = []
        for s, e in parts:
            if merged and s < merged[-1][1]:
                merged[-1][1] = max(merged[-1][1], e)
            elif merged and self._joinable(text[merged[-1][1]:s]):
                merged[-1][1] = max(merged[-1][1], e)
            else:
                merged.append([s, e])
        for s, e in merged:
            only_unit = bool(_UNIT_ONLY.match(text[s:e]))
            end = self._extend_block(text, e)
            # a lone unit ("Room 12", "Box 3") is an address only with a cue or a block below it holding a postcode
            block_with_code = end > e and any(c.isdigit() for c in text[e:end])
            if only_unit and not block_with_code and not _ADDRESS_CUE.search(view.lower, max(0, s - 60), s):
                continue
            yield Span(s, end, "STREET_ADDRESS", 0.6 if only_unit and not block_with_code else 0.9)

    @staticmethod
    def _lead_parts(text: str, anchors: list[tuple[int, str]]) -> Iterator[tuple[int, int]]:
        """Parts led by a street word, matched only at the positions where such a word stands."""
        for p, w in anchors:
            if w not in _LEAD_WORDS:
                continue
            back = _NUMBER_BEFORE.search(text, max(0, p - 10), p)
            m = _LEAD_PART.match(text, p)
            if m is None and back is not None:
                m = _LEAD_TAIL.match(text, p)
            if m is not None:
                yield (back.start() if back is not None else p), m.end()

    @staticmethod
    def _windows(view: TextView) -> tuple[list[tuple[int, int]], list[tuple[int, str]]]:
        """Every address part holds a number and a street/unit keyword (or ", ST 12345"): merge the windows around
        digit runs, keep those whose words include such a keyword (a cheap ``split``), and scan only them."""
        n, lower = len(view.text), view.lower
        merged: list[list[int]] = []
        for a, b, _k in view.runs:
            lo, hi = max(0, a - 64), min(n, b + 48)
            if merged and lo <= merged[-1][1]:
                merged[-1][1] = hi
            else:
                merged.append([lo, hi])
        anchors: list[int] = []
        words_at: list[tuple[int, str]] = []
        for lo, hi in merged:
            chunk = lower[lo:hi]
            if "," in chunk:
                anchors += [m.start() for m in _STATE_ZIP.finditer(view.text, lo, hi)]
            for w in {w.strip(_PUNCT) for w in set(chunk.split())}:
                if _is_anchor(w):
                    at = _positions(lower, w, lo, hi)
                    anchors += at
                    words_at += [(p, w) for p in at]
            if "#" in chunk:
                anchors += [lo + i for i, c in enumerate(chunk) if c == "#"]
        out: list[list[int]] = []
        for p in sorted(anchors):  # around each keyword: the number before it and the block after it
            lo, hi = max(0, p - 72), min(n, p + 56)
            if out and lo <= out[-1][1]:
                out[-1][1] = hi
            else:
                out.append([lo, hi])
        return [(a, b) for a, b in out], sorted(set(words_at))

    @staticmethod
    def _joinable(gap: str) -> bool:
        return len(gap) <= 12 and gap.strip(" \t\n,;") == ""

    @staticmethod
    def _extend_block(text: str, end: int) -> int:
        """Extend over the address tail: ", City, Country 12345" on the same line and up to 3 short lines below."""
        same = re.compile(rf",?[ \t]*(?:[{_UPPER}][\w'’.\-]*(?:[ \t]+[\w'’.\-()]+){{0,3}}|\d{{3,6}}(?:[ \-]\d{{2,4}})?)"
                          rf"(?:,[ \t]*(?:[\w'’.\-()]+[ \t]?){{1,4}}){{0,3}}")
        m = same.match(text, end)
        if m and m.end() - end <= 60 and text[end:m.end()].strip(" ,"):
            ext = text[end:m.end()]
            stop = re.search(r"\.\s", ext + " ")
            end = end + (stop.start() if stop else len(ext))
        for _ in range(4):
            if end >= len(text) or text[end] != "\n":
                break
            m = _BLOCK_LINE.match(text, end + 1)
            if not m or m.end() - m.start() > 48 or (m.end() < len(text) and text[m.end()] not in "\n"):
                break
            line = text[m.start():m.end()].strip()
            if not line or len(line.split()) > 6:
                break
            end = m.end()
        return end


# ---------------------------------------------------------------- dates of birth

_MONTH = r"(?:jan|feb|mar|apr|may|jun|jul|aug|sep|sept|oct|nov|dec)[a-z]*\.?"
DOB = PatternDetector(
    name="date_of_birth", entity="DATE_OF_BIRTH", needs=("born", "birth", "dob", "d.o.b", "bday", "b-day",
                                                         "geboren", "né", "naissance", "nacimiento"),
    flags=re.IGNORECASE,
    pattern=rf"(?<![\w/.\-])(?:\d{{4}}[-/.]\d{{1,2}}[-/.]\d{{1,2}}|\d{{1,2}}[-/.]\d{{1,2}}[-/.]\d{{2,4}}"
    rf"|{_MONTH}\s+\d{{1,2}}(?:st|nd|rd|th)?,?\s+\d{{4}}|\d{{1,2}}(?:st|nd|rd|th)?\s+(?:of\s+)?{_MONTH},?\s+\d{{4}})"
    r"(?![\w/\-]|\.\d)",
    context=("born", "birth", "dob", "d.o.b", "date of birth", "birthday", "birthdate", "bday", "b-day",
             "geboren", "né", "née", "naissance", "nacimiento", "fecha de nacimiento"),
    context_required=True, window=40, context_score=0.9, scope="digits", before=16, after=12,
)


CORNER = PatternDetector(  # "the corner of Via Nuova del Campo 85 and Baranyay Mill"
    name="street_corner", entity="STREET_ADDRESS", needs=("corner of",), scope="anchors", before=4,
    pattern=rf"(?:the )?corner of (?:[{_UPPER}0-9][\w'’.\-]*\s){{1,6}}?and (?:[{_UPPER}0-9][\w'’.\-]*(?:\s(?=[{_UPPER}0-9]))?){{1,5}}",
    flags=re.IGNORECASE, score=0.8,
)
POSTAL_CODE = PatternDetector(
    name="postal_code", entity="POSTAL_CODE", needs=("zip", "postal", "postcode", "post code", "plz"),
    pattern=r"(?<![\w\-])(?:\d{3,5}(?:[ \-]\d{2,4})?|[A-Z]\d[A-Z] ?\d[A-Z]\d|[A-Z]{1,2}\d[A-Z\d]? ?\d[A-Z]{2})(?![\w\-])",
    context=("zip", "zip code", "zipcode", "postal code", "postcode", "post code", "plz", "code postal"),
    context_required=True, window=24, context_score=0.7, scope="digits", before=3, after=6,
)


def build(lexicon: Lexicon | None = None) -> list[Detector]:
    """The people-and-places detectors (the person and address detectors need the lexicon, loaded here when not
    given)."""
    lex = lexicon or Lexicon.load()
    return [PersonDetector(lex), AddressDetector(lex), CORNER, DOB, POSTAL_CODE]
