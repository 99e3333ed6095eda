"""Streaming support: collect a streamed reply for the final check, and check a prefix as it grows.

* :class:`StreamCollector` turns ``chat.completion.chunk`` dicts back into one ``chat.completion`` dict so that
  :meth:`fedinf.structured.plan.Plan.check` runs on the complete output (validation always runs at the end).
* :class:`PrefixChecker` (needs llguidance, the ``conformance`` extra) follows a JSON schema / Lark grammar / regex
  byte by byte: ``feed(delta)`` returns False as soon as no continuation can be valid - a remote stream that has
  gone wrong can be abandoned (and re-asked) before it finishes. Steerable backends cannot go wrong this way.

Pipeline use for a streamed structured request: steerable backend -> forward chunks as they come, feed a
collector, ``plan.check(collector.completion())`` at the end (an invalid result ends the stream with an error
event); remote backend -> buffer with a collector, check, re-ask if needed, then emit the validated content.
"""

from __future__ import annotations

from typing import Any

from fedinf.protocol import completion as make_completion


class StreamCollector:
    """Accumulates streamed chunks: content, finish reason, usage."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.finish_reason: str | None = None
        self.usage: dict[str, int] | None = None
        self.model = ""
        self.id: str | None = None

    def feed(self, chunk: dict[str, Any]) -> str:
        """Record one chunk; returns its content delta ("" if none)."""
        self.model = chunk.get("model") or self.model
        self.id = chunk.get("id") or self.id
        if chunk.get("usage"):
            self.usage = chunk["usage"]
        text = ""
        for choice in chunk.get("choices") or ():
            delta = choice.get("delta") or {}
            text += delta.get("content") or ""
            if choice.get("finish_reason"):
                self.finish_reason = choice["finish_reason"]
        if text:
            self.parts.append(text)
        return text

    @property
    def text(self) -> str:
        return "".join(self.parts)

    def completion(self) -> dict[str, Any]:
        """The equivalent ``chat.completion`` dict."""
        return make_completion(model=self.model, content=self.text, finish_reason=self.finish_reason or "stop",
                               usage=self.usage, id=self.id)


class PrefixChecker:
    """Byte-level llguidance matcher over a grammar: is the text so far a prefix of some valid output?"""

    def __init__(self, grammar: str) -> None:
        import llguidance

        from fedinf.structured.tokenizers import byte_tokenizer

        self._tok = byte_tokenizer()
        self._m = llguidance.LLMatcher(self._tok, grammar, log_level=0)
        self.ok = not self._m.is_error()
        self.error: str | None = self._m.get_error() if not self.ok else None

    @classmethod
    def for_schema(cls, schema: Any) -> PrefixChecker:
        """A checker for a JSON schema constraint (e.g. ``OutputSpec.constraint().schema``). Whitespace is
        relaxed to flexible, since a remote model formats as it likes."""
        import llguidance

        if isinstance(schema, dict):
            schema = {**schema, "x-guidance": {"whitespace_flexible": True, "lenient": True}}
        return cls(llguidance.LLMatcher.grammar_from_json_schema(schema))

    @classmethod
    def for_lark(cls, lark: str) -> PrefixChecker:
        import llguidance

        return cls(llguidance.LLMatcher.grammar_from_lark(lark))

    @classmethod
    def for_regex(cls, regex: str) -> PrefixChecker:
        import llguidance

        return cls(llguidance.LLMatcher.grammar_from_regex(regex))

    def feed(self, delta: str) -> bool:
        """Consume ``delta``; False once the text can no longer become valid."""
        if not self.ok or not delta:
            return self.ok
        ids = list(delta.encode("utf-8"))
        n = self._m.try_consume_tokens(ids)
        if n != len(ids) or self._m.is_error():
            self.ok = False
            self.error = self._m.get_error() or "unexpected text"
        return self.ok

    def complete(self) -> bool:
        """True when the text consumed so far is a complete valid output."""
        return self.ok and bool(self._m.is_accepting())


def text_matches_lark(grammar: str, text: str) -> bool | None:
    """True / False whether ``text`` is in the Lark grammar's language; None when llguidance is not installed."""
    try:
        checker = PrefixChecker.for_lark(grammar)
    except ImportError:
        return None
    return checker.feed(text) and checker.complete()


def json_prefix_ok(schema: Any, text: str) -> bool | None:
    """Whether ``text`` can still become valid under ``schema`` (None without llguidance)."""
    try:
        checker = PrefixChecker.for_schema(schema)
    except ImportError:
        return None
    return checker.feed(text)


__all__ = ["PrefixChecker", "StreamCollector", "json_prefix_ok", "text_matches_lark"]
