"""The remediation section: what to upgrade to, what to do meanwhile, how to find affected installs.

Facts (``upgrade_to``, ``no_fix_available``, ``detection``) are deterministic: they come from the extracted ranges
and the ecosystem. Prose (``summary``, ``workaround``, ``impact``) is extractive by default (the advisory's own
sentence, with its offsets) and may come from the model; a model sentence is kept only when it is *grounded*: most
of its content words occur in the advisory (a small model invents plausible workarounds; an ungrounded one is
reported as rejected, never shown as fact).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from fedinf.advisories.extract import Extraction, FieldNote
from fedinf.advisories.versions import Interval, clean, is_zero

_SENTENCE = re.compile(r"[^.!?\n]+(?:[.!?](?![\s\n]|$)[^.!?\n]*)*(?:[.!?]|$)", re.M)
_NO_WORKAROUND = re.compile(r"\bno\s+(?:known\s+)?work-?arounds?\b|\bworkarounds?:\s*(?:none|n/a)\b", re.I)
_WORKAROUND = re.compile(r"\bwork-?arounds?\b|\bunable\s+to\s+upgrade\b|\bcannot\s+upgrade\b|\bcan't\s+upgrade\b|"
                         r"\bmitigat\w*\b|\bas\s+a\s+temporary\b|\buntil\s+(?:you\s+can\s+)?upgrad\w+\b", re.I)
_IMPACT = re.compile(r"\b(?:allows?|allowing|could\s+allow|can\s+(?:lead|cause|result|allow)|leads?\s+to|"
                     r"results?\s+in|enables?|lets?)\b.*\b(?:attacker|user|remote|arbitrary|denial|execute|read|"
                     r"write|bypass|inject|crash|disclos|leak|escalat)", re.I)
_INTRO = re.compile(r"\b(?:is|are)\s+an?\s+(?:[\w-]+\s+){0,8}?(?:package|library|framework|platform|tool|toolkit|"
                    r"module|application|implementation|server|client|system|engine|software|project|language|"
                    r"homeserver|parser|utility|api|sdk|cms|wrapper)\b", re.I)
_WORD = re.compile(r"[a-z0-9][a-z0-9_.-]{2,}", re.I)
_COMMON = {"the", "and", "for", "that", "this", "with", "are", "was", "not", "can", "could", "which", "when", "from",
           "has", "have", "been", "will", "its", "may", "any", "all", "into", "via", "use", "such", "than", "also"}

DETECTION: dict[str, list[str]] = {
    "PyPI": ["python -m pip show {name}", "python -m pip list --format=freeze | grep -i '^{name}=='"],
    "npm": ["npm ls {name} --all"],
    "Go": ["govulncheck ./...", "go list -m all | grep '{name}'"],
    "crates.io": ["cargo tree -i {name}"],
    "RubyGems": ["bundle list | grep -i '{name}'"],
    "Maven": ["mvn dependency:tree -Dincludes={name}"],
    "Packagist": ["composer show {name}"],
    "NuGet": ["dotnet list package --include-transitive | grep -i '{name}'"],
}


@dataclass(frozen=True)
class Sentence:
    text: str
    start: int
    end: int


def sentences(text: str) -> list[Sentence]:
    out = []
    for m in _SENTENCE.finditer(text):
        s = m.group(0)
        lead = len(s) - len(s.lstrip())
        s = s.strip()
        if len(s) >= 12:
            out.append(Sentence(s, m.start() + lead, m.start() + lead + len(s)))
    return out


def grounded(claim: str, text: str, *, threshold: float = 0.6) -> bool:
    """Most of the claim's content words (3+ letters, not function words) appear in ``text``."""
    words = [w.lower() for w in _WORD.findall(claim) if w.lower() not in _COMMON]
    if not words:
        return False
    have = set(w.lower() for w in _WORD.findall(text))
    return sum(w in have for w in words) / len(words) >= threshold


def _span_note(s: Sentence | None, limit: int) -> FieldNote:
    if s is None:
        return FieldNote(None, "none")
    return FieldNote(s.text[:limit], "extractor", (s.start, s.end), "sentence")


