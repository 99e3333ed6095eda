"""``fedinf keys`` end to end on a SQLite key store."""

from __future__ import annotations

import asyncio
import json

from typer.testing import CliRunner

from fedinf.access import Authenticator, SqliteAccessStore
from fedinf.cli import app
from fedinf.errors import AuthError

runner = CliRunner()


def run(*args: str) -> tuple[int, str]:
    r = runner.invoke(app, list(args))
    return r.exit_code, r.output


def test_keys_lifecycle(tmp_path) -> None:
    store = f"sqlite:///{tmp_path / 'keys.db'}"
    code, out = run("keys", "create", "--tenant", "acme", "--name", "svc", "--model", "local-*", "--rpm", "60",
                    "--max-class", "internal", "--json", "--store", store)
    assert code == 0, out
    created = json.loads(out[out.index("{"):])
    kid, secret = created["key_id"], created["secret"]
    assert created["scopes"]["models"] == ["local-*"] and created["limits"]["requests_per_minute"] == 60

    code, out = run("keys", "list", "--store", store)
    assert code == 0 and "API keys (1)" in out and secret not in out
    code, out = run("keys", "list", "--json", "--store", store)
    assert [k["key_id"] for k in json.loads(out)] == [kid] and secret not in out

    code, out = run("keys", "rotate", kid, "--json", "--store", store)
    assert code == 0, out
    new = json.loads(out[out.index("{"):])
    assert new["rotated_from"] == kid

    auth = Authenticator(SqliteAccessStore(tmp_path / "keys.db"))
    assert asyncio.run(auth.authenticate(new["secret"])).key_id == new["key_id"]
    try:
        asyncio.run(auth.authenticate(secret))
        raise AssertionError("old key still works")
    except AuthError as exc:
        assert exc.code == "revoked_api_key"

    code, out = run("keys", "revoke", new["key_id"], "--store", store)
    assert code == 0 and "revoked" in out
    code, out = run("keys", "list", "--all", "--json", "--store", store)
    assert {k["state"] for k in json.loads(out)} == {"revoked"}
    code, out = run("keys", "revoke", "000000000000", "--store", store)
    assert code == 1 and "no API key" in out


def test_bad_role_and_tenant_commands(tmp_path) -> None:
    store = f"sqlite:///{tmp_path / 'keys.db'}"
    code, out = run("keys", "create", "--role", "root", "--store", store)
    assert code == 2 and "unknown role" in out
    code, out = run("keys", "tenant", "acme", "--log-content", "--description", "Acme", "--store", store)
    assert code == 0 and "log_content=on" in out
    code, out = run("keys", "tenants", "--store", store)
    assert code == 0 and "acme" in out and "on" in out
