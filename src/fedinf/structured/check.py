"""Checking a model's output: parse, validate, detect truncation. Never repairs.

:class:`Check` is the one verdict the pipeline acts on: ``ok`` (return it), ``truncated`` (re-ask with more tokens
or fail with ``output_truncated``), or errors (re-ask with the errors, or fail with ``output_validation_failed``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

_FENCE = re.compile(r"^\s*```(?:json|JSON)?\s*\n(.*)\n\s*```\s*$", re.DOTALL)


@dataclass
class Check:
    """The verdict on one completion. ``value`` is the parsed (and for pydantic specs, validated) output."""

    ok: bool
    errors: list[str] = field(default_factory=list)
    truncated: bool = False
    value: Any = None
    content: str | None = None
    finish_reason: str | None = None
    completion_tokens: int | None = None


def completion_text(completion: dict[str, Any]) -> tuple[str | None, str | None, int | None]:
    """(content, finish_reason, completion_tokens) of a ``chat.completion`` dict's first choice."""
    choices = completion.get("choices") or [{}]
    choice = choices[0] or {}
    message = choice.get("message") or {}
    usage = completion.get("usage") or {}
    return message.get("content"), choice.get("finish_reason"), usage.get("completion_tokens")


def parse_json(text: str) -> tuple[bool, Any, str | None]:
    """(parsed, value, error). A Markdown code fence around the whole reply is removed; nothing else is touched."""
    m = _FENCE.match(text)
    if m:
        text = m.group(1)
    try:
        return True, json.loads(text), None
    except json.JSONDecodeError as exc:
        return False, None, f"not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"


def check_json(
    completion: dict[str, Any],
    validate: Callable[[Any], list[str]],
    *,
    transform: Callable[[Any], Any] | None = None,
) -> Check:
    """Parse the completion's content as JSON and validate it (``validate`` returns error strings).

    ``finish_reason == "length"`` with content that does not parse is *truncated*, never repaired. A complete,
    valid JSON value is accepted whatever the finish reason.
    """
    content, finish, used = completion_text(completion)
    base = Check(ok=False, content=content, finish_reason=finish, completion_tokens=used)
    if content is None or not content.strip():
        return replace(base, errors=["the reply is empty"], truncated=finish == "length")
    parsed, value, err = parse_json(content)
    if not parsed:
        truncated = finish == "length"
        msg = "the reply was cut off by max_tokens before the JSON ended" if truncated else str(err)
        return replace(base, errors=[msg], truncated=truncated)
    if transform is not None:
        value = transform(value)
    errors = validate(value)
    if errors and finish == "length":
        return replace(base, errors=errors, truncated=True, value=value)
    return replace(base, ok=not errors, errors=errors, value=value)


def check_text(completion: dict[str, Any], matches: Callable[[str], str | None]) -> Check:
    """Check a non-JSON reply (regex / grammar): ``matches`` returns an error string or None."""
    content, finish, used = completion_text(completion)
    text = content or ""
    err = matches(text)
    base = Check(ok=False, content=content, finish_reason=finish, completion_tokens=used)
    if err is None:
        return replace(base, ok=True, value=text)
    return replace(base, errors=[err], truncated=finish == "length")
