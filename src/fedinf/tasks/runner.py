"""Running a task on one document: load -> extractors -> model (constrained JSON) -> merge -> validate -> result.

:class:`TaskRunner` talks to models only through :class:`ChatClient` (``async chat(body) -> completion``), so the
same code runs against the in-process :class:`~fedinf.gateway.Gateway` (:class:`GatewayClient`), a remote fedinf
server, or a scripted function in tests. :meth:`TaskRunner.run_bytes` is the per-document function batch runners
call (the asyncio one in :mod:`fedinf.tasks.batch`, or a Ray Data ``map`` later): it needs nothing but the bytes.

Errors: document errors (``invalid_document``, ``encrypted_document``, ``needs_ocr``, ``payload_too_large``),
policy refusals (``policy_violation``) and backend failures propagate as :class:`~fedinf.errors.FedinfError`; a
model answer that fails validation does not - the record is then built from the extractors alone and a warning says
so.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import jsonschema_rs

from fedinf.data_class import DataClass
from fedinf.documents import Document, DocumentLimits, load_bytes, split_document
from fedinf.documents.ocr import OcrEngine, make_engine
from fedinf.errors import (
    AllTargetsFailed, BackendTimeout, FedinfError, InvalidDocument, OutputValidationError, PolicyViolation,
    StreamInterrupted,
)
from fedinf.extractors import Found, run_extractors
from fedinf.tasks.context import candidates_note, model_scope, snippets, sub_schema
from fedinf.tasks.merge import merge
from fedinf.tasks.prompt import chat_body
from fedinf.tasks.spec import TaskSpec


@runtime_checkable
class ChatClient(Protocol):
    async def chat(self, body: dict[str, Any]) -> dict[str, Any]:
        """Return an OpenAI ``chat.completion`` dict or raise a FedinfError."""
        ...


class GatewayClient:
    """A :class:`ChatClient` over an in-process Gateway; also tells which models (and zones) a route reaches."""

    def __init__(self, gateway: Any, *, authorization: str | None = None) -> None:
        self.gateway = gateway
        self.authorization = authorization  # the HTTP Authorization header value ("Bearer fk_...")

    async def chat(self, body: dict[str, Any]) -> dict[str, Any]:
        reply: dict[str, Any] = await self.gateway.chat(body, authorization=self.authorization)
        return reply

    def classify(self, texts: list[str]) -> DataClass:
        """The class the gateway's classifier detects in ``texts`` (so a task declares at least that)."""
        detected: DataClass = self.gateway.classifier.classify(texts).data_class
        return detected

    def targets(self, route: str) -> list[tuple[str, str]]:
        """``(model_id, zone)`` for every model ``route`` (a route alias or a model id) may use."""
        cfg = self.gateway.config
        ids = list(cfg.routes[route].models) if route in cfg.routes else [route]
        models = self.gateway.network.models
        return [(mid, models[mid].zone_name) for mid in ids if mid in models]


@dataclass
class TaskResult:
    task: str
    document: dict[str, Any]
    record: dict[str, Any]
    fields: dict[str, Any]
    checks: list[dict[str, Any]]
    warnings: list[str]
    metadata: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"task": self.task, "document": self.document, "record": self.record, "fields": self.fields,
                "checks": self.checks, "warnings": self.warnings, "metadata": self.metadata}


