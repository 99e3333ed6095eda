"""The model-network file: parsed strictly (unknown keys are errors), errors name the file, line and key.

The YAML describes zones, models, routes and server settings. Secrets never appear in it: a model endpoint names the
environment variable that holds its API key (``api_key_env``). :func:`load_config` is the only entry point;
:func:`default_config` is the embedded default (the local SmolLM2 model in an ``onprem`` zone).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from fedinf.data_class import DataClass
from fedinf.errors import ConfigError

ZoneKind = Literal["onprem", "vpc", "cloud"]
BackendName = str  # validated against the backend registry at network build time
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:/@-]{0,127}$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Zone(_Strict):
    kind: ZoneKind = Field(description="Where the zone's models run: onprem, vpc or cloud.")
    clearance: DataClass = Field(description="The highest data class this zone may receive.")
    pseudonymized_clearance: DataClass | None = Field(
        default=None, description="A higher class the zone may receive if entities are pseudonymized first.")
    description: str = Field(default="", description="Free text shown in reports.")

    @field_validator("clearance", "pseudonymized_clearance", mode="before")
    @classmethod
    def _cls(cls, v: Any) -> Any:
        return None if v is None else DataClass.parse(v)


class Endpoint(_Strict):
    url: str | None = Field(default=None, description="Base URL, e.g. http://10.0.0.5:8000/v1 (remote backends).")
    api_key_env: str | None = Field(default=None, description="Environment variable holding the API key.")
    weight: float = Field(default=1.0, gt=0, description="Relative share of traffic for load balancing.")
    name: str | None = Field(default=None, description="Replica name shown in health and metrics.")

    @field_validator("url")
    @classmethod
    def _url(cls, v: str | None) -> str | None:
        if v is not None and not re.match(r"^https?://[^\s/]+", v):
            raise ValueError("must be an http:// or https:// URL")
        return v.rstrip("/") if v else v

    def api_key(self) -> str | None:
        return os.environ.get(self.api_key_env) if self.api_key_env else None


class Timeouts(_Strict):
    connect_s: float = Field(default=5.0, gt=0, description="TCP/TLS connect timeout per attempt.")
    read_s: float = Field(default=60.0, gt=0, description="Longest silence while waiting for bytes.")
    total_s: float = Field(default=120.0, gt=0, description="Overall deadline for one request, all attempts.")


class Cost(_Strict):
    input_per_mtok: float = Field(default=0.0, ge=0, description="Price per million input tokens.")
    output_per_mtok: float = Field(default=0.0, ge=0, description="Price per million output tokens.")


class ModelSpec(_Strict):
    id: str = Field(description="The name clients use in `model`.")
    backend: BackendName = Field(description="local | openai | anthropic | fake")
    zone: str = Field(description="The zone the model runs in (a key of `zones`).")
    license: str = Field(description="SPDX id or named license of the model weights/terms.")
    upstream_model: str | None = Field(default=None, description="Model name sent upstream (default: id).")
    context_window: int = Field(default=8192, gt=0, description="Maximum prompt + completion tokens.")
    capabilities: list[str] = Field(
        default_factory=list, description="Declared extras: tools, vision, embeddings, json_schema, strict, grammar.")
    cost: Cost = Field(default_factory=Cost, description="Prices, for the cost strategy and reports.")
    endpoints: list[Endpoint] = Field(default_factory=list, description="One or more replicas.")
    timeouts: Timeouts = Field(default_factory=Timeouts, description="Per-model timeouts.")
    options: dict[str, Any] = Field(default_factory=dict, description="Backend-specific options.")

    @field_validator("id")
    @classmethod
    def _id(cls, v: str) -> str:
        if not _ID.match(v):
            raise ValueError("must be 1-128 characters of letters, digits and . _ : / @ -")
        return v


class Route(_Strict):
    models: list[str] = Field(min_length=1, description="Model ids, in order of preference.")
    strategy: Literal["priority", "cost", "latency", "cascade"] = Field(
        default="priority", description="How eligible models are ordered: route order, cheapest, fastest observed, "
        "or small-local-first escalating when the output fails its check.")
    hedge_after_ms: float | Literal["p95"] | None = Field(
        default=None, description="Hedge requests marked `fedinf.idempotent`: after this many ms (or the first "
        "target's observed p95, `p95`) send a second attempt to another eligible endpoint; the first good answer wins.")

    @field_validator("hedge_after_ms")
    @classmethod
    def _hedge(cls, v: Any) -> Any:
        if isinstance(v, (int, float)) and v <= 0:
            raise ValueError("must be a positive number of milliseconds or `p95`")
        return v


class Server(_Strict):
    host: str = Field(default="127.0.0.1", description="Address to bind; non-loopback requires API keys.")
    port: int = Field(default=8080, ge=0, le=65535, description="TCP port (0 picks a free one).")
    max_body_bytes: int = Field(default=4 * 1024 * 1024, gt=0, description="Larger request bodies get 413.")
    request_timeout_s: float = Field(default=120.0, gt=0, description="Default deadline when a model sets none.")
    shutdown_grace_s: float = Field(default=30.0, ge=0, description="Time in-flight requests get at shutdown.")
    state_dir: str = Field(default=".fedinf", description="Where embedded stores (SQLite, keys) live.")


class OutlierDetection(_Strict):
    """Passive health: replicas that keep failing are ejected for a growing time."""

    consecutive_failures: int = Field(default=5, ge=1, description="Eject a replica after this many failures in a row.")
    base_ejection_s: float = Field(default=30.0, gt=0, description="First ejection time; doubles on each re-ejection.")
    max_ejection_s: float = Field(default=300.0, gt=0, description="Longest ejection time.")
    max_ejected_share: float = Field(default=0.5, ge=0, le=1, description="Never eject more than this share of a "
                                     "model's replicas (one may always be ejected when a model has two or more).")


class Retries(_Strict):
    """Retries of retryable failures (before the first streamed byte only), within the request deadline."""

    max_attempts: int = Field(default=3, ge=1, description="Attempts per request, replicas and fallbacks included.")
    backoff_base_ms: float = Field(default=25.0, ge=0, description="Full-jitter backoff base.")
    backoff_cap_ms: float = Field(default=250.0, ge=0, description="Full-jitter backoff cap.")
    budget_ratio: float = Field(default=0.2, ge=0, le=1, description="Retry budget: a retry is sent while retries "
                                "in flight are under this share of requests in flight (or `budget_min`), or while the "
                                "retries of the last 10 s are under this share of that time's requests. Hedges have a "
                                "budget of the same size of their own.")
    budget_min: int = Field(default=3, ge=0, description="Retries (and hedges) always allowed in flight.")


class Breaker(_Strict):
    """Circuit breaker per endpoint: closed -> open (failure rate) -> half-open (probes) -> closed."""

    failure_rate: float = Field(default=0.5, gt=0, le=1, description="Open when this share of recent calls failed.")
    min_calls: int = Field(default=10, ge=1, description="Calls in the window needed before the rate counts.")
    window_s: float = Field(default=10.0, gt=0, description="Sliding window of calls the failure rate is computed on.")
    open_s: float = Field(default=5.0, gt=0, description="Time an open breaker rejects calls before half-opening.")
    half_open_probes: int = Field(default=1, ge=1, description="Trial calls let through while half-open.")


class Reliability(_Strict):
    """Health checks, outlier ejection, retries, retry budget, circuit breakers and hedging."""

    health_interval_s: float = Field(default=10.0, ge=0, description="Active health check period per endpoint "
                                     "(0 disables the background checks).")
    health_timeout_s: float = Field(default=3.0, gt=0, description="Time a health probe may take.")
    unhealthy_after: int = Field(default=2, ge=1, description="Failed probes in a row before an endpoint is unhealthy.")
    outlier: OutlierDetection = Field(default_factory=OutlierDetection, description="Passive outlier detection.")
    retries: Retries = Field(default_factory=Retries, description="Retries, backoff and the retry budget.")
    breaker: Breaker = Field(default_factory=Breaker, description="Circuit breakers per endpoint.")
    redis_url: str | None = Field(default=None, description="Share circuit breakers and outlier ejections across "
                                  "gateway processes through this Redis, e.g. redis://127.0.0.1:6379/0 (needs the "
                                  "`redis` extra).")
    redis_prefix: str = Field(default="fedinf", description="Prefix of the Redis keys holding breaker and ejection "
                              "state.")
    hedge_min_samples: int = Field(default=20, ge=1, description="Latency samples needed before `p95` hedging starts.")


class Governance(_Strict):
    use: Literal["commercial", "research", "personal", "government"] = Field(
        default="commercial", description="The organisation's use, checked against each model's license.")
    accept_conditional_licenses: bool = Field(
        default=False, description="Serve models whose license allows this use only under conditions.")
    accept_unknown_licenses: bool = Field(
        default=False, description="Serve models whose license is not in the registry (default: excluded).")
    allow_lowering: bool = Field(default=False, description="Let callers declare a lower data class than detected.")
    default_class: DataClass = Field(default=DataClass.PUBLIC,
                                     description="Class of a request in which nothing is detected.")
    entity_classes: dict[str, DataClass] = Field(default_factory=dict, description="Override the entity -> class map.")
    custom_patterns: list[dict[str, Any]] = Field(
        default_factory=list, description="Extra detectors: {name, regex, class, context (optional)}.")

    @field_validator("default_class", mode="before")
    @classmethod
    def _cls(cls, v: Any) -> Any:
        return DataClass.parse(v)

    @field_validator("entity_classes", mode="before")
    @classmethod
    def _map(cls, v: Any) -> Any:
        return {k: DataClass.parse(c) for k, c in (v or {}).items()}


class AccessSettings(_Strict):
    """`access:` — where API keys and tenants are stored, and where rate limits are counted."""

    store: str | None = Field(default=None, description=(
        "Key store URL: sqlite:///path.db (relative to server.state_dir) or postgresql://user@host/db. "
        "Default: sqlite keys.db in server.state_dir."))
    schema_name: str = Field(default="fedinf", description="PostgreSQL schema holding the tables.")
    key_cache_ttl_s: float = Field(default=5.0, ge=0, description=(
        "How long a looked-up key is cached in memory. Without redis_url a revocation reaches other processes "
        "within this time; with it, at once (pub/sub), this TTL being the safety net."))
    key_cache_fallback_ttl_s: float = Field(default=0.5, ge=0, description=(
        "With redis_url: the key cache TTL while the pub/sub invalidation channel is down (fail safe)."))
    redis_url: str | None = Field(default=None, description=(
        "redis://host:port/db: count rate limits and budgets in Redis, shared by every replica. "
        "Default: exact per-process counters."))
    redis_prefix: str = Field(default="fedinf", description=(
        "Prefix of the Redis keys used for limits and of the key invalidation channel."))
    require_keys: bool = Field(default=True, description=(
        "false serves without API keys; only honoured when server.host is a loopback address."))


class AuditSettings(_Strict):
    """`audit:` — the hash-chained audit trail."""

    enabled: bool = Field(default=True, description=(
        "Write one audit record per request (durable before the reply; see intents)."))
    store: str | None = Field(default=None, description=(
        "Audit store URL: sqlite:///path.db (relative to server.state_dir) or postgresql://user@host/db. "
        "Default: sqlite audit.db in server.state_dir."))
    schema_name: str = Field(default="fedinf", description="PostgreSQL schema holding the tables.")
    sqlite_synchronous: Literal["full", "normal"] = Field(default="full", description=(
        "full: every record is durable (survives a process crash and a power loss) before the reply; normal: "
        "survives a process crash only (no fsync). How full is achieved: see sqlite_journal."))
    sqlite_journal: bool = Field(default=True, description=(
        "With sqlite_synchronous full: make each record durable with one fdatasync of a small entry in a preallocated "
        "append-only journal (audit.db-journal.d/ next to the database, one journal per process), then insert it "
        "into SQLite with synchronous=NORMAL without the reply waiting; the journal is replayed after a crash or power "
        "loss, exactly once. false: fsync every SQLite commit instead (synchronous=FULL; slower, nothing beside the "
        "database file). Ignored for normal and for PostgreSQL."))
    intents: bool = Field(default=True, description=(
        "With the journal: a request served alone journals an intent record (who, data class, eligible models and "
        "zones) once its upstream request is sent, fdatasynced while the call runs; its final record is then written before "
        "the reply and fdatasynced within 10 ms (a process crash keeps it; a power loss in those 10 ms keeps the "
        "intent). A gateway that dies mid-request leaves the intent, recorded with error code interrupted at the "
        "next start. Under load (other requests in flight) no intent is written and the final record is fdatasynced "
        "before the reply. false: always the latter."))
    journal_segment_mb: int = Field(default=64, ge=1, le=4096, description=(
        "Size of one preallocated journal segment; a full segment is deleted once its records are synced into SQLite."))
    max_batch: int = Field(default=512, ge=1, description="Most records committed in one transaction.")
    hmac_key_env: str | None = Field(default=None, description=(
        "Environment variable holding a secret: records are then chained with HMAC-SHA256, so a database "
        "writer without the secret cannot forge a consistent chain."))


class ClaimsSettings(_Strict):
    """`claims:` — the health-care claims workload (X12 pre-validation and rules derived from rejections)."""

    store: str | None = Field(default=None, description=(
        "Rule store URL: sqlite:///path.db (relative to server.state_dir) or postgresql://user@host/db. "
        "Default: sqlite claims.db in server.state_dir."))
    schema_name: str = Field(default="fedinf", description="PostgreSQL schema holding the tables.")
    max_document_bytes: int = Field(default=50_000_000, ge=1, description="Largest X12 document accepted.")
    describe_route: str | None = Field(default=None, description=(
        "Model or route that rewords derived rules' descriptions (optional; claims are restricted data, so "
        "only on-prem models are ever eligible). Unset: deterministic wording only."))


class RetrievalSettings(_Strict):
    """`retrieval:` — collections of documents that chat requests can search (see docs/retrieval.md)."""

    store: str | None = Field(default=None, description=(
        "Retrieval store URL: sqlite:///path.db (relative to server.state_dir; SQLite FTS5 + exact vector search) or "
        "postgresql://user@host/db (the scale-out store). Default: sqlite retrieval.db in server.state_dir."))
    schema_name: str = Field(default="fedinf_retrieval", description="PostgreSQL schema holding the tables.")
    embedder: str = Field(default="local", description=(
        "How chunks and queries are embedded: `local` (all-MiniLM-L6-v2 in process; needs the `embeddings` extra), "
        "`hashing` (lexical feature hashing, no model), or the id of a model or route with the `embeddings` "
        "capability (the text is classified first and only sent to models eligible for its data class)."))
    chunk_chars: int = Field(default=1000, ge=50, le=20000, description="Most characters per chunk.")
    chunk_overlap: int = Field(default=150, ge=0, description="Characters shared by neighbouring chunks.")
    top_k: int = Field(default=5, ge=1, le=100, description="Chunks a chat request retrieves by default.")
    mode: Literal["hybrid", "bm25", "vector"] = Field(default="hybrid", description=(
        "Default search: hybrid (BM25 + vectors, reciprocal rank fusion), bm25 or vector alone."))
    max_context_chars: int = Field(default=6000, ge=200, description=(
        "Most characters of retrieved text put into a chat request's prompt."))
    max_document_bytes: int = Field(default=20 * 1024 * 1024, gt=0, description="Larger documents are refused (413).")

    @model_validator(mode="after")
    def _overlap(self) -> "RetrievalSettings":
        if self.chunk_overlap >= self.chunk_chars // 2:
            raise ValueError("chunk_overlap must be less than half of chunk_chars")
        return self


class TracingSettings(_Strict):
    """`tracing:` — OpenTelemetry spans for every pipeline step (needs the `otel` extra). Spans carry data classes,
    entity types, models, zones and outcomes; never request or response content."""

    enabled: bool = Field(default=False, description="Export a trace per request (off: a no-op tracer, no cost).")
    exporter: Literal["otlp", "console"] = Field(default="otlp", description=(
        "otlp: send to an OpenTelemetry collector; console: print spans to stdout (debugging)."))
    protocol: Literal["http/protobuf", "grpc"] = Field(default="http/protobuf", description="OTLP transport.")
    endpoint: str | None = Field(default=None, description=(
        "Collector URL, e.g. http://otel-collector:4318/v1/traces (http/protobuf) or http://otel-collector:4317 "
        "(grpc). Default: the OTEL_EXPORTER_OTLP_* environment variables, else localhost."))
    headers_env: str | None = Field(default=None, description=(
        "Environment variable holding extra OTLP headers as `key=value,key2=value2` (e.g. an auth token)."))
    service_name: str = Field(default="fedinf", min_length=1, description="The `service.name` resource attribute.")
    sample_ratio: float = Field(default=1.0, ge=0, le=1, description=(
        "Share of requests traced (parent-based: a sampled caller's traceparent is honoured)."))
    timeout_s: float = Field(default=10.0, gt=0, description="Export timeout per batch.")
    propagate: bool = Field(default=True, description=(
        "Send each attempt's W3C `traceparent` to the upstream (vLLM, SGLang, ... continue the trace): random "
        "trace and span ids only. false: nothing is added to upstream requests."))

    @field_validator("endpoint")
    @classmethod
    def _endpoint(cls, v: str | None) -> str | None:
        if v is not None and not re.match(r"^https?://[^\s/]+", v):
            raise ValueError("must be an http:// or https:// URL")
        return v


class UISettings(_Strict):
    """`ui:` — the admin web UI served under /ui (login with an admin or auditor API key)."""

    enabled: bool = Field(default=True, description="Serve the admin web UI under /ui.")
    session_ttl_s: float = Field(default=8 * 3600.0, gt=0, le=7 * 24 * 3600.0, description=(
        "Lifetime of a UI login session (an HttpOnly, SameSite=Strict cookie); a revoked key ends its sessions."))
    session_secret_env: str | None = Field(default=None, description=(
        "Environment variable holding the secret that signs session cookies. Default: a random secret kept in "
        "server.state_dir (ui-session.secret); set this when gateways on several hosts share the UI."))


class Config(_Strict):
    server: Server = Field(default_factory=Server, description="HTTP server settings.")
    zones: dict[str, Zone] = Field(min_length=1, description="Zones by name: where models run and their clearance.")
    models: list[ModelSpec] = Field(min_length=1, description="The models of the network.")
    routes: dict[str, Route] = Field(default_factory=dict, description="Aliases usable as `model`; `name: [ids]` is shorthand.")
    governance: Governance = Field(default_factory=Governance, description="Data governance and license policy.")
    reliability: Reliability = Field(default_factory=Reliability, description="Health, retries, breakers, hedging.")
    tasks: list[dict[str, Any]] = Field(default_factory=list, description="Declarative tasks (see docs/tasks.md).")
    access: AccessSettings = Field(default_factory=AccessSettings, description="API keys, tenants and rate limits.")
    audit: AuditSettings = Field(default_factory=AuditSettings, description="The tamper-evident audit trail.")
    claims: ClaimsSettings = Field(default_factory=ClaimsSettings, description="Health-care claims (X12) workload.")
    retrieval: RetrievalSettings = Field(default_factory=RetrievalSettings,
                                         description="Document collections, embeddings and search.")
    ui: UISettings = Field(default_factory=UISettings, description="The admin web UI.")
    tracing: TracingSettings = Field(default_factory=TracingSettings, description="OpenTelemetry traces.")

    @field_validator("routes", mode="before")
    @classmethod
    def _routes(cls, v: Any) -> Any:
        # shorthand: `auto: [a, b]` means `auto: {models: [a, b]}`
        if isinstance(v, dict):
            return {k: ({"models": r} if isinstance(r, list) else r) for k, r in v.items()}
        return v

    @model_validator(mode="after")
    def _refs(self) -> "Config":
        ids: set[str] = set()
        for i, m in enumerate(self.models):
            if m.id in ids:
                raise ValueError(f"models[{i}].id: duplicate model id {m.id!r}")
            ids.add(m.id)
            if m.zone not in self.zones:
                raise ValueError(f"models[{i}].zone: unknown zone {m.zone!r}; defined zones: {sorted(self.zones)}")
        for name, route in self.routes.items():
            if name in ids:
                raise ValueError(f"routes.{name}: a route may not share its name with a model id")
            for j, mid in enumerate(route.models):
                if mid not in ids:
                    raise ValueError(f"routes.{name}.models[{j}]: unknown model {mid!r}")
        return self

    def with_address(self, host: str | None, port: int | None) -> "Config":
        """This config with the server's host and port replaced where given (``fedinf serve --host/--port``)."""
        server = self.server.model_copy(update={"host": host or self.server.host,
                                                "port": self.server.port if port is None else port})
        return self.model_copy(update={"server": server})

    def model(self, model_id: str) -> ModelSpec | None:
        return next((m for m in self.models if m.id == model_id), None)


