"""Build ``lexicon.json`` (shipped; not imported at run time). Re-run only to refresh the lists.

Sources, both permissively licensed, neither related to the evaluation corpus (which Faker generated; Faker's own
name lists are deliberately NOT used):

- US Census Bureau 1990 name lists (public domain, a US government work), as shipped in the PyPI package
  ``names==0.3.0`` (files ``dist.male.first``, ``dist.female.first``, ``dist.all.last``).
- SCOWL English word list as shipped by Debian's ``wamerican`` (``/usr/share/dict/american-english``), copyright
  Kevin Atkinson and others, permissive licence reproduced in ``NOTICE.md`` beside this file (and embedded in
  ``lexicon.json`` under ``_notice`` so that it travels with every copy of the data).

Usage: ``python build_lexicon.py NAMES_DIR /usr/share/dict/american-english > lexicon.json``
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def _names(path: Path) -> list[str]:
    """Names in frequency order (most frequent first)."""
    return [line.split()[0].lower() for line in path.read_text().splitlines() if line.strip()]


def main(names_dir: str, words_file: str) -> None:
    d = Path(names_dir)
    male, female = _names(d / "dist.male.first"), _names(d / "dist.female.first")
    first = sorted(set(male) | set(female))
    last = sorted(set(_names(d / "dist.all.last")))
    common_first = set(male[:500]) | set(female[:500])
    words: set[str] = set()
    proper: set[str] = set()
    for w in Path(words_file).read_text(encoding="utf-8").splitlines():
        if not w.isalpha():
            continue
        if w.islower():
            words.add(w)
        elif w[0].isupper() and w[1:].islower():
            proper.add(w.lower())
    proper -= words
    # proper nouns that are also (rare) census names: places such as "France", "Paris", "London", "Norway";
    # common first names ("Matthew", "Virginia") stay names
    placelike = (proper & (set(first) | set(last))) - common_first
    proper -= set(first) | set(last)
    notice = (Path(__file__).parent / "NOTICE.md").read_text(encoding="utf-8")
    json.dump({"_notice": notice, "first": first, "last": last, "words": sorted(words), "proper": sorted(proper),
               "placelike": sorted(placelike)}, sys.stdout,
              separators=(",", ":"))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
