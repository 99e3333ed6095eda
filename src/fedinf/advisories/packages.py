"""The affected package and its ecosystem, read from advisory prose.

Package names come from, in order of strength: registry URLs (``pypi.org/project/X``, ``npmjs.com/package/X``,
``crates.io/crates/X``, ``pkg.go.dev/X``, ``rubygems.org/gems/X``), Go module paths, install commands
(``pip install X``, ``npm install X``), ``X is a ...`` openings of GitHub-style advisories, the word right before a
version constraint (``django-registration prior to 3.1.2``), and ``the X package/library``. Each candidate gets a
score; candidates naming the same package (after the ecosystem's normalisation) add up.

The ecosystem is decided from cues in the text (registry URLs, install commands, language names, file extensions,
Go module paths); when the text states none, :func:`ecosystem` returns None and the caller decides (a hint, the
model, or no ``affected`` entry).
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass

from fedinf.advisories.versions import Mention

ECOSYSTEMS = ("PyPI", "npm", "Go", "Maven", "crates.io", "RubyGems", "Packagist", "NuGet", "Hex", "Pub",
              "Hackage", "CRAN", "SwiftURL", "GitHub Actions")

# (ecosystem, weight, pattern)
_CUES: list[tuple[str, float, re.Pattern[str]]] = [
    ("PyPI", 3.0, re.compile(r"pypi\.(?:org|python\.org)|\bpip3?\s+install\b|\bPyPI\b|\bpython\s+package", re.I)),
    ("PyPI", 1.0, re.compile(r"\bpython\b|\bdjango\b|\bflask\b|\bpip\b|\bsetup\.py\b|\bpytorch\b|\bnumpy\b|"
                             r"\bjupyter\b|\bpickle\b|\bwsgi\b|\bpypa\b|\bconda\b|\bpythonic\b|\btkinter\b|\bipython\b", re.I)),
    ("PyPI", 0.8, re.compile(r"\b[\w/]+\.py\b|\bpython\.org\b|\bpy\d?[-_]?\w*\b.*\blibrary\b", re.I)),
    ("PyPI", 1.5, re.compile(r"\btensorflow\b|\bpillow\b|\bansible\b|\bplone\b|\bzope\b|\bsalt(?:stack)?\b", re.I)),
    ("npm", 3.0, re.compile(r"npmjs\.(?:com|org)|\bnpm\s+(?:i|install)\b|\bpackage\.json\b|\byarn\s+add\b", re.I)),
    ("npm", 1.2, re.compile(r"\bnode(?:\.js|js)?\b|\bjavascript\b|\btypescript\b|\bnpm\b", re.I)),
    ("Go", 3.0, re.compile(r"pkg\.go\.dev|\bgo\s+get\b|\bgo\.mod\b|\bgolang\.org/x/|\bgo\.googlesource\.com", re.I)),
    ("Go", 1.5, re.compile(r"\bgolang\b|\bGo\s+(?:module|package|programming|standard\s+library|\d)", re.I)),
    ("Maven", 3.0, re.compile(r"\bmaven\b|\bpom\.xml\b|\bgroupId\b|\bmvnrepository\b|\bgradle\b", re.I)),
    ("Maven", 1.0, re.compile(r"\bjava\b|\bjar\b|\bspring\s+(?:framework|boot)\b|\borg\.apache\.", re.I)),
    ("crates.io", 3.0, re.compile(r"crates\.io|\bcargo\s+(?:add|update)\b|\bCargo\.toml\b", re.I)),
    ("crates.io", 1.5, re.compile(r"\brust\b|\bcrate\b", re.I)),
    ("RubyGems", 3.0, re.compile(r"rubygems\.org|\bgem\s+install\b|\bGemfile\b", re.I)),
    ("RubyGems", 1.2, re.compile(r"\bruby\b|\brails\b|\bgem\b", re.I)),
    ("Packagist", 3.0, re.compile(r"packagist\.org|\bcomposer\s+(?:require|update)\b|\bcomposer\.json\b", re.I)),
    ("Packagist", 1.0, re.compile(r"\bphp\b|\blaravel\b|\bsymfony\b|\bdrupal\b|\bwordpress\b", re.I)),
    ("NuGet", 3.0, re.compile(r"nuget\.org|\bdotnet\s+add\s+package\b|\bNuGet\b", re.I)),
    ("NuGet", 1.0, re.compile(r"\.NET\b|\bC#", re.I)),
    ("Hex", 2.5, re.compile(r"hex\.pm|\belixir\b|\berlang\b", re.I)),
    ("Pub", 2.5, re.compile(r"pub\.dev|\bdart\b|\bflutter\b", re.I)),
    ("Hackage", 2.5, re.compile(r"hackage\.haskell\.org|\bhaskell\b", re.I)),
    ("CRAN", 2.5, re.compile(r"cran\.r-project\.org|\bCRAN\b", re.I)),
]

_GO_MODULE = re.compile(r"(?<![/\w.@:-])(?!(?:pkg\.)?go\.dev/|golang\.org/(?!x/))((?:github\.com|gitlab\.com|bitbucket\.org|gopkg\.in|golang\.org/x|google\.golang\.org|"
                        r"k8s\.io|sigs\.k8s\.io|go\.etcd\.io|go\.opentelemetry\.io|cloud\.google\.com/go|"
                        r"go\.mongodb\.org|go\.uber\.org|helm\.sh|code\.gitea\.io|[a-z0-9.-]+\.(?:io|org|dev|com|net)"
                        r"(?=/))(?:/[A-Za-z0-9_.~-]+)+)")
_GO_STDLIB = re.compile(r"\b(?:the\s+)?(?:Go\s+)?(?:standard\s+library|stdlib)\b|\b(?:net/http|crypto/[a-z0-9]+|"
                        r"encoding/[a-z0-9]+|archive/[a-z]+|html/template|text/template|net/[a-z]+|go/[a-z]+|"
                        r"mime/[a-z]+|image/[a-z]+|math/big|os/exec|path/filepath|regexp|runtime)\b(?! module)")
_GO_TOOLCHAIN = re.compile(r"\bcmd/(?:go|cgo|compile|link)\b|\bthe go command\b", re.I)

_REGISTRY_URLS: list[tuple[str, re.Pattern[str]]] = [
    ("PyPI", re.compile(r"pypi\.(?:org|python\.org)/(?:project|pypi|simple)/([A-Za-z0-9][A-Za-z0-9._-]*)", re.I)),
    ("npm", re.compile(r"npmjs\.(?:com|org)/(?:package/)?((?:@[a-z0-9._-]+/)?[a-z0-9._-]+)", re.I)),
    ("crates.io", re.compile(r"crates\.io/crates/([A-Za-z0-9_-]+)", re.I)),
    ("RubyGems", re.compile(r"rubygems\.org/gems/([A-Za-z0-9._-]+)", re.I)),
    ("Packagist", re.compile(r"packagist\.org/packages/([a-z0-9._-]+/[a-z0-9._-]+)", re.I)),
    ("NuGet", re.compile(r"nuget\.org/packages/([A-Za-z0-9._-]+)", re.I)),
    ("Go", re.compile(r"pkg\.go\.dev/((?:[a-z0-9.-]+)(?:/[A-Za-z0-9_.~-]+)+)", re.I)),
]
_INSTALL = [
    ("PyPI", re.compile(r"\bpip3?\s+install\s+(?:-U\s+|--upgrade\s+|-q\s+)*[\"'`]?([A-Za-z0-9][A-Za-z0-9._-]*)", re.I)),
    ("npm", re.compile(r"\bnpm\s+(?:i|install)\s+(?:-[gD]\s+)*((?:@[a-z0-9._-]+/)?[a-z0-9._-]+)", re.I)),
    ("RubyGems", re.compile(r"\bgem\s+install\s+([A-Za-z0-9._-]+)", re.I)),
    ("Go", re.compile(r"\bgo\s+get\s+(?:-u\s+)?([a-z0-9.-]+(?:/[A-Za-z0-9_.~-]+)+)", re.I)),
]
# cpe:2.3:a:vendor:product:version:update:edition:language:sw_edition:target_sw:...
_CPE = re.compile(r"\bcpe:2\.3:[aho]:[^:\s]+:([^:\s*]+)(?::[^:\s]*){5}:?([^:\s]*)")
_CPE_TARGET = {"python": "PyPI", "node.js": "npm", "nodejs": "npm", "go": "Go", "rust": "crates.io", "ruby": "RubyGems",
               "rails": "RubyGems", "php": "Packagist", "java": "Maven", ".net": "NuGet", "dart": "Pub"}
_IS_A = re.compile(r"(?:^|[.!?]\s+|\n)\s*(?:The\s+)?`?([A-Za-z][\w.+-]*(?:\s[A-Z][\w.+-]*){0,2})`?\s+(?:\([^)]{0,40}\)\s+)?"
                   r"(?:is|are|provides)\s+(?:an?|the)\s", re.M)
_THE_PKG = re.compile(r"\b(?:the[ \t]+)?`?([A-Za-z][\w.-]*)`?[ \t]+(?:python[ \t]+|npm[ \t]+|go[ \t]+|ruby[ \t]+|"
                      r"java[ \t]+|rust[ \t]+)?(?:package|library|module|crate|gem|plugin|extension)\b", re.I)
# GitHub advisory pages: "Package" on its own line, then "<ecosystem> <name>"
_GH_PACKAGE = re.compile(r"^Package\s*\n\s*(pip|npm|maven|go|rust|rubygems|composer|nuget|pub|erlang|swift|actions)"
                         r"[ \t]+(\S+)[ \t]*$", re.M | re.I)
_GH_ECO = {"pip": "PyPI", "npm": "npm", "maven": "Maven", "go": "Go", "rust": "crates.io", "rubygems": "RubyGems",
           "composer": "Packagist", "nuget": "NuGet", "pub": "Pub", "erlang": "Hex", "swift": "SwiftURL",
           "actions": "GitHub Actions"}
_NAME_TOKEN = re.compile(r"`?([A-Za-z@][\w.+/@-]*[\w+])`?\s*(?:\([^)]{0,40}\)\s*)?$")
_STOP = {
    "a", "an", "the", "in", "of", "and", "or", "to", "for", "on", "all", "versions", "version", "releases",
    "release", "before", "prior", "through", "is", "are", "was", "were", "be", "this", "that", "these", "with",
    "from", "affected", "affects", "vulnerable", "package", "library", "module", "product", "software", "component",
    "series", "branch", "by", "as", "it", "its", "which", "when", "if", "x", "v", "fixed", "patched", "issue",
    "vulnerability", "flaw", "bug", "up", "including", "earlier", "later", "users", "use", "using", "via", "at",
    "plugin", "python", "pypi", "npm", "go", "java", "ruby", "rust", "php", "node", "node.js", "javascript",
    "fix", "upgrade", "update", "patch", "not", "also", "only", "both", "builds", "build", "app", "application",
    "server", "client", "installations", "install", "installs", "deployments", "instances", "code", "commit",
    "we", "you", "they", "github", "has", "have", "had", "can", "may", "will", "would", "should", "attackers",
    "attacker", "remote", "there", "here", "standard", "core", "third-party", "vulnerable", "affected", "certain", "some", "many", "local", "unauthenticated", "authenticated", "default", "implementation", "project",
}


@dataclass(frozen=True)
class NameCandidate:
    name: str
    ecosystem: str | None
    score: float
    start: int
    end: int
    evidence: str


def normalize_name(name: str, ecosystem: str | None) -> str:
    """The ecosystem's canonical form: PEP 503 for PyPI, lower case for npm/crates.io/RubyGems; others unchanged."""
    n = name.strip().strip("`'\"")
    if ecosystem == "PyPI":
        return re.sub(r"[-_.]+", "-", n).lower()
    if ecosystem in ("npm", "crates.io", "RubyGems", "Packagist", "Pub", "Hex"):
        return n.lower()
    return n