def extractive(ex: Extraction) -> dict[str, FieldNote]:
    """Summary, workaround and impact sentences taken from the advisory itself."""
    sents = sentences(ex.text)
    work = None if _NO_WORKAROUND.search(ex.text) else next((s for s in sents if _WORKAROUND.search(s.text)), None)
    impact = next((s for s in sents if _IMPACT.search(s.text)), None)
    summary = next((s for s in sents if not _INTRO.search(s.text)), None)
    summary = summary or (sents[0] if sents else None)
    return {"summary": _span_note(summary, 200), "workaround": _span_note(work, 600),
            "impact": _span_note(impact, 600)}


def _for_versions(it: Interval) -> str:
    low = "" if is_zero(it.introduced) else f">={clean(it.introduced)},"
    return f"{low}<{clean(it.fixed)}" if it.fixed else f"{low}<={clean(it.last_affected or '')}"


def upgrade_to(ex: Extraction) -> list[dict[str, Any]]:
    if not ex.package:
        return []
    return [{"package": ex.package, "ecosystem": ex.ecosystem, "version": clean(it.fixed),
             "for_versions": _for_versions(it)} for it in ex.intervals if it.fixed]


def detection(ex: Extraction) -> list[str]:
    """Commands and checks that find affected installs."""
    out: list[str] = []
    name = ex.package
    if name and ex.ecosystem in DETECTION:
        out += [c.format(name=name) for c in DETECTION[ex.ecosystem]]
    if name and ex.intervals:
        spans = [_for_versions(it) if it.fixed or it.last_affected else f">={clean(it.introduced)}"
                 for it in ex.intervals]
        out.append(f"affected when the installed {name} version matches any of: {'; '.join(spans)}")
    if name and ex.ecosystem:
        out.append("osv-scanner scan source -r . (matches lockfiles against OSV records)")
    return out[:10]


def merge_prose(ex: Extraction, model: dict[str, Any] | None, warnings: list[str]) -> dict[str, FieldNote]:
    """The prose fields: the extractive sentence, or a grounded model sentence where the advisory has none (the
    model's summary is preferred when grounded: it is the one field where rewording helps)."""
    notes = extractive(ex)
    if not model:
        return notes
    for key in ("summary", "workaround", "impact"):
        value = model.get(key)
        if not isinstance(value, str) or not value.strip():
            continue
        value = value.strip()
        have = notes[key]
        if not grounded(value, ex.text, threshold=0.5 if key == "summary" else 0.6):
            warnings.append(f"remediation.{key}: the model's sentence is not grounded in the advisory; "
                            "rejected")
            notes[key] = FieldNote(have.value, have.source if have.value else "rejected", have.span, have.evidence)
            continue
        if key == "workaround" and (_NO_WORKAROUND.search(ex.text) or not _WORKAROUND.search(ex.text)):
            warnings.append("remediation.workaround: the advisory states no workaround; the model's was rejected")
            notes[key] = FieldNote(have.value, have.source if have.value else "rejected", have.span, have.evidence)
            continue
        if have.value is None or key == "summary":
            notes[key] = FieldNote(value, "model" if have.value is None else "model+extractor", None, "model")
    return notes


def section(ex: Extraction, prose: dict[str, FieldNote]) -> dict[str, Any]:
    ups = upgrade_to(ex)
    return {"upgrade_to": ups,
            "no_fix_available": bool(ex.package) and not ups,
            "workaround": prose["workaround"].value,
            "impact": prose["impact"].value,
            "detection": detection(ex),
            "summary": prose["summary"].value}


def model_facts(ex: Extraction) -> str:
    """The deterministic facts given to the model with the advisory (so its prose does not contradict them)."""
    parts = []
    if ex.package:
        parts.append(f"package: {ex.package}" + (f" ({ex.ecosystem})" if ex.ecosystem else ""))
    ups = upgrade_to(ex)
    if ups:
        parts.append("fixed in: " + ", ".join(u["version"] for u in ups))
    return "; ".join(parts).replace("{", "(").replace("}", ")")
