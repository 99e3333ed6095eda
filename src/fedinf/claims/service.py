"""The claims workload as a service over a Gateway: validate, derive, review - each request authenticated,
classified (claims are PHI: ``restricted`` at minimum, whatever the detectors find) and audited with the rule ids
it applied. The HTTP routes (``fedinf.server.claims``) and the CLI (``fedinf claims``) both call this.

Validation runs in the gateway process, on-prem by construction; the one step that may call a model (rewording
derived rules' descriptions, ``claims.describe_route``) goes through the pipeline with ``data_class: restricted``,
so ``decide`` only ever finds on-prem models eligible and refuses (fail closed) when there is none.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import threading
import time
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from fedinf.claims.derive import Derivation, Rejection, derive, rejections
from fedinf.claims.models import Document
from fedinf.claims.parsing import build
from fedinf.claims.rules import Rule
from fedinf.claims.store import RuleStore, open_rule_store
from fedinf.claims.validation import Report, Validator
from fedinf.data_class import DataClass
from fedinf.errors import FedinfError, InvalidX12, PayloadTooLarge

if TYPE_CHECKING:
    from fedinf.gateway import Gateway

DESCRIBE_LIMIT = 50  # at most this many rules are reworded by the model per derivation
CLASSIFY_CHARS = 20_000
_TO_SPACES = re.compile(r"[*~^|:>\r\n]+")


@dataclass
class Outcome:
    """A finished request: its report (validate) or derivation (derive), request id and response headers."""

    request_id: str
    headers: dict[str, str]
    report: Report | None = None
    derivation: Derivation | None = None
    added: int = 0
    updated: int = 0


def decode(data: bytes | str, *, limit: int) -> str:
    """X12 bytes -> text. X12 is ASCII (extended character sets are Latin-1 at most): anything else is invalid."""
    if isinstance(data, str):
        data = data.encode("utf-8", "surrogateescape")
    if len(data) > limit:
        raise PayloadTooLarge(f"the X12 document is {len(data)} bytes; the limit is {limit}",
                              details={"limit": limit})
    if b"\x00" in data[:4096]:
        raise InvalidX12("binary data, not an X12 interchange", details={"segment_index": 0})
    return data.decode("latin-1")


class ClaimsService:
    """Validate / derive / review, bound to a gateway (for auth, classification, audit) and a rule store."""

    def __init__(self, gateway: "Gateway", *, store: RuleStore | None = None,
                 validator: Validator | None = None) -> None:
        cfg = gateway.config
        self.gateway = gateway
        self.settings = cfg.claims
        self.store = store or open_rule_store(cfg.claims.store, state_dir=cfg.server.state_dir,
                                              schema=cfg.claims.schema_name)
        self.validator = validator or Validator()
        self._lock = threading.Lock()  # pyx12 maps are shared by walks: one document at a time per service

    def close(self) -> None:
        self.store.close()

    # ------------------------------------------------------------------ steps

    async def _start(self, endpoint: str, authorization: str | None, *, admin: bool = False) -> Any:
        from fedinf.pipeline import Trace

        trace = Trace(request_id=uuid.uuid4().hex, started=time.monotonic(), endpoint=endpoint)
        access = self.gateway.access
        try:
            trace.principal = await self.gateway.authenticate(authorization)            # authenticate
            if access is not None and trace.principal is not None:
                if admin:
                    trace.principal.require_role("admin")
                else:
                    trace.principal.check_infer()
                await access.admit(trace.principal)                                     # rate limits
        except FedinfError as exc:  # refusals are audited too, as in the chat pipeline
            await self._finish(trace, exc)
            raise
        return trace

    def _classify(self, trace: Any, text: str) -> None:
        """Claims are PHI: the detectors' result, raised to ``restricted`` (never lowered). The detectors see the
        first CLASSIFY_CHARS with X12 separators turned into spaces (the class is restricted whatever they find; the
        entity counts are for the audit record, and a whole 50 MB batch file would take minutes)."""
        from fedinf.privacy import apply_declared

        sample = _TO_SPACES.sub(" ", text[:CLASSIFY_CHARS])
        detected = self.gateway.classifier.classify([sample])
        trace.classification = apply_declared(detected, DataClass.RESTRICTED, may_lower=False)
        if self.gateway.access is not None and trace.principal is not None:
            trace.principal.check_class(trace.classification.data_class)

    async def _finish(self, trace: Any, exc: FedinfError | None = None) -> dict[str, str]:
        if exc is not None:
            trace.status, trace.error_code = exc.status_code, exc.code
        await self.gateway.pipeline.audit(trace)                                           # audit (durable)
        headers = {"x-fedinf-request-id": trace.request_id}
        if trace.classification is not None:
            headers["x-fedinf-data-class"] = trace.classification.data_class.label
        return headers

    async def _guard(self, trace: Any, work: Any) -> Any:
        try:
            return await work
        except FedinfError as exc:
            await self._finish(trace, exc)
            raise

    # ------------------------------------------------------------------ validate

    async def validate(self, data: bytes | str, *, authorization: str | None = None) -> Outcome:
        """Structural checks + approved rules on one X12 document (InvalidX12 when it is not X12)."""
        trace = await self._start("claims.validate", authorization)

        async def work() -> Report:
            text = decode(data, limit=self.settings.max_document_bytes)
            self._classify(trace, text)                                                    # classify
            rules = self.store.approved()
            report = await asyncio.to_thread(self._validate, text, rules)                  # execute (in-process)
            trace.rules = list(report.rules_applied)
            return report

        report = await self._guard(trace, work())
        headers = await self._finish(trace)
        headers["x-fedinf-rules-applied"] = str(len(report.rules_applied))
        return Outcome(request_id=trace.request_id, headers=headers, report=report)

    def _validate(self, text: str, rules: list[Rule]) -> Report:
        with self._lock:
            return self.validator.validate(text, rules)[0]

    def _parse(self, text: str) -> Document:
        with self._lock:
            return build(self.validator.engine.walk(text))

    # ------------------------------------------------------------------ derive

    async def derive(self, documents: list[tuple[str, bytes | str]], *, submitted: list[tuple[str, bytes | str]]
                     | None = None, authorization: str | None = None, describe: bool = False) -> Outcome:
        """Mine rejections (999/997, 277CA, 835) into candidate rules and store them (merging evidence)."""
        trace = await self._start("claims.derive", authorization, admin=True)

        async def work() -> Derivation:
            limit = self.settings.max_document_bytes
            texts = [decode(d, limit=limit) for _, d in documents]
            subs = [decode(d, limit=limit) for _, d in submitted or []]
            self._classify(trace, "\n".join(t[:CLASSIFY_CHARS] for t in texts + subs))
            sub_doc = _merge([await asyncio.to_thread(self._parse, t) for t in subs]) if subs else None
            found: list[Rejection] = []
            for text in texts:
                doc = await asyncio.to_thread(self._parse, text)
                found += rejections(doc, document=hashlib.sha256(text.encode("latin-1")).hexdigest()[:16],
                                    submitted=sub_doc)
            result = derive(found)
            if describe and self.settings.describe_route:
                await self._describe(result.rules, authorization)
            return result

        result = await self._guard(trace, work())
        added, updated = self.store.upsert(result.rules)
        headers = await self._finish(trace)
        return Outcome(request_id=trace.request_id, headers=headers, derivation=result, added=added, updated=updated)

    async def _describe(self, rules: list[Rule], authorization: str | None) -> None:
        """Reword up to DESCRIBE_LIMIT rule descriptions with the configured on-prem model. The prompt holds codes,
        loops and the deterministic description only - never claim content. Failures keep the deterministic text."""
        schema = {"type": "object", "properties": {"description": {"type": "string", "maxLength": 240}},
                  "required": ["description"], "additionalProperties": False}
        for i, rule in enumerate(rules[:DESCRIBE_LIMIT]):
            body = {"model": self.settings.describe_route, "max_tokens": 120, "temperature": 0,
                    "messages": [{"role": "system", "content": "Rewrite a claim-validation rule as one plain English "
                                  "sentence for a billing clerk. Keep every code."},
                                 {"role": "user", "content": f"Rule: {rule.description}\nCheck: {rule.expression}"}],
                    "response_format": {"type": "json_schema", "json_schema": {"name": "d", "schema": schema}},
                    "fedinf": {"data_class": "restricted"}}
            try:
                reply = await self.gateway.chat(body, authorization=authorization)
                import json

                text = json.loads(reply["choices"][0]["message"]["content"])["description"].strip()
            except (FedinfError, ValueError, KeyError, TypeError):
                continue
            if text:
                rules[i] = rule.model_copy(update={"note": f"model wording: {text}"})

    # ------------------------------------------------------------------ review

    async def list_rules(self, *, status: str | None = None, authorization: str | None = None) -> list[Rule]:
        trace = await self._start("claims.rules", authorization)
        rules = self.store.rules(status=status)
        await self._finish(trace)
        return rules

    async def get_rule(self, rule_id: str, *, authorization: str | None = None) -> Rule:
        trace = await self._start("claims.rules", authorization)

        async def work() -> Rule:
            return self.store.get(rule_id)

        rule: Rule = await self._guard(trace, work())
        await self._finish(trace)
        return rule

    async def review(self, rule_id: str, action: str, *, authorization: str | None = None, note: str = "",
                     expression: str | None = None, description: str | None = None) -> Rule:
        """Approve / reject / retire a rule (admin role)."""
        trace = await self._start("claims.review", authorization, admin=True)

        async def work() -> Rule:
            by = getattr(trace.principal, "key_id", None)
            return self.store.review(rule_id, action, by=by, note=note, expression=expression,
                                     description=description)

        rule: Rule = await self._guard(trace, work())
        trace.rules = [rule.id]
        await self._finish(trace)
        return rule


def _merge(docs: list[Document]) -> Document:
    """The submitted 837s as one document (transactions and claims; control numbers tell them apart)."""
    return Document(transactions=[t for d in docs for t in d.transactions], claims=[c for d in docs for c in d.claims])