def ecosystem_scores(text: str) -> dict[str, float]:
    """Cue weights per ecosystem (a cue counts once per pattern, more matches add a little)."""
    scores: dict[str, float] = defaultdict(float)
    for eco, weight, pat in _CUES:
        n = len(pat.findall(text))
        if n:
            scores[eco] += weight * (1 + min(n - 1, 4) * 0.1)
    if _GO_MODULE.search(text) and re.search(r"\bgo\b|golang|module", text, re.I):
        scores["Go"] += 1.5
    return dict(scores)


def ecosystem(text: str, candidates: list[NameCandidate] | None = None) -> tuple[str | None, float, str]:
    """``(ecosystem, confidence 0..1, evidence)``; ``(None, 0, "")`` when the text gives no cue."""
    scores = ecosystem_scores(text)
    for c in candidates or []:
        if c.ecosystem and c.score >= 2.5:
            scores[c.ecosystem] = scores.get(c.ecosystem, 0.0) + 2.0
        elif c.score >= 2.0 and re.match(r"(?i)py[-_]?[a-z]", c.name) and not re.match(r"(?i)python\b", c.name):
            scores["PyPI"] = scores.get("PyPI", 0.0) + 0.8  # py-lmdb, pycsw: a PyPI naming habit
    if not scores:
        return None, 0.0, ""
    best = max(scores, key=lambda k: scores[k])
    total = sum(scores.values())
    return best, round(min(1.0, scores[best] / max(total, 1e-9) * min(1.0, scores[best] / 2)), 3), "cues"