class TaskRunner:
    """Runs tasks; holds the chat client and nothing else that changes."""

    def __init__(self, client: ChatClient) -> None:
        self.client = client
        self._ocr: dict[str, OcrEngine] = {}  # engines load their models once, on first use

    def ocr_engine(self, name: str) -> OcrEngine | None:
        """The runner's OCR engine called ``name`` (None for ``off``)."""
        if name == "off":
            return None
        if name not in self._ocr:
            self._ocr[name] = make_engine(name)
        return self._ocr[name]

    # ------------------------------------------------------------------ entry points

    async def run_bytes(self, spec: TaskSpec, data: bytes, *, name: str = "document",
                        media_type: str | None = None) -> TaskResult:
        limits = DocumentLimits(max_bytes=spec.limits.max_document_bytes, max_pages=spec.limits.max_pages)
        doc = await asyncio.to_thread(load_bytes, data, name=name, media_type=media_type, limits=limits,
                                      ocr=self.ocr_engine(spec.ocr))
        return await self.run(spec, doc)

    async def run(self, spec: TaskSpec, doc: Document) -> TaskResult:
        started = time.monotonic()
        if doc.kind not in spec.inputs:
            raise InvalidDocument(f"task {spec.name!r} accepts {', '.join(spec.inputs)} documents, not {doc.kind}",
                                  code="unsupported_document_kind")
        if spec.builder is not None:
            from fedinf.tasks.builders import get_builder

            return await get_builder(spec.builder)(self, spec, doc)
        mapping = {f: r.extractor for f, r in spec.fields.items() if r.extractor}
        found = await asyncio.to_thread(run_extractors, doc, mapping)
        warnings = list(doc.warnings)
        meta: dict[str, Any] = {"route": spec.route, "data_class": spec.policy.min_data_class.label,
                                "models": [], "zones": [], "model_calls": 0, "usage": {}}
        model_record = None
        if spec.use_model and spec.model_input == "snippets":
            model_record = await self._ask_about(spec, doc, found, meta, warnings)
        elif spec.use_model:
            model_record = await self._ask_model(spec, doc, meta, warnings)
        merged = merge(spec, doc, model_record, found)
        record = _clamp(merged.record, spec.output_schema)
        errors = [e.message for e in jsonschema_rs.validator_for(spec.output_schema).iter_errors(record)]
        warnings += merged.warnings + [f"record does not match the output schema: {m}" for m in errors]
        meta.update(schema_valid=not errors, latency_ms=round((time.monotonic() - started) * 1000, 1),
                    model=meta["models"][0] if meta["models"] else None,
                    zone=meta["zones"][0] if meta["zones"] else None)
        return TaskResult(task=spec.name, document=doc.summary(), record=record,
                          fields={k: v.to_dict() for k, v in merged.fields.items()},
                          checks=[c.to_dict() for c in merged.checks], warnings=warnings, metadata=meta)

    # ------------------------------------------------------------------ the model call(s)

    async def ask_model(self, spec: TaskSpec, doc: Document, meta: dict[str, Any],
                        warnings: list[str]) -> dict[str, Any] | None:
        """The model's record for ``doc`` under ``spec`` (constrained to ``spec.output_schema``), or None; for
        record builders (fedinf.tasks.builders), which ask with their own prompt and schema."""
        return await self._ask_model(spec, doc, meta, warnings)

    def _target(self, spec: TaskSpec, warnings: list[str]) -> str:
        """The route or model to call, honouring ``policy.allowed_zones`` before anything is sent (fail closed)."""
        allowed = spec.policy.allowed_zones
        if allowed is None:
            return spec.route
        targets = getattr(self.client, "targets", None)
        if targets is None:
            raise PolicyViolation(f"task {spec.name!r} restricts zones to {allowed}, but the client cannot tell "
                                  "which zones its models run in", code="policy_violation")
        reachable = targets(spec.route)
        ok: list[str] = [str(mid) for mid, zone in reachable if zone in allowed]
        if not ok:
            raise PolicyViolation(
                f"task {spec.name!r} may only run in zones {allowed}; route {spec.route!r} reaches "
                f"{sorted({z for _, z in reachable}) or 'no models'}", details={"allowed_zones": allowed})
        if len(ok) < len(reachable):
            warnings.append(f"route {spec.route!r} narrowed to {ok[0]!r} (policy.allowed_zones)")
            return ok[0]
        return spec.route

    async def _declared_class(self, spec: TaskSpec, body: dict[str, Any]) -> DataClass:
        """The task's minimum class, raised to what the client's classifier detects (declaring lower than detected
        would be refused as lowering)."""
        floor = spec.policy.min_data_class
        classify = getattr(self.client, "classify", None)
        if classify is None:
            return floor
        texts = [m["content"] for m in body["messages"] if isinstance(m.get("content"), str)]
        detected = await asyncio.to_thread(classify, texts)
        return max(floor, DataClass.parse(detected))

    async def _ask_about(self, spec: TaskSpec, doc: Document, found: dict[str, Found], meta: dict[str, Any],
                         warnings: list[str]) -> dict[str, Any] | None:
        """The bounded second opinion (:mod:`fedinf.tasks.context`): unsettled fields only, from snippets."""
        scope = model_scope(spec, found)
        meta["model_fields"] = scope
        if not scope:
            return None
        target = self._target(spec, warnings)
        text = candidates_note(found, scope) + snippets(doc, found)
        body = chat_body(spec, doc, text, target=target, schema=sub_schema(spec.output_schema, scope))
        return await self._call(spec, body, meta, warnings, part="the snippets")

    async def _call(self, spec: TaskSpec, body: dict[str, Any], meta: dict[str, Any], warnings: list[str], *,
                    part: str) -> dict[str, Any] | None:
        """One model call: declared class, degrade to extractors on rejected output or a timeout (marked)."""
        declared = await self._declared_class(spec, body)
        body["fedinf"]["data_class"] = declared.label
        if declared > DataClass.parse(meta["data_class"]):
            meta["data_class"] = declared.label
        try:
            resp = await self.client.chat(body)
        except OutputValidationError as exc:
            warnings.append(f"model output rejected ({exc.code}) on {part}; fields come from the extractors only")
            return None
        except FedinfError as exc:
            if not _timed_out(exc):
                raise
            meta["model_timeout"] = True
            warnings.append(f"model timed out on {part} ({_deadline_hint(spec)}); fields come from the extractors "
                            "only")
            return None
        meta["model_calls"] += 1
        _note_model(meta, resp, self.client)
        content = ((resp.get("choices") or [{}])[0].get("message") or {}).get("content")
        try:
            value = json.loads(content or "")
        except ValueError:
            warnings.append(f"model answer on {part} is not JSON; ignored")
            return None
        return value if isinstance(value, dict) else None

    async def _ask_model(self, spec: TaskSpec, doc: Document, meta: dict[str, Any],
                         warnings: list[str]) -> dict[str, Any] | None:
        target = self._target(spec, warnings)
        chunks = split_document(doc, max_tokens=spec.limits.chunk_tokens)
        if len(chunks) > spec.limits.max_chunks:
            warnings.append(f"document split into {len(chunks)} chunks; the model read the first "
                            f"{spec.limits.max_chunks} (pages 1-{chunks[spec.limits.max_chunks - 1].last_page}); "
                            "extractors read all of it")
            chunks = chunks[:spec.limits.max_chunks]
        records = []
        for chunk in chunks:
            body = chat_body(spec, doc, chunk.text, target=target)
            value = await self._call(spec, body, meta, warnings, part=f"chunk {chunk.index + 1}")
            if meta.get("model_timeout"):
                break
            if value is not None:
                records.append(value)
        return _combine(records, spec.output_schema) if records else None


