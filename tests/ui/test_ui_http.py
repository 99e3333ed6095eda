"""The admin UI's login, session cookie and CSRF rules, and the admin API views it reads (network, tasks), over
real loopback HTTP against a gateway with real key and audit stores."""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from fedinf.tasks.progress import BatchProgress, list_batches
from fedinf.ui.session import COOKIE, Sessions
from tests.conftest import gateway_server

CONFIG = """
zones:
  onprem: {kind: onprem, clearance: restricted, description: the rack in the basement}
  cloud: {kind: cloud, clearance: internal}
models:
  - {id: local-a, backend: fake, zone: onprem, license: Apache-2.0}
  - {id: cloud-nc, backend: fake, zone: cloud, license: CC-BY-NC-4.0}
  - {id: cloud-b, backend: fake, zone: cloud, license: proprietary-api}
routes:
  auto: [cloud-b, local-a]
"""


@pytest.fixture(scope="module")
def server() -> Iterator[Any]:
    with gateway_server(CONFIG) as srv:
        yield srv


def _client(server: Any) -> httpx.Client:
    return httpx.Client(base_url=server.url, timeout=10, follow_redirects=False)


@contextlib.contextmanager
def _login(server: Any, key: str) -> Iterator[httpx.Client]:
    with _client(server) as c:
        r = c.post("/ui/login", data={"key": key}, headers={"origin": server.url})
        assert r.status_code == 303 and r.headers["location"] == "/ui/", r.text
        yield c


def _new_key(server: Any, *roles: str) -> tuple[str, str]:
    rec, secret = asyncio.run(server.gateway.access.create_key(tenant="ops", name="ui", roles=roles))
    return rec.key_id, secret


def test_login_page_and_security_headers(server: Any) -> None:
    with _client(server) as c:
        r = c.get("/ui", follow_redirects=True)
        assert r.status_code == 200 and 'name="key"' in r.text and 'action="/ui/login"' in r.text
        csp = r.headers["content-security-policy"]
        assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp and "unsafe-inline" not in csp
        assert r.headers["x-frame-options"] == "DENY" and r.headers["cache-control"] == "no-store"
        js = c.get("/ui/static/app.js")
        assert js.status_code == 200 and "javascript" in js.headers["content-type"]
        assert "innerHTML" not in js.text  # server data goes into the page as text only
        assert c.get("/ui/static/nope.js").status_code == 404


def test_login_sets_a_strict_httponly_cookie_that_never_holds_the_key(server: Any) -> None:
    with _client(server) as c:
        r = c.post("/ui/login", data={"key": server.key}, headers={"origin": server.url})
        assert r.status_code == 303
        cookie = r.headers["set-cookie"]
        assert cookie.startswith(f"{COOKIE}=") and "HttpOnly" in cookie and "SameSite=Strict" in cookie
        assert "Path=/" in cookie and "Max-Age=28800" in cookie
        value = cookie.split(";")[0].split("=", 1)[1]
        secret_part = server.key.rsplit("_", 1)[1]
        assert secret_part not in value and server.key not in value
        page = c.get("/ui/")
        assert 'src="/ui/static/app.js"' in page.text and 'name="key"' not in page.text
        who = c.get("/ui/session").json()
        assert who["tenant"] == "test" and who["roles"] == ["admin"] and re.fullmatch(r"[0-9a-f]{64}", who["csrf"])


@pytest.mark.parametrize("key,status,message", [
    ("", 401, "enter an API key"),
    ("fk_nothing_here", 401, "invalid API key"),
    ("not a key at all", 401, "invalid API key"),
])
def test_bad_logins_show_the_reason_and_set_no_cookie(server: Any, key: str, status: int, message: str) -> None:
    with _client(server) as c:
        r = c.post("/ui/login", data={"key": key}, headers={"origin": server.url})
        assert r.status_code == status and message in r.text and "set-cookie" not in r.headers
        assert 'role="alert"' in r.text