_GO_IN = re.compile(r"\bin\s+(?:package\s+)?([A-Za-z0-9_.~/-]+?)\.?\s*$")


def go_module(text: str) -> tuple[str, int, int] | None:
    """The Go module (or ``stdlib`` / ``toolchain``) named in the text: the Go vulndb title convention
    ``... in <package path>`` on the first line, else the first module path, else standard-library cues."""
    first = text.split("\n\n", 1)[0].replace("\n", " ")
    t = _GO_IN.search(first)
    if t:
        path = t.group(1)
        if path.startswith("cmd/"):
            return "toolchain", t.start(1), t.end(1)
        if "." in path.split("/")[0]:
            return _module_root(path), t.start(1), t.end(1)
        if re.fullmatch(r"[a-z0-9]+(?:/[a-z0-9]+)*", path):
            return "stdlib", t.start(1), t.end(1)
    m = _GO_MODULE.search(text)
    if m:
        path = m.group(1).rstrip(".")
        return _module_root(path), m.start(1), m.start(1) + len(path)
    t = _GO_TOOLCHAIN.search(text)
    if t:
        return "toolchain", t.start(), t.end()
    s = _GO_STDLIB.search(text)
    if s:
        return "stdlib", s.start(), s.end()
    return None


def _module_root(path: str) -> str:
    """A Go package path to its module path (host + 2 segments, keeping a ``/vN`` major suffix)."""
    parts = path.split("/")
    host = parts[0]
    if host in ("golang.org", "google.golang.org", "k8s.io", "sigs.k8s.io", "go.etcd.io", "gopkg.in", "helm.sh",
                "go.uber.org", "go.mongodb.org", "code.gitea.io", "go.opentelemetry.io"):
        n = 3 if host == "golang.org" else 2
    elif host == "cloud.google.com":
        n = 3
    else:
        n = 3
    root = parts[:n]
    if len(parts) > n and re.fullmatch(r"v\d+", parts[n]):
        root.append(parts[n])
    return "/".join(root)


