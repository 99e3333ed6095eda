"""The same suite on SQLite and PostgreSQL: append, query, verify, and every kind of tampering detected."""

from __future__ import annotations

import json
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fedinf.audit import (Attempt, AuditQuery, AuditRecord, ClassificationSummary, DecisionSummary, Hasher,
                          Usage, canonical_json)
from fedinf.audit.chain import COLUMNS, GENESIS, link
from fedinf.audit.record import parse_time


def make_record(i: int, **kw: object) -> AuditRecord:
    fields: dict = dict(
        request_id=f"req-{i}", key_id=f"k{i % 3}", tenant="acme" if i % 2 else "globex", endpoint="/v1/chat/completions",
        model_requested="auto",
        classification=ClassificationSummary(data_class="confidential" if i % 4 == 0 else "public",
                                             entities={"EMAIL": i % 3, "PERSON": 1}),
        decision=DecisionSummary(route="auto", eligible=["local", "cloud"], excluded={"gpt": "zone clearance"},
                                 chosen_model="local" if i % 5 else "cloud", chosen_zone="onprem" if i % 5 else "eu",
                                 attempts=[Attempt(model="local", zone="onprem", outcome="ok", latency_ms=3.5)]),
        status=200 if i % 7 else 429, error_code=None if i % 7 else "rate_limit_exceeded",
        usage=Usage(prompt_tokens=10 + i, completion_tokens=5), latency_ms=12.25, time=1_790_000_000.0 + i,
    )
    fields.update(kw)
    return AuditRecord(**fields)


def fill(store, n: int, batch: int = 7) -> None:
    recs = [make_record(i) for i in range(1, n + 1)]
    for j in range(0, n, batch):
        store.append([(r.to_dict(), r.time) for r in recs[j:j + batch]])


def kinds(report) -> list[tuple[int, str]]:
    return [(p.seq, p.kind) for p in report.problems]


def test_record_roundtrip_and_no_content_fields() -> None:
    r = make_record(3)
    d = r.to_dict()
    assert AuditRecord.from_dict(json.loads(canonical_json(d))) == r
    assert d["content"] is None and "messages" not in d and d["usage"]["total_tokens"] == 18
    assert d["time"].endswith("Z")


def test_append_links_and_verifies(store_factory) -> None:
    store = store_factory()
    fill(store, 30)
    assert store.count() == 30
    head = store.head()
    assert head[0] == 30
    report = store.verify()
    assert report.ok, report.problems
    assert report.records == 30 and report.last_hash == head[1]
    first = store.query(AuditQuery(limit=1))[0]
    assert first["seq"] == 1 and first["prev_hash"] == GENESIS


def test_empty_chain_verifies(store_factory) -> None:
    report = store_factory().verify()
    assert report.ok and report.records == 0


def test_query_filters(store_factory) -> None:
    store = store_factory()
    fill(store, 30)
    assert {r["key_id"] for r in store.query(AuditQuery(key_id="k1", limit=100))} == {"k1"}
    assert len(store.query(AuditQuery(key_id="k1", limit=100))) == 10
    assert len(store.query(AuditQuery(tenant="acme", limit=100))) == 15
    cloud = store.query(AuditQuery(model="cloud", limit=100))
    assert [r["seq"] for r in cloud] == [5, 10, 15, 20, 25, 30]
    assert len(store.query(AuditQuery(model="auto", limit=100))) == 30  # the model asked for
    assert len(store.query(AuditQuery(zone="eu", limit=100))) == 6
    assert len(store.query(AuditQuery(data_class="confidential", limit=100))) == 7
    assert [r["seq"] for r in store.query(AuditQuery(outcome="error", limit=100))] == [7, 14, 21, 28]
    assert len(store.query(AuditQuery(outcome="rate_limit_exceeded", limit=100))) == 4
    assert len(store.query(AuditQuery(outcome="429", limit=100))) == 4
    assert len(store.query(AuditQuery(outcome="ok", limit=100))) == 26
    t0 = 1_790_000_000.0
    assert [r["seq"] for r in store.query(AuditQuery(since=t0 + 10, until=t0 + 13))] == [10, 11, 12]
    newest = store.query(AuditQuery(limit=3, descending=True))
    assert [r["seq"] for r in newest] == [30, 29, 28]
    assert [r["seq"] for r in store.query(AuditQuery(after_seq=27))] == [28, 29, 30]
    assert store.query(AuditQuery(request_id="req-9"))[0]["hash"]