def _timed_out(exc: FedinfError) -> bool:
    """A deadline ran out (one target, or every target of a route)."""
    if isinstance(exc, (BackendTimeout, StreamInterrupted)):
        return True
    if isinstance(exc, AllTargetsFailed):
        return bool(exc.failures) and all(isinstance(e, (BackendTimeout, StreamInterrupted))
                                          for _, e in exc.failures)
    return False


def _deadline_hint(spec: TaskSpec) -> str:
    """Which deadline applied and the setting that changes it (no content)."""
    if spec.timeout_s:
        return (f"deadline {spec.timeout_s:g} s per model call, from the task's timeout_s or `fedinf run --timeout`; "
                "raise it there")
    return ("deadline from the model's timeouts.total_s or server.request_timeout_s (default 120 s); set the task's "
            "timeout_s or `fedinf run --timeout` to change it")


def _note_model(meta: dict[str, Any], resp: dict[str, Any], client: Any) -> None:
    model = resp.get("model")
    ext = resp.get("fedinf") or {}
    if model and model not in meta["models"]:
        meta["models"].append(model)
        zone = ext.get("zone")
        if zone is None and hasattr(client, "targets"):
            zone = next((z for m, z in client.targets(model)), None)
        if zone and zone not in meta["zones"]:
            meta["zones"].append(zone)
    if ext.get("data_class"):
        meta["data_class"] = ext["data_class"]
    for k, v in (resp.get("usage") or {}).items():
        if isinstance(v, int):
            meta["usage"][k] = meta["usage"].get(k, 0) + v


def _combine(records: list[dict[str, Any]], schema: dict[str, Any]) -> dict[str, Any]:
    """One record from per-chunk records: the first non-null scalar wins; arrays are concatenated."""
    out: dict[str, Any] = {}
    for name, prop in schema["properties"].items():
        values = [r.get(name) for r in records if r.get(name) not in (None, "")]
        if any(isinstance(v, list) for v in values):
            out[name] = [x for v in values if isinstance(v, list) for x in v][:prop.get("maxItems", 1000)]
        else:
            out[name] = values[0] if values else None
    return out


def _clamp(record: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    """Cut over-long extractor strings to the schema's ``maxLength`` (the model is already constrained)."""
    out = dict(record)
    for name, prop in schema["properties"].items():
        v = out.get(name)
        limits = [s.get("maxLength") for s in [prop, *prop.get("anyOf", [])] if isinstance(s, dict)]
        limit = next((m for m in limits if m), None)
        if isinstance(v, str) and limit and len(v) > limit:
            out[name] = v[:limit]
    return out
