"""Output specs and per-backend plans: how a structured request is sent, checked and re-asked.

Use::

    spec = OutputSpec.from_request(req.response_format, req.fedinf.regex, req.fedinf.grammar)   # 400 on bad schema
    plan = plan_for(spec, backend.capabilities, max_reasks=2)            # per request and target backend
    previous = None
    for attempt in range(plan.max_attempts):
        to_send, extra = plan.prepare(req, attempt, previous)           # extra -> CallContext.extra
        completion = await backend.chat(to_send, ctx_with(extra))
        previous = plan.check(completion)
        if previous.ok:
            break                                                      # previous.value is the parsed output
        if not plan.can_retry(previous, attempt):
            raise plan.error_for(previous)                             # OutputTruncated / OutputValidationError
    meta = plan.metadata()

(:func:`run` does exactly this.) Engines by ``Capabilities.structured``:

* ``grammar`` (steerable, llguidance): ``extra = {"grammar": "%llguidance {}\nstart: %json <constraint>"}`` for
  schemas (llama.cpp's ``json_schema`` field drops the ``x-guidance`` formatting options, a ``%json`` grammar keeps
  them), ``{"grammar": lark}`` / ``{"regex": r}`` otherwise; the request's ``response_format`` is removed. Keywords the constraint cannot express are
  enforced by validation, and a failure is resampled with the errors appended.
* ``strict``: OpenAI strict mode where the transform is exact (:mod:`fedinf.structured.strict`), else as
  ``json_object``.
* ``json_schema``: the normalised schema passed through as ``response_format``, plus instructions.
* ``json_object`` / ``none``: the schema in a system message (and JSON mode where available), validate, re-ask.

A Plan is per request (it counts attempts). Validation always runs on the final output, against the caller's
original schema in its own draft, formats asserted.
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ValidationError

from fedinf.backends.base import Capabilities
from fedinf.errors import CapabilityError, OutputTruncated, OutputValidationError, SchemaError
from fedinf.protocol import ChatRequest, Message
from fedinf.structured.check import Check, check_json, check_text
from fedinf.structured.constraint import Constraint, build_constraint
from fedinf.structured.schema import Schema, load_schema
from fedinf.structured.strict import denull, to_strict

INSTRUCTION_SCHEMA_CHARS = 6000
MAX_ERRORS_IN_REASK = 8
MAX_ECHO_CHARS = 4000


@dataclass
class OutputSpec:
    """What the caller asked the output to be: ``kind`` is ``json_schema``, ``json_object``, ``regex`` or
    ``grammar``. Build with :meth:`from_request` or :meth:`from_pydantic`; derived forms are cached on the spec."""

    kind: str
    schema: Schema | None = None
    regex: str | None = None
    grammar: str | None = None
    model: type[BaseModel] | None = None
    strict_requested: bool = False
    _constraint: Constraint | None = field(default=None, repr=False)
    _strict: tuple[Any, str | None] | None = field(default=None, repr=False)

    @classmethod
    def from_request(cls, response_format: dict[str, Any] | None, fedinf_regex: str | None,
                     fedinf_grammar: str | None) -> OutputSpec | None:
        """The spec of a chat request, or None when it asks for plain text. Raises :class:`SchemaError` (400)."""
        wants_json = response_format is not None and response_format.get("type") not in (None, "text")
        given = [n for n, v in (("response_format", wants_json), ("fedinf.regex", fedinf_regex),
                                ("fedinf.grammar", fedinf_grammar)) if v]
        if len(given) > 1:
            raise SchemaError(f"only one output constraint per request, got {' and '.join(given)}",
                              param=given[1])
        if fedinf_regex is not None:
            return cls(kind="regex", regex=_check_regex(fedinf_regex))
        if fedinf_grammar is not None:
            return cls(kind="grammar", grammar=_check_grammar(fedinf_grammar))
        if not wants_json:
            return None
        assert response_format is not None
        rtype = response_format.get("type")
        if rtype == "json_object":
            return cls(kind="json_object")
        if rtype != "json_schema":
            raise SchemaError(f"response_format.type {rtype!r} is not one of text, json_object, json_schema",
                              param="response_format.type")
        js = response_format.get("json_schema")
        if not isinstance(js, dict):
            raise SchemaError("response_format.json_schema must be an object with `name` and `schema`",
                              param="response_format.json_schema")
        if "schema" not in js:
            return cls(kind="json_object")
        name = str(js.get("name") or "response")
        return cls(kind="json_schema", schema=load_schema(js["schema"], name=name),
                   strict_requested=bool(js.get("strict")))

    @classmethod
    def from_pydantic(cls, model: type[BaseModel]) -> OutputSpec:
        """A spec from a pydantic model: its JSON schema (2020-12); :meth:`Plan.check` returns model instances."""
        schema = model.model_json_schema()
        return cls(kind="json_schema", schema=load_schema(schema, name=model.__name__), model=model)

    def constraint(self) -> Constraint:
        """The llguidance constraint (steerable backends), computed once."""
        if self._constraint is None:
            if self.schema is None:
                self._constraint = Constraint(schema={"type": "object"}, exact=True, by_constraint=["type"])
            else:
                self._constraint = build_constraint(self.schema.normalised)
        return self._constraint

    def strict(self) -> tuple[Any, str | None]:
        """(OpenAI strict schema, None) when exact, else (None, reason); computed once."""
        if self._strict is None:
            self._strict = to_strict(self.schema.normalised) if self.schema else (None, "no schema")
        return self._strict


def _check_regex(regex: str) -> str:
    try:
        re.compile(regex)
    except re.error as exc:
        raise SchemaError(f"fedinf.regex is not a valid regular expression: {exc}", param="fedinf.regex") from None
    return regex


def _check_grammar(grammar: str) -> str:
    try:
        import llguidance
    except ImportError:
        return grammar
    is_err, msgs = llguidance.LLMatcher.validate_grammar_with_warnings(
        llguidance.LLMatcher.grammar_from_lark(grammar), None)
    if is_err:
        raise SchemaError(f"fedinf.grammar does not compile: {msgs[0] if msgs else 'error'}", param="fedinf.grammar")
    return grammar


@dataclass
class Plan:
    """How one request is sent to one backend, checked and re-asked. See the module docstring."""

    spec: OutputSpec
    capabilities: Capabilities
    engine: str
    max_attempts: int
    max_tokens_ceiling: int | None = 4096
    response_format: dict[str, Any] | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    instruct: bool = True
    fallback_reason: str | None = None
    attempts: int = 0
    last_errors: list[str] = field(default_factory=list)
    sent_limit: int | None = None

    def prepare(self, request: ChatRequest, attempt: int, previous: Check | None) -> tuple[ChatRequest, dict]:
        """The request to send for ``attempt`` (0-based) and the backend ``ctx.extra``. ``previous`` is the last
        attempt's :class:`Check` (re-ask messages and a larger ``max_tokens`` derive from it)."""
        self.attempts = attempt + 1
        messages = [m.model_copy() for m in request.messages]
        update: dict[str, Any] = {"response_format": self.response_format}
        if self.instruct:
            messages = _with_system(messages, self._instruction())
        if previous is not None and not previous.ok:
            if previous.truncated:
                update.update(self._more_tokens(request, previous))
            else:
                messages += _reask_messages(previous)
        update["messages"] = messages
        out = request.model_copy(update=update)
        self.sent_limit = out.output_limit
        return out, dict(self.extra)

    def check(self, completion: dict[str, Any]) -> Check:
        """Parse and validate a completion (never repairs)."""
        spec = self.spec
        if spec.kind == "regex":
            pattern = re.compile(spec.regex or "", re.DOTALL)
            return check_text(completion, lambda t: None if pattern.fullmatch(t) else
                              "the reply does not match the required regular expression")
        if spec.kind == "grammar":
            return check_text(completion, lambda t: _grammar_error(spec.grammar or "", t))
        chk = check_json(completion, self._validate, transform=self._transform())
        if chk.ok and spec.model is not None:
            try:
                chk.value = spec.model.model_validate(chk.value)
            except ValidationError as exc:
                chk.ok, chk.errors = False, [f"at /{'/'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()]
        self.last_errors = chk.errors
        return chk

    def can_retry(self, check: Check, attempt: int) -> bool:
        """Whether another attempt may follow ``attempt`` (0-based) after ``check`` failed."""
        if attempt + 1 >= self.max_attempts:
            return False
        if not check.truncated:
            return True
        ceiling = self.max_tokens_ceiling
        return ceiling is not None and (self.sent_limit is None or self.sent_limit < ceiling)

    def error_for(self, check: Check) -> OutputValidationError:
        """The error to raise when no attempt is left: :class:`OutputTruncated` or :class:`OutputValidationError`,
        with the last output and its errors in ``details``."""
        details = {"last_output": check.content, "errors": check.errors, "attempts": self.attempts,
                   "engine": self.engine}
        if check.truncated:
            return OutputTruncated(
                f"the output was cut off by max_tokens after {self.attempts} attempt(s); raise max_tokens",
                details=details)
        return OutputValidationError(
            f"the output did not match the requested format after {self.attempts} attempt(s)", details=details)

    def metadata(self) -> dict[str, Any]:
        """Response metadata: engine, which keywords the constraint enforced and which validation, attempts."""
        meta: dict[str, Any] = {"engine": self.engine, "mode": self.capabilities.structured,
                                "kind": self.spec.kind, "attempts": self.attempts, "validated": True}
        spec = self.spec
        if spec.kind == "json_schema" and self.engine == "llguidance":
            c = spec.constraint()
            meta.update(enforced_by_constraint=c.by_constraint, enforced_by_validation=c.by_validation,
                        constraint_exact=c.exact)
        elif spec.kind == "json_schema" and self.engine == "openai_strict":
            meta.update(enforced_by_constraint=["(openai strict mode)"], enforced_by_validation=["(all)"])
        elif spec.kind in ("regex", "grammar") and self.engine == "llguidance":
            meta.update(enforced_by_constraint=[spec.kind], enforced_by_validation=[])
        else:
            meta.update(enforced_by_constraint=[], enforced_by_validation=["(all)"])
        if spec.schema is not None:
            meta["draft"] = spec.schema.draft
        if self.fallback_reason:
            meta["fallback_reason"] = self.fallback_reason
        if self.spec.schema is not None and self.spec.schema.notes:
            meta["schema_notes"] = list(self.spec.schema.notes)
        return meta

    # -- internals

    def _validate(self, value: Any) -> list[str]:
        if self.spec.schema is not None:
            return self.spec.schema.errors(value)
        return [] if isinstance(value, dict) else ["the reply must be a JSON object"]

    def _transform(self) -> Callable[[Any], Any] | None:
        if self.engine != "openai_strict" or self.spec.schema is None:
            return None
        schema = self.spec.schema

        def undo(value: Any) -> Any:
            stripped = denull(value, schema.normalised)
            return stripped if schema.is_valid(stripped) or not schema.is_valid(value) else value

        return undo

    def _instruction(self) -> str:
        spec = self.spec
        if spec.kind == "regex":
            return f"Reply with text matching this regular expression, and nothing else: {spec.regex}"
        if spec.kind == "grammar":
            return "Reply with text that follows the required grammar, and nothing else."
        if spec.schema is None:
            return "Reply with a single JSON object and nothing else."
        text = json.dumps(spec.schema.normalised, ensure_ascii=False, separators=(",", ":"))
        if len(text) > INSTRUCTION_SCHEMA_CHARS and self.engine == "llguidance":
            return "Reply with a single JSON value and nothing else."
        return ("Reply with a single JSON value that conforms to this JSON Schema, and nothing else "
                f"(no prose, no code fence):\n{text}")

    def _more_tokens(self, request: ChatRequest, previous: Check) -> dict[str, Any]:
        current = request.output_limit or previous.completion_tokens or 256
        new = max(current, previous.completion_tokens or 0) * 2
        if self.max_tokens_ceiling is not None:
            new = min(new, max(self.max_tokens_ceiling, current))
        key = "max_completion_tokens" if request.max_completion_tokens else "max_tokens"
        return {key: new}


def _with_system(messages: list[Message], text: str) -> list[Message]:
    for i, m in enumerate(messages):
        if m.role in ("system", "developer") and isinstance(m.content, str):
            messages[i] = m.model_copy(update={"content": f"{m.content}\n\n{text}"})
            return messages
    return [Message(role="system", content=text), *messages]


def _reask_messages(previous: Check) -> list[Message]:
    echo = (previous.content or "")[:MAX_ECHO_CHARS]
    errors = "\n".join(f"- {e}" for e in previous.errors[:MAX_ERRORS_IN_REASK])
    return [Message(role="assistant", content=echo),
            Message(role="user", content="Your reply does not satisfy the required format:\n"
                                         f"{errors}\nReply again with only the corrected output.")]


def _grammar_error(grammar: str, text: str) -> str | None:
    from fedinf.structured.incremental import text_matches_lark

    ok = text_matches_lark(grammar, text)
    return None if ok in (True, None) else "the reply does not follow the required grammar"


def plan_for(spec: OutputSpec, capabilities: Capabilities, *, max_reasks: int = 2,
             max_tokens_ceiling: int | None = 4096) -> Plan:
    """The plan for sending ``spec`` to a backend with ``capabilities``. Raises :class:`CapabilityError` for a
    grammar on a backend that cannot steer tokens. ``max_tokens_ceiling=None`` forbids raising ``max_tokens``."""
    mode = capabilities.structured
    plan = Plan(spec=spec, capabilities=capabilities, engine="instructions", max_attempts=1 + max(0, max_reasks),
                max_tokens_ceiling=max_tokens_ceiling)
    if mode == "grammar":
        plan.engine = "llguidance"
        if spec.kind == "regex":
            plan.extra, plan.instruct = {"regex": spec.regex}, False
        elif spec.kind == "grammar":
            plan.extra, plan.instruct = {"grammar": spec.grammar}, False
        else:
            plan.extra = {"grammar": spec.constraint().lark()}
        return plan
    if spec.kind == "grammar":
        raise CapabilityError("fedinf.grammar needs a backend with token-level constraints (structured: grammar)",
                              param="fedinf.grammar")
    if spec.kind == "json_schema" and mode == "strict":
        strict, reason = spec.strict()
        if strict is not None:
            plan.engine, plan.instruct = "openai_strict", False
            plan.response_format = {"type": "json_schema", "json_schema": {
                "name": _name(spec), "schema": strict, "strict": True}}
            return plan
        plan.fallback_reason = f"openai strict mode not exact: {reason}"
    if spec.kind == "json_schema" and mode == "json_schema":
        plan.engine = "json_schema"
        plan.response_format = {"type": "json_schema", "json_schema": {
            "name": _name(spec), "schema": spec.schema.normalised if spec.schema else {}, "strict": False}}
        return plan
    if mode in ("strict", "json_schema", "json_object") and spec.kind in ("json_schema", "json_object"):
        plan.engine, plan.response_format = "json_object", {"type": "json_object"}
    return plan


def _name(spec: OutputSpec) -> str:
    raw = spec.schema.name if spec.schema else "response"
    return re.sub(r"[^a-zA-Z0-9_-]", "_", raw)[:64] or "response"


async def run(plan: Plan, request: ChatRequest,
              send: Callable[[ChatRequest, dict[str, Any]], Awaitable[dict[str, Any]]]) -> tuple[dict[str, Any], Check]:
    """Drive ``plan`` to the end: send, check, re-ask. Returns (last completion, its ok Check) or raises
    :class:`OutputTruncated` / :class:`OutputValidationError`."""
    previous: Check | None = None
    for attempt in range(plan.max_attempts):
        to_send, extra = plan.prepare(request, attempt, previous)
        completion = await send(to_send, extra)
        previous = plan.check(completion)
        if previous.ok:
            return completion, previous
        if not plan.can_retry(previous, attempt):
            break
    assert previous is not None
    raise plan.error_for(previous)


class SpecCache:
    """A bounded LRU of :class:`OutputSpec` by request constraint: a schema is checked, normalised and compiled once
    (the spec caches its constraint and strict transform). Hold one per gateway; it is not thread-safe by design of
    asyncio (one event loop)."""

    def __init__(self, maxsize: int = 256) -> None:
        from collections import OrderedDict

        self._items: OrderedDict[str, OutputSpec | None] = OrderedDict()
        self.maxsize = maxsize

    def get(self, response_format: dict[str, Any] | None, fedinf_regex: str | None,
            fedinf_grammar: str | None) -> OutputSpec | None:
        """Like :meth:`OutputSpec.from_request`, cached (errors are not cached)."""
        key = json.dumps([response_format, fedinf_regex, fedinf_grammar], sort_keys=True, default=str)
        if key in self._items:
            self._items.move_to_end(key)
            return self._items[key]
        spec = OutputSpec.from_request(response_format, fedinf_regex, fedinf_grammar)
        self._items[key] = spec
        if len(self._items) > self.maxsize:
            self._items.popitem(last=False)
        return spec