def test_edit_without_rehash_detected(store_factory) -> None:
    store = store_factory()
    fill(store, 20)
    body = store.query(AuditQuery(after_seq=11, limit=1))[0]
    body.pop("hash")
    body["status"] = 200
    body["tenant"] = "someone-else"
    store.execute(_sql(store, "UPDATE {T} SET body = {P} WHERE seq = 12"), (canonical_json(body),))
    report = store.verify()
    assert not report.ok
    assert (12, "edited") in kinds(report)
    assert "hash" in report.problems[0].message


def test_edit_with_rehash_detected_at_next_record(store_factory) -> None:
    store = store_factory()
    fill(store, 20)
    body = store.query(AuditQuery(after_seq=11, limit=1))[0]
    body.pop("hash")
    body["decision"]["chosen_zone"] = "eu"
    text = canonical_json(body)
    store.execute(_sql(store, "UPDATE {T} SET body = {P}, hash = {P}, zone = 'eu' WHERE seq = 12"),
                  (text, Hasher().digest(text)))
    report = store.verify()
    assert (13, "chain_break") in kinds(report), report.problems


def test_edit_of_indexed_column_detected(store_factory) -> None:
    store = store_factory()
    fill(store, 10)
    store.execute(_sql(store, "UPDATE {T} SET tenant = 'forged', status = 200 WHERE seq = 7"))
    report = store.verify()
    assert kinds(report) == [(7, "edited"), (7, "edited")]
    assert "tenant" in report.problems[0].message or "tenant" in report.problems[1].message


def test_delete_in_middle_detected(store_factory) -> None:
    store = store_factory()
    fill(store, 20)
    store.execute(_sql(store, "DELETE FROM {T} WHERE seq IN (8, 9)"))
    report = store.verify()
    assert kinds(report) == [(8, "deleted")]
    assert "8..9" in report.problems[0].message


def test_truncated_tail_detected(store_factory) -> None:
    store = store_factory()
    fill(store, 20)
    store.execute(_sql(store, "DELETE FROM {T} WHERE seq > 17"))
    report = store.verify()
    assert kinds(report) == [(18, "truncated")]
    assert "18..20" in report.problems[0].message


def test_appended_forgery_detected(store_factory) -> None:
    store = store_factory()
    fill(store, 5)
    seq, h = store.head()
    forged = link([(make_record(99).to_dict(), time.time())], seq, h, Hasher())[0]
    store.execute(_sql(store, "INSERT INTO {T} (seq, prev_hash, hash, ts, body) VALUES ({P}, {P}, {P}, {P}, {P})"),
                  (forged.seq, forged.prev_hash, forged.hash, forged.ts, forged.body))
    report = store.verify()
    assert (6, "inserted") in kinds(report)


def test_inserted_in_middle_detected(store_factory) -> None:
    store = store_factory()
    fill(store, 10)
    # make room at seq 5 by renumbering the tail (the bodies still say their old seq), then insert a forged,
    # correctly linked record there
    store.execute(_sql(store, "UPDATE {T} SET seq = seq + 1000 WHERE seq >= 5"))
    store.execute(_sql(store, "UPDATE {T} SET seq = seq - 999 WHERE seq >= 1000"))
    prev = store.query(AuditQuery(after_seq=3, limit=1))[0]["hash"]
    r = make_record(50)
    forged = link([(r.to_dict(), r.time)], 4, prev, Hasher())[0]
    store.execute(_sql(store, INSERT_ROW),
                  forged.columns())
    report = store.verify()
    assert (5, "inserted") in kinds(report), report.problems