# ---------------------------------------------------------------- loading with line numbers

def _line_index(text: str) -> dict[tuple[Any, ...], int]:
    """Map each key path in the YAML document to its 1-based line number."""
    index: dict[tuple[Any, ...], int] = {}

    def walk(node: yaml.Node, path: tuple[Any, ...]) -> None:
        index.setdefault(path, node.start_mark.line + 1)
        if isinstance(node, yaml.MappingNode):
            for k, v in node.value:
                key = k.value
                index[path + (key,)] = k.start_mark.line + 1
                walk(v, path + (key,))
        elif isinstance(node, yaml.SequenceNode):
            for i, v in enumerate(node.value):
                walk(v, path + (i,))

    root = yaml.compose(text, Loader=yaml.SafeLoader)
    if root is not None:
        walk(root, ())
    return index


def _locate(index: dict[tuple[Any, ...], int], loc: tuple[Any, ...]) -> int | None:
    path = tuple(loc)
    while path:
        if path in index:
            return index[path]
        path = path[:-1]
    return index.get(())


def _fmt_loc(loc: tuple[Any, ...]) -> str:
    out = ""
    for p in loc:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out or "(root)"


def _path_from_message(msg: str) -> tuple[Any, ...]:
    """`models[1].zone: ...` -> ('models', 1, 'zone')"""
    head = msg.split(":", 1)[0]
    parts: list[Any] = []
    for tok in re.findall(r"[^.\[\]]+|\[\d+\]", head):
        parts.append(int(tok[1:-1]) if tok.startswith("[") else tok)
    return tuple(parts)


