"""Model licenses: a registry of common model licenses and the verdict for the organisation's declared use.

Each :class:`License` says whether commercial use, research use and personal use are ``allowed``, ``conditional``
or ``forbidden``, with the condition in words. :func:`license_verdict` looks a license id up (case-insensitive,
SPDX ids and common aliases) and applies ``governance``:

- ``governance.use`` picks the column: ``commercial`` and ``government`` use the commercial terms (a public body
  deploying a model is not research), ``research`` the research terms, ``personal`` the personal terms;
- ``conditional`` is allowed only with ``governance.accept_conditional_licenses`` (the organisation has reviewed and
  accepts the conditions, e.g. Llama's 700M-MAU clause and acceptable-use policy);
- an unknown id is treated as ``forbidden`` unless ``governance.accept_unknown_licenses``.

This is an engineering aid, not legal advice: the condition texts summarise the licenses; the licenses govern.
:func:`license_report` gives one row per configured model for ``fedinf models licenses``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from fedinf.config import Config, Governance

Status = Literal["allowed", "conditional", "forbidden"]


@dataclass(frozen=True)
class License:
    id: str
    name: str
    commercial: Status
    research: Status = "allowed"
    personal: Status = "allowed"
    condition: str = ""
    aliases: tuple[str, ...] = ()


@dataclass(frozen=True)
class LicenseVerdict:
    """Whether a model may serve this organisation. ``status`` is the license's status for the declared use
    (``allowed | conditional | forbidden | unknown``); ``reason`` explains the outcome in words."""

    allowed: bool
    status: str
    reason: str
    license_id: str | None = None  # canonical id when the license is known


_LLAMA_COMMON = (
    "commercial use allowed unless the licensee's products had more than 700 million monthly active users on the "
    "release date (then a separate license from Meta is required); Meta's Acceptable Use Policy applies and must be "
    "passed on; redistribution must include the license and a copy of the notice"
)
_RAIL = (
    "use-based restrictions (the license's attachment A: no unlawful use, no harm to minors, no disinformation, no "
    "discrimination, no medical advice replacing professionals, ...) apply and must be passed on to downstream users "
    "and derivatives"
)
_NC = "non-commercial only: no use for commercial advantage or monetary compensation"

LICENSES: tuple[License, ...] = (
    License("Apache-2.0", "Apache License 2.0", "allowed", condition="keep the license and NOTICE file",
            aliases=("apache 2.0", "apache2", "apache-2", "apache license 2.0", "apache")),
    License("MIT", "MIT License", "allowed", condition="keep the copyright and permission notice",
            aliases=("mit license", "expat")),
    License("BSD-3-Clause", "BSD 3-Clause License", "allowed", condition="keep the notice; no endorsement",
            aliases=("bsd-3", "bsd3", "bsd 3-clause", "new bsd")),
    License("BSD-2-Clause", "BSD 2-Clause License", "allowed", condition="keep the notice",
            aliases=("bsd-2", "bsd2", "simplified bsd", "bsd")),
    License("ISC", "ISC License", "allowed", condition="keep the notice"),
    License("Unlicense", "The Unlicense", "allowed", aliases=("public domain", "public-domain")),
    License("CC0-1.0", "Creative Commons Zero 1.0", "allowed", aliases=("cc0",)),
    License("MPL-2.0", "Mozilla Public License 2.0", "allowed",
            condition="modified MPL files must stay under the MPL when distributed"),
    License("GPL-3.0", "GNU General Public License 3.0", "conditional",
            condition="distributing the model or software built on it requires releasing it under the GPL",
            aliases=("gpl-3.0-only", "gpl-3.0-or-later", "gpl3", "gplv3")),
    License("AGPL-3.0", "GNU Affero General Public License 3.0", "conditional",
            condition="offering it over a network requires releasing the source of modified versions",
            aliases=("agpl-3.0-only", "agpl-3.0-or-later", "agpl3", "agplv3")),
    License("CC-BY-4.0", "Creative Commons Attribution 4.0", "allowed", condition="attribution required",
            aliases=("cc-by", "cc by 4.0", "cc-by-4")),
    License("CC-BY-SA-4.0", "Creative Commons Attribution-ShareAlike 4.0", "conditional",
            condition="attribution; adapted material must be shared under the same license",
            aliases=("cc-by-sa", "cc by-sa 4.0", "cc-by-sa-3.0")),
    License("CC-BY-NC-4.0", "Creative Commons Attribution-NonCommercial 4.0", "forbidden", condition=_NC,
            aliases=("cc-by-nc", "cc by-nc 4.0", "cc-by-nc-3.0")),
    License("CC-BY-NC-SA-4.0", "Creative Commons Attribution-NonCommercial-ShareAlike 4.0", "forbidden",
            condition=_NC + "; share-alike", aliases=("cc-by-nc-sa", "cc-by-nc-sa-3.0")),
    License("CC-BY-NC-ND-4.0", "Creative Commons Attribution-NonCommercial-NoDerivatives 4.0", "forbidden",
            condition=_NC + "; no derivatives", aliases=("cc-by-nc-nd",)),
    License("llama2", "Llama 2 Community License", "conditional",
            condition=_LLAMA_COMMON + "; Llama 2 outputs may not be used to improve other large language models",
            aliases=("llama-2", "llama 2", "llama2-community", "llama-2-community-license")),
    License("llama3", "Meta Llama 3 Community License", "conditional",
            condition=_LLAMA_COMMON + "; display 'Built with Meta Llama 3'; outputs may not be used to improve other "
            "large language models", aliases=("llama-3", "llama 3", "llama3-community")),
    License("llama3.1", "Llama 3.1 Community License", "conditional",
            condition=_LLAMA_COMMON + "; display 'Built with Llama'; derived model names must start with 'Llama'",
            aliases=("llama-3.1", "llama 3.1", "llama3_1", "llama-3_1")),
    License("llama3.2", "Llama 3.2 Community License", "conditional",
            condition=_LLAMA_COMMON + "; display 'Built with Llama'; the multimodal (vision) models grant no rights "
            "to individuals domiciled in, or companies with a principal place of business in, the European Union",
            aliases=("llama-3.2", "llama 3.2", "llama3_2", "llama-3_2")),
    License("llama3.3", "Llama 3.3 Community License", "conditional",
            condition=_LLAMA_COMMON + "; display 'Built with Llama'; derived model names must start with 'Llama'",
            aliases=("llama-3.3", "llama 3.3", "llama3_3", "llama-3_3")),
    License("llama4", "Llama 4 Community License", "conditional",
            condition=_LLAMA_COMMON + "; display 'Built with Llama'; the multimodal models grant no rights to "
            "individuals or companies in the European Union", aliases=("llama-4", "llama 4")),
    License("gemma", "Gemma Terms of Use", "conditional",
            condition="commercial use allowed under the Gemma Prohibited Use Policy, which must be passed on to "
            "users and derivatives; Google may restrict use that violates the terms",
            aliases=("gemma-terms", "gemma terms of use", "gemma2", "gemma3")),
    License("mnpl", "Mistral AI Non-Production License", "forbidden", research="allowed", personal="allowed",
            condition="research, testing and evaluation only; no production or commercial use without a commercial "
            "license from Mistral AI",
            aliases=("mnpl-0.1", "mistral-non-production", "mistral research license", "mistral-research",
                     "mrl", "mistral-ai-research-license", "mrl-0.1")),
    License("openrail", "BigScience Open RAIL", "conditional", condition=_RAIL, aliases=("open-rail",)),
    License("openrail-m", "Open RAIL-M", "conditional", condition=_RAIL,
            aliases=("open-rail-m", "openrail++", "creativeml-openrail-m")),
    License("bigscience-rail-1.0", "BigScience RAIL 1.0", "conditional", condition=_RAIL,
            aliases=("bigscience-bloom-rail-1.0", "bloom-rail", "rail-1.0", "bigscience-openrail-m")),
    License("qwen", "Tongyi Qianwen License", "conditional",
            condition="commercial use allowed; products with more than 100 million monthly active users need a "
            "license from Alibaba Cloud; attribution", aliases=("tongyi-qianwen", "qwen-license")),
    License("qwen-research", "Qwen Research License", "forbidden", research="allowed", personal="allowed",
            condition="non-commercial research use only", aliases=("qwen research license",)),
    License("deepseek", "DeepSeek License Agreement", "conditional", condition=_RAIL.replace(
            "the license's attachment A", "attachment A of the DeepSeek license"),
            aliases=("deepseek-license", "deepseek model license")),
    License("nvidia-open-model-license", "NVIDIA Open Model License", "conditional",
            condition="commercial use allowed; keep the attribution notice; bypassing the model's safety guardrails "
            "terminates the license", aliases=("nvidia-open-model", "nvidia open model license")),
    License("proprietary-api", "Proprietary cloud API terms (OpenAI, Anthropic, Google, ...)", "allowed",
            condition="commercial use under the provider's API/business terms and usage policies (contract with "
            "the provider); data handling per the provider's terms",
            aliases=("proprietary", "commercial-api", "openai", "anthropic", "openai-terms", "anthropic-terms",
                     "anthropic-commercial-terms", "google-api", "gemini-api", "azure-openai", "api-terms")),
)


def _canon(s: str) -> str:
    return re.sub(r"[\s_]+", "-", s.strip().lower())


def _index(licenses: tuple[License, ...]) -> MappingProxyType[str, License]:
    idx: dict[str, License] = {}
    for lic in licenses:
        for key in (lic.id, *lic.aliases):
            idx[_canon(key)] = lic
    return MappingProxyType(idx)


REGISTRY: MappingProxyType[str, License] = _index(LICENSES)


def lookup(license_id: str) -> License | None:
    """The :class:`License` for an id or alias (case, spaces and underscores ignored), or None."""
    return REGISTRY.get(_canon(license_id or ""))


def license_verdict(license_id: str, governance: "Governance") -> LicenseVerdict:
    """May a model under ``license_id`` serve this organisation, given ``governance.use`` and its switches?"""
    lic = lookup(license_id)
    use = governance.use
    if lic is None:
        if governance.accept_unknown_licenses:
            return LicenseVerdict(True, "unknown", f"unknown license {license_id!r} accepted by "
                                  "governance.accept_unknown_licenses")
        return LicenseVerdict(False, "unknown", f"unknown license {license_id!r}: treated as forbidden (declare a "
                              "known license id, or set governance.accept_unknown_licenses: true)")
    column = {"commercial": "commercial", "government": "commercial", "research": "research",
              "personal": "personal"}[use]
    status: str = getattr(lic, column)
    what = f"{lic.name} ({lic.id}), {use} use"
    cond = f": {lic.condition}" if lic.condition else ""
    if status == "allowed":
        return LicenseVerdict(True, status, f"{what} is allowed{cond}", lic.id)
    if status == "conditional":
        if governance.accept_conditional_licenses:
            return LicenseVerdict(True, status, f"{what} is conditional, accepted by "
                                  f"governance.accept_conditional_licenses{cond}", lic.id)
        return LicenseVerdict(False, status, f"{what} is conditional{cond} (set "
                              "governance.accept_conditional_licenses: true once the conditions are accepted)", lic.id)
    return LicenseVerdict(False, status, f"{what} is forbidden{cond}", lic.id)


def license_report(config: "Config") -> list[dict[str, Any]]:
    """One row per configured model: model, zone, license as declared, canonical id, name, status, allowed,
    reason. The CLI (``fedinf models licenses``) prints it; startup warns for each row with ``allowed`` false."""
    rows = []
    for m in config.models:
        v = license_verdict(m.license, config.governance)
        lic = lookup(m.license)
        rows.append({
            "model": m.id, "zone": m.zone, "license": m.license, "license_id": v.license_id,
            "name": lic.name if lic else None, "use": config.governance.use, "status": v.status,
            "allowed": v.allowed, "reason": v.reason,
        })
    return rows