def test_rebuilt_chain_caught_only_with_hmac(store_factory) -> None:
    """Without a key a full rewrite is consistent (anchor the head); with HMAC a forger without the key fails."""
    key = Hasher(b"s3cret")
    store = store_factory(hasher=key)
    fill(store, 5)
    assert store.verify().ok
    forged_tail = link([(make_record(77).to_dict(), 1.0)], *store.head(), Hasher())[0]  # forger lacks the key
    store.execute(_sql(store, INSERT_ROW),
                  forged_tail.columns())
    store.execute(_sql(store, "UPDATE {H} SET seq = {P}, hash = {P}"), (forged_tail.seq, forged_tail.hash))
    report = store.verify()
    assert (6, "edited") in kinds(report)
    assert not store_factory(hasher=Hasher(b"other")).verify().ok


def test_migrations_idempotent(store_factory) -> None:
    a = store_factory()
    fill(a, 3)
    b = store_factory()  # reopening runs migrations again: nothing changes
    assert b.count() == 3 and b.verify().ok


INSERT_ROW = f"INSERT INTO {{T}} ({', '.join(COLUMNS)}) VALUES ({', '.join(['{P}'] * len(COLUMNS))})"


def _sql(store, template: str) -> str:
    if type(store).__name__.startswith("Postgres"):
        return template.replace("{T}", "{s}.audit_records").replace("{H}", "{s}.audit_head").replace("{P}", "%s")
    return template.replace("{T}", "audit_records").replace("{H}", "audit_head").replace("{P}", "?")


@pytest.mark.parametrize("n", [1, 3])
def test_link_is_deterministic(n: int) -> None:
    bodies = [(make_record(i).to_dict(), 1.0) for i in range(n)]
    a = link(bodies, 0, GENESIS, Hasher())
    b = link(bodies, 0, GENESIS, Hasher())
    assert [r.hash for r in a] == [r.hash for r in b]
    assert a[0].prev_hash == GENESIS and all(a[i].prev_hash == a[i - 1].hash for i in range(1, n))


def test_to_dict_covers_every_field() -> None:
    """The hand-written to_dict must not drop a field (compare with dataclasses.asdict)."""
    from dataclasses import asdict

    r = make_record(5, content={"messages": ["<EMAIL_1>"], "pseudonymized": True}, stream=True)
    d = r.to_dict()
    ref = asdict(r)
    ref.update(v=1, time=d["time"])
    ref["usage"]["total_tokens"] = r.usage.total_tokens
    ref.pop("rules")  # only written when set: bodies without claim rules hash exactly as before the field existed
    ref.pop("retrieved")  # likewise for the chunks a chat read (retrieval)
    assert d == ref


@pytest.mark.parametrize("name, values", [("rules", ("Rabc", "Rdef")),
                                          ("retrieved", ("adv/doc-1#0", "adv/doc-2#3"))])
def test_optional_tuple_fields_round_trip_and_are_absent_when_empty(name: str, values: tuple[str, ...]) -> None:
    """Claim rules applied and retrieval chunks read: written only when set, read back as written."""
    from dataclasses import replace

    r = make_record(6)
    assert name not in r.to_dict()
    with_field = replace(r, **{name: values})
    assert with_field.to_dict()[name] == list(values)
    assert getattr(AuditRecord.from_dict(with_field.to_dict()), name) == values