def before_name(text: str, pos: int) -> tuple[str, int, int] | None:
    """The name-like token right before ``pos`` (skipping "versions", "version", "all", ...)."""
    base = max(0, pos - 80)
    window = text[base:pos]
    cut = max(window.rfind(". "), window.rfind("\n"), window.rfind("; "))
    if cut >= 0:  # stay within the sentence
        base, window = base + cut + 2, window[cut + 2:]
    tokens = list(re.finditer(r"`?[A-Za-z@][\w.+/@-]*[\w+]`?", window))
    for t in reversed(tokens[-6:]):
        word = t.group(0).strip("`")
        low = word.lower()
        if low in _SKIP_BACK or re.fullmatch(r"v?\d[\w.]*", word):
            continue
        if low in _STOP or re.search(r"\d{3,}", word) or len(word) < 2:
            return None
        return word, base + t.start(), base + t.end()
    return None


_SKIP_BACK = {"versions", "version", "all", "x", "v", "releases", "release", "series", "in", "of", "the", "package",
              "library", "module", "plugin", "before", "prior", "to", "and", "or", "from", "through", "branch",
              "up", "including", "only", "python", "pypi", "earlier", "edition", "framework", "cms", "tools", "tool",
              "server", "client", "engine", "implementation", "reference", "web", "panel", "cli", "sdk", "api",
              "toolkit", "plugins", "extension", "until"}
_REPO = re.compile(r"(?:github\.com/|gitlab\.com/|(?:GitHub|GitLab)\s+repository\s+)([\w.-]+)/([\w.-]+?)(?=[\s/#.,;:)]|$)",
                   re.I)