def test_user_keys_cannot_log_in_but_auditors_can(server: Any) -> None:
    _, user = _new_key(server, "user")
    with _client(server) as c:
        r = c.post("/ui/login", data={"key": user}, headers={"origin": server.url})
        assert r.status_code == 403 and "neither the admin nor the auditor role" in r.text
    _, auditor = _new_key(server, "auditor")
    with _login(server, auditor) as c:
        assert c.get("/admin/audit").status_code == 200
        assert c.get("/admin/network").status_code == 200
        r = c.get("/admin/keys")
        assert r.status_code == 403  # keys stay admin-only


def test_cross_origin_login_is_refused(server: Any) -> None:
    with _client(server) as c:
        r = c.post("/ui/login", data={"key": server.key}, headers={"origin": "http://evil.example"})
        assert r.status_code == 403 and "set-cookie" not in r.headers and "cross-origin" in r.text


def test_state_changes_through_the_cookie_need_the_csrf_token(server: Any) -> None:
    with _login(server, server.key) as c:
        csrf = c.get("/ui/session").json()["csrf"]
        body = {"tenant": "ops", "name": "from-ui", "roles": ["user"]}
        r = c.post("/admin/keys", json=body)
        assert r.status_code == 403 and r.json()["error"]["code"] == "csrf_failed"
        r = c.post("/admin/keys", json=body, headers={"x-fedinf-csrf": "0" * 64})
        assert r.status_code == 403 and r.json()["error"]["code"] == "csrf_failed"
        r = c.post("/admin/keys", json=body, headers={"x-fedinf-csrf": csrf, "origin": "http://evil.example"})
        assert r.status_code == 403
        r = c.post("/admin/keys", json=body, headers={"x-fedinf-csrf": csrf, "origin": server.url})
        assert r.status_code == 201 and r.json()["secret"].startswith("fk_")
        key_id = r.json()["key_id"]
        r = c.delete(f"/admin/keys/{key_id}", headers={"x-fedinf-csrf": csrf})
        assert r.status_code == 200 and r.json()["state"] == "revoked"
        assert c.post("/ui/logout").status_code == 403  # logout too
        r = c.post("/ui/logout", headers={"x-fedinf-csrf": csrf})
        assert r.status_code == 200 and "Max-Age=0" in r.headers["set-cookie"]


def test_forged_expired_and_revoked_sessions_are_refused(server: Any) -> None:
    key_id, secret = _new_key(server, "admin")
    with _login(server, secret) as c:
        token = c.cookies[COOKIE]
        assert c.get("/admin/whoami").json()["key_id"] == key_id
        body, _, mac = token.rpartition(".")
        forged = body.replace(key_id, "000000000000") + "." + mac
        with _client(server) as other:
            other.cookies.set(COOKIE, forged)
            r = other.get("/admin/whoami")
            assert r.status_code == 401 and r.json()["error"]["code"] == "invalid_session"
            assert 'name="key"' in other.get("/ui/").text  # back to the login page
        asyncio.run(server.gateway.access.revoke_key(key_id))
        r = c.get("/admin/whoami")
        assert r.status_code == 401 and r.json()["error"]["code"] == "revoked_api_key"
    sessions = Sessions(b"s" * 32, ttl_s=60, clock=lambda: 1000.0)
    s = sessions.issue("abc")
    assert sessions.parse(s.token) is not None
    later = Sessions(b"s" * 32, ttl_s=60, clock=lambda: 1061.0)
    assert later.parse(s.token) is None  # expired
    assert Sessions(b"t" * 32, ttl_s=60, clock=lambda: 1000.0).parse(s.token) is None  # other secret


def test_an_authorization_header_still_wins_over_the_cookie(server: Any) -> None:
    _, user = _new_key(server, "user")
    with _login(server, server.key) as c:
        r = c.get("/admin/keys", headers={"authorization": f"Bearer {user}"})
        assert r.status_code == 403  # the header's (user) key decides, not the admin cookie