def test_anchor_catches_a_consistently_rebuilt_chain(store_factory) -> None:
    """Without HMAC a forger can rebuild the chain from some record on; an anchor kept elsewhere exposes it."""
    store = store_factory()
    fill(store, 10)
    anchor = store.head()  # (10, hash) kept outside the database
    fill(store, 5)
    # rebuild records 8.. consistently (edited content, recomputed hashes, head moved)
    rows = store.query(AuditQuery(after_seq=7, limit=100))
    prev = store.query(AuditQuery(after_seq=6, limit=1))[0]["hash"]
    store.execute(_sql(store, "DELETE FROM {T} WHERE seq > 7"))
    bodies = []
    for r in rows:
        r = {k: v for k, v in r.items() if k not in ("hash", "seq", "prev_hash")}
        r["tenant"] = "forged"
        bodies.append((r, parse_time(r["time"])))
    for row in link(bodies, 7, prev, Hasher()):
        store.execute(_sql(store, INSERT_ROW),
                      row.columns())
        last = row
    store.execute(_sql(store, "UPDATE {H} SET seq = {P}, hash = {P}"), (last.seq, last.hash))
    assert store.verify().ok  # consistent without an anchor...
    report = store.verify({anchor[0]: anchor[1]})
    assert kinds(report) == [(10, "rewritten")]


def test_migration_2_backfills_tokens_on_an_old_trail(store_factory) -> None:
    """A trail written before migration 2 (no tokens column) upgrades in place and still verifies."""
    store = store_factory()
    fill(store, 6)
    t = "{s}.audit_records" if store_factory.kind == "postgres" else "audit_records"
    m = "{s}.schema_migrations" if store_factory.kind == "postgres" else "schema_migrations"
    store.execute(f"DROP INDEX {'{s}.' if store_factory.kind == 'postgres' else ''}audit_records_key_ts")
    store.execute(f"ALTER TABLE {t} DROP COLUMN tokens")
    store.execute(f"DELETE FROM {m} WHERE version = 2")
    upgraded = store_factory()  # opening applies migration 2 again
    assert upgraded.verify().ok
    assert upgraded.tokens_used("k1", 0) == sum(10 + i + 5 for i in range(1, 7) if i % 3 == 1)
    assert upgraded.tokens_used("k1", 1_790_000_000.0 + 5) == 0


def test_incremental_verify_from_an_anchor(store_factory) -> None:
    store = store_factory()
    fill(store, 20)
    mid = store.query(AuditQuery(after_seq=9, limit=1))[0]  # record 10, verified "earlier"
    report = store.verify(start=(10, mid["hash"]))
    assert report.ok and report.records == 11 and report.first_seq == 10
    store.execute(_sql(store, "UPDATE {T} SET status = 500 WHERE seq = 15"))
    assert kinds(store.verify(start=(10, mid["hash"]))) == [(15, "edited")]
    store.execute(_sql(store, "UPDATE {T} SET tenant = 'x' WHERE seq = 3"))  # before the anchor: not looked at
    assert (3, "edited") not in kinds(store.verify(start=(10, mid["hash"])))
    assert (3, "edited") in kinds(store.verify())
    assert kinds(store.verify(start=(10, "f" * 64)))[0] == (10, "rewritten")


def test_fast_canonical_json_matches_stdlib() -> None:
    from fedinf.audit.chain import canonical_json_stdlib

    for i in range(12):
        d = make_record(i, content={"messages": ["héllo <PERSON_1> \u2028 \"q\" \\ \n"], "pseudonymized": True}).to_dict()
        d["seq"], d["prev_hash"] = i, GENESIS
        assert canonical_json(d) == canonical_json_stdlib(d)


@settings(max_examples=300, deadline=None)
@given(st.floats(min_value=-2e9, max_value=4e9, allow_nan=False))
def test_iso_time_renders_what_datetime_renders(ts: float) -> None:
    """``iso_time`` (its whole seconds cached) says what ``datetime.strftime`` says, microseconds rounded half to
    even, for any time, including a second already in its cache and times before 1970."""
    from datetime import datetime, timezone

    from fedinf.audit.record import iso_time

    want = datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    assert iso_time(ts) == want
    assert iso_time(ts) == want  # the second time from the cache