_IN_NAMED_VERSION = re.compile(r"\b(?:in|of)\s+([A-Za-z][\w.-]*[A-Za-z0-9])\s+(?:version\s+)?v?\d+(?:\.\d+)+\b")
_NAMED_VERSION = re.compile(r"(?<![\w.-])([A-Za-z][\w.-]*[A-Za-z0-9])\s+(?:version\s+)?v?\d+(?:\.\d+)+\s+(?:allows|has|"
                            r"is|are|contains|does|suffers|could|can|may|might|uses|lacks|fails|permits|enables|"
                            r"mishandles|incorrectly|improperly|and\s+(?:earlier|prior|before|below))\b")


def name_candidates(text: str, mentions: list[Mention]) -> list[NameCandidate]:
    """Scored package-name candidates (see the module docstring); not yet merged."""
    out: list[NameCandidate] = []
    for eco, pat in _REGISTRY_URLS:
        for m in pat.finditer(text):
            out.append(NameCandidate(m.group(1), eco, 5.0, m.start(1), m.end(1), f"url:{eco}"))
    for m in _GH_PACKAGE.finditer(text):
        out.append(NameCandidate(m.group(2), _GH_ECO[m.group(1).lower()], 6.0, m.start(2), m.end(2), "page:package"))
    for m in _CPE.finditer(text):
        target = _CPE_TARGET.get(m.group(2).lower()) if m.group(2) else None
        out.append(NameCandidate(m.group(1), target, 3.0, m.start(1), m.end(1), "cpe"))
    for eco, pat in _INSTALL:
        for m in pat.finditer(text):
            out.append(NameCandidate(m.group(1), eco, 4.0, m.start(1), m.end(1), f"install:{eco}"))
    first = re.split(r"(?<=[.!?])\s", text[:400], maxsplit=1)[0]
    for m in _IS_A.finditer(first):
        name = m.group(1).strip()
        if name.lower().split()[0] not in _STOP and len(name) <= 40:
            out.append(NameCandidate(name.split()[-1] if " " in name else name, None, 2.5, m.start(1), m.end(1),
                                     "opening:is-a"))
    for mn in mentions:
        hit = before_name(text, mn.name_end)
        if hit:
            out.append(NameCandidate(hit[0], None, 2.0 if mn.kind != "fix" else 0.3, hit[1], hit[2],
                                     f"before:{mn.kind}"))
    for m in _REPO.finditer(text):
        if m.group(2).lower() not in ("security", "advisories", "issues", "pull", "commit"):
            out.append(NameCandidate(m.group(2), None, 1.5, m.start(2), m.end(2), "repository"))
    for m in _IN_NAMED_VERSION.finditer(text):
        if m.group(1).lower() not in _STOP:
            out.append(NameCandidate(m.group(1), None, 1.5, m.start(1), m.end(1), "in-named-version"))
    for m in _NAMED_VERSION.finditer(text):
        if m.group(1).lower() not in _STOP:
            out.append(NameCandidate(m.group(1), None, 2.0, m.start(1), m.end(1), "named-version"))
    for m in _THE_PKG.finditer(text):
        if m.group(1).lower() not in _STOP:
            out.append(NameCandidate(m.group(1), None, 1.5, m.start(1), m.end(1), "the-package"))
    for m in re.finditer(r"`([a-z][a-z0-9]*(?:[-_][a-z0-9]+)+)`", text):
        out.append(NameCandidate(m.group(1), None, 0.5, m.start(1), m.end(1), "code"))
    return out


def best_name(text: str, candidates: list[NameCandidate], eco: str | None) -> NameCandidate | None:
    """The highest-scoring package, candidates of the same normalised name adding up; a name that also appears
    elsewhere in the text gets a small bonus."""
    totals: dict[str, float] = defaultdict(float)
    first: dict[str, NameCandidate] = {}
    low = text.lower()
    for c in candidates:
        if c.ecosystem and eco and c.ecosystem != eco:
            continue
        key = normalize_name(c.name, "PyPI")
        totals[key] += c.score
        if key not in first or c.score > first[key].score:
            first[key] = c
    if not totals:
        return None
    for key, c in first.items():
        totals[key] += min(low.count(c.name.lower()) - 1, 3) * 0.25
    key = max(totals, key=lambda k: (totals[k], -first[k].start))
    c = first[key]
    name = c.name
    if eco in (None, "PyPI") and re.search(r"\bApache\s+$", text[max(0, c.start - 8):c.start]) \
            and not name.lower().startswith("apache"):
        name = "apache-" + name  # PyPI names Apache projects apache-<name> (apache-airflow, apache-superset)
    return NameCandidate(name, c.ecosystem or eco, round(totals[key], 2), c.start, c.end, c.evidence)
