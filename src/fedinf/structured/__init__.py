"""Structured output: one schema IR, llguidance constraints for steerable backends, strict mode / instructions for
remote ones, validation (jsonschema-rs, formats on) of every final output, bounded re-asks, never a repair.

Public API: :class:`OutputSpec`, :class:`Plan`, :func:`plan_for`, :class:`Check`, :func:`run`,
:class:`StreamCollector`, :class:`PrefixChecker`, :func:`load_schema`.
"""

from fedinf.structured.check import Check
from fedinf.structured.incremental import PrefixChecker, StreamCollector
from fedinf.structured.plan import OutputSpec, Plan, SpecCache, plan_for, run
from fedinf.structured.schema import Schema, detect_draft, load_schema

__all__ = ["Check", "OutputSpec", "Plan", "PrefixChecker", "Schema", "SpecCache", "StreamCollector", "detect_draft",
           "load_schema", "plan_for", "run"]
