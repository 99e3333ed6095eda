"""The rule store: SQLite and PostgreSQL (real server), merge on re-derivation, review transitions."""

import uuid

import pytest

from tests.services import pg_dsn
from fedinf.claims.rules import Evidence, Rule, Scope
from fedinf.claims.store import PostgresRuleStore, SqliteRuleStore
from fedinf.errors import NotFound, RequestError


def rule(ev: str) -> Rule:
    expr = "claim.charge > 0.0"
    scope = Scope(payers=["P1"])
    return Rule(id=Rule.make_id(expr, scope, "claim"), expression=expr, description="positive charge", scope=scope,
                evidence=[Evidence(source="835", codes=ev)], source="835", template="t")


@pytest.fixture(params=["sqlite", "postgres"])
def store(request, tmp_path):
    if request.param == "sqlite":
        s = SqliteRuleStore(tmp_path / "claims.db")
    else:
        schema = "t_claims_" + uuid.uuid4().hex[:10]
        s = PostgresRuleStore(pg_dsn(), schema=schema)
    yield s
    if request.param == "postgres":
        s._conn.execute(f"DROP SCHEMA {s.schema} CASCADE")
    s.close()


def test_upsert_merges_evidence_and_keeps_review(store):
    assert store.upsert([rule("CAS CO 96")]) == (1, 0)
    r = store.rules()[0]
    store.review(r.id, "approve", by="k1", note="fine")
    assert store.upsert([rule("CAS CO 96"), rule("CAS CO 204")]) == (0, 1)
    (again,) = store.approved()
    assert again.status == "approved" and again.reviewed_by == "k1"
    assert [e.codes for e in again.evidence] == ["CAS CO 96", "CAS CO 204"]


def test_review_edits_and_errors(store):
    store.upsert([rule("x")])
    rid = store.rules()[0].id
    edited = store.review(rid, "approve", by="k", expression="claim.charge >= 1.0")
    assert edited.expression == "claim.charge >= 1.0" and store.get(rid).expression == "claim.charge >= 1.0"
    with pytest.raises(RequestError):
        store.review(rid, "approve", by="k", expression="claim.charge >=")
    with pytest.raises(RequestError):
        store.review(rid, "bless", by="k")
    with pytest.raises(NotFound):
        store.get("Rmissing")
    store.review(rid, "retire", by="k")
    assert store.approved() == [] and store.rules(status="retired")[0].id == rid


def test_rule_store_opens_through_the_store_registry(tmp_path):
    from fedinf.claims.store import open_rule_store
    from fedinf.errors import ConfigError

    s = open_rule_store(None, state_dir=tmp_path)
    try:
        assert isinstance(s, SqliteRuleStore) and s.path == tmp_path / "claims.db"
    finally:
        s.close()
    with pytest.raises(ConfigError):
        open_rule_store("mysql://x/y", state_dir=tmp_path)
