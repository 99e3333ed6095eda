"""Security advisories: prose (NVD/CVE descriptions, vendor pages, GitHub advisories) to OSV records with a
remediation section, several sources of one vulnerability merged with their conflicts reported, and deterministic
answers over ingested records ("which of my packages are affected", "what is the fixed version of X").

Modules: ``ids`` (CVE/GHSA/... ids, CWEs, references, CVSS), ``versions`` (range phrases, PEP 440 comparisons),
``packages`` (package name and ecosystem), ``extract`` (text -> OSV), ``remediation``, ``merge`` (several sources),
``schema`` (OSV and record schemas), ``task`` (the ``advisory`` task's builder), ``query`` (affected / fixed-version
answers with citations).
"""