def test_network_view_by_zone_with_licenses_and_health(server: Any) -> None:
    with _login(server, server.key) as c:
        net = c.get("/admin/network").json()
    zones = {z["name"]: z for z in net["zones"]}
    assert set(zones) == {"onprem", "cloud"} and zones["onprem"]["clearance"] == "restricted"
    assert zones["onprem"]["description"] == "the rack in the basement"
    models = {m["id"]: m for z in net["zones"] for m in z["models"]}
    assert models["cloud-nc"]["served"] is False and models["cloud-nc"]["license_status"] == "forbidden"
    assert models["local-a"]["served"] is True and models["local-a"]["replicas"][0]["healthy"] is True
    assert net["routes"] == {"auto": {"models": ["cloud-b", "local-a"], "strategy": "priority"}}
    assert "http" not in str(net)  # no endpoint URLs leak


def test_tasks_view_lists_tasks_and_batch_progress(server: Any) -> None:
    state_dir = server.gateway.config.server.state_dir
    run = BatchProgress(state_dir, task="invoice", out="out/results.jsonl", total=4, interval_s=0)
    for ev in ({"event": "start", "total": 4, "already_done": 1}, {"event": "skipped", "name": "a.pdf"},
               {"event": "done", "name": "b.pdf", "status": "ok"},
               {"event": "done", "name": "c.pdf", "status": "error", "code": "needs_ocr"}):
        run.note(ev)
    with _login(server, server.key) as c:
        data = c.get("/admin/tasks").json()
    assert {"invoice", "utility_bill"} <= {t["name"] for t in data["tasks"]}
    (b,) = [b for b in data["batches"] if b["id"] == run.id]
    assert b["state"] == "running" and (b["ok"], b["errors"], b["skipped"], b["total"]) == (1, 1, 1, 4)
    assert b["error_codes"] == {"needs_ocr": 1}
    run.finish("failed")
    assert [x for x in list_batches(state_dir) if x["id"] == run.id][0]["state"] == "failed"


def test_a_batch_whose_process_died_shows_as_crashed(tmp_path: Any) -> None:
    import json

    run = BatchProgress(tmp_path, task="invoice", out="o.jsonl", total=2)
    data = json.loads(run.path.read_text())
    data["pid"] = 2 ** 22 + 12345  # beyond pid_max: no such process
    run.path.write_text(json.dumps(data))
    (tmp_path / "batches" / "zz-garbage.json").write_text("{not json")
    (b,) = list_batches(tmp_path)
    assert b["state"] == "crashed"


def test_ui_can_be_turned_off(tmp_path: Any) -> None:
    with gateway_server(CONFIG.replace("routes:", "ui: {enabled: false}\nroutes:")) as srv, _client(srv) as c:
        assert c.get("/ui/").status_code == 404
        r = c.get("/admin/whoami", cookies={COOKIE: "v1.x.1.y.z"})
        assert r.status_code == 401 and r.json()["error"]["code"] == "missing_api_key"


def test_the_session_secret_survives_restarts_and_is_private(tmp_path: Any) -> None:
    from fedinf.ui.session import _state_secret

    a = _state_secret(tmp_path)
    assert _state_secret(tmp_path) == a and len(a) == 32
    assert (tmp_path / "ui-session.secret").stat().st_mode & 0o077 == 0


def test_a_session_works_in_every_worker_process(tmp_path: Any) -> None:
    """`fedinf serve --workers 2`: the cookie-signing secret lives in server.state_dir, so a session issued by one
    worker is honoured by whichever worker answers (each new connection may land on either)."""
    from tests.conftest import ServeProcess

    cfg = tmp_path / "fedinf.yaml"
    cfg.write_text(CONFIG + f"server: {{state_dir: \"{tmp_path / 'state'}\"}}\n")
    with ServeProcess(cfg, args=["--workers", "2"], log_dir=tmp_path) as srv:
        key = srv.admin_key()
        with httpx.Client(base_url=srv.url, timeout=10) as c:
            r = c.post("/ui/login", data={"key": key}, headers={"origin": srv.url})
            assert r.status_code == 303, r.text
            for _ in range(5):  # a new connection per request
                cookie = {COOKIE: c.cookies[COOKIE]}
                statuses = [httpx.get(srv.url + "/admin/whoami", cookies=cookie, timeout=10).status_code
                            for _ in range(4)]
                assert statuses == [200] * 4
    assert len(set((tmp_path / "state" / "ui-session.secret").read_text().split())) == 1