def parse_config(text: str, *, source: str = "<config>", base_dir: str | os.PathLike[str] | None = None) -> Config:
    """Parse YAML text into a :class:`Config`; raise :class:`ConfigError` naming source, line and key.

    With ``base_dir`` (the config file's folder), relative task files (``tasks: [{file: ...}]``) are resolved
    against it, so every command reads the same files whatever its working directory."""
    try:
        data = yaml.safe_load(text)
        index = _line_index(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{source}:{mark.line + 1}" if mark else source
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(f"{where}: invalid YAML: {problem}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{source}:1: the config must be a mapping with `zones` and `models`")
    if base_dir is not None and isinstance(data.get("tasks"), list):
        data["tasks"] = [_task_file(t, Path(base_dir)) for t in data["tasks"]]
    try:
        return Config.model_validate(data)
    except ValidationError as exc:
        errors = []
        for err in exc.errors():
            loc = tuple(err["loc"])
            msg = err["msg"].removeprefix("Value error, ")
            if not loc and ":" in msg:  # cross-reference errors carry their path in the message
                loc = _path_from_message(msg)
                msg = msg.split(":", 1)[1].strip()
            if err["type"] == "extra_forbidden":
                msg = "unknown key" + (
                    " (secrets are never stored in the file: name an environment variable with `api_key_env`)"
                    if loc and loc[-1] == "api_key" else "")
            line = _locate(index, loc)
            errors.append(f"{source}:{line}: {_fmt_loc(loc)}: {msg}")
        raise ConfigError(f"{len(errors)} error(s) in {source}:\n  " + "\n  ".join(errors), errors=errors) from None


def load_config(path: str | os.PathLike[str] | None) -> Config:
    """Load the config file at ``path``; ``None`` gives the embedded default."""
    if path is None:
        return default_config()
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{p}: cannot read config file: {exc.strerror}") from None
    return parse_config(text, source=str(p), base_dir=p.parent.resolve())


def _task_file(entry: Any, base_dir: Path) -> Any:
    """``{file: rel}`` -> ``{file: base_dir/rel}``; anything else unchanged."""
    if isinstance(entry, dict) and set(entry) == {"file"} and isinstance(entry["file"], str):
        path = Path(entry["file"]).expanduser()
        return {"file": str(path if path.is_absolute() else base_dir / path)}
    return entry


def default_config() -> Config:
    """The embedded default: the local SmolLM2-135M-Instruct model in an on-prem zone, nothing else."""
    return Config.model_validate({
        "zones": {"onprem": {"kind": "onprem", "clearance": "restricted"}},
        "models": [{
            "id": "smollm2-135m", "backend": "local", "zone": "onprem", "license": "Apache-2.0",
            "context_window": 8192, "capabilities": ["grammar"],
        }],
        "routes": {"auto": {"models": ["smollm2-135m"]}},
    })
