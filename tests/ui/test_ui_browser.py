"""The admin UI in a real headless Chromium against `fedinf serve` (a real process) with a fake OpenAI-compatible
upstream (a real HTTP server): log in, the network by zone, decisions (filters, live updates, chain verification,
tampering detected), keys (create, revoke - and the revoked key stops working), tasks and a real `fedinf run`'s
batch progress. Screenshots go to $FEDINF_UI_SCREENSHOTS or a pytest temp dir."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import SRC, ServeProcess, UpstreamProcess, free_port

CONFIG = """
server: {{state_dir: "{state}"}}
zones:
  onprem: {{kind: onprem, clearance: restricted, description: our own rack}}
  cloud: {{kind: cloud, clearance: internal}}
models:
  - {{id: local-a, backend: fake, zone: onprem, license: Apache-2.0, options: {{reply: "on-prem answer"}}}}
  - id: vllm-b
    backend: openai
    zone: onprem
    license: Apache-2.0
    endpoints: [{{url: "{up}/v1", name: gpu-1}}, {{url: "http://127.0.0.1:{dead}/v1", name: gpu-2}}]
    timeouts: {{connect_s: 1, read_s: 2, total_s: 3}}
  - {{id: cloud-big, backend: fake, zone: cloud, license: proprietary-api, options: {{reply: "cloud answer"}}}}
  - {{id: cloud-nc, backend: fake, zone: cloud, license: CC-BY-NC-4.0}}
routes:
  auto: [cloud-big, local-a]
  cloud-only: [cloud-big]
reliability: {{health_interval_s: 0.3, health_timeout_s: 0.5, unhealthy_after: 1}}
"""

TIMEOUT_MS = 15_000


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    tmp = tmp_path_factory.mktemp("ui")
    with UpstreamProcess() as up:
        cfg = tmp / "fedinf.yaml"
        cfg.write_text(CONFIG.format(state=tmp / "state", up=up.origin, dead=free_port()))
        with ServeProcess(cfg, log_dir=tmp) as srv:
            key = srv.admin_key()
            http = httpx.Client(base_url=srv.url, headers={"authorization": f"Bearer {key}"}, timeout=15)
            acme = http.post("/admin/keys", json={"tenant": "acme", "name": "acme-app"}).json()["secret"]
            _chat(http, "auto", "What is the capital of France?")                             # public -> cloud
            _chat(http, "auto", "Mail jane.doe@example.com about the invoice")                # confidential
            _chat(http, "cloud-only", "Refund card 4111 1111 1111 1111 please", status=403)   # refused
            _chat(http, "vllm-b", "hello upstream")
            _chat(http, "auto", "Ping from acme", key=acme)
            yield {"srv": srv, "key": key, "http": http, "tmp": tmp, "cfg": cfg, "state": tmp / "state"}
            http.close()


def _chat(http: httpx.Client, model: str, text: str, *, status: int = 200, key: str | None = None) -> None:
    headers = {"authorization": f"Bearer {key}"} if key else None
    r = http.post("/v1/chat/completions", headers=headers,
                  json={"model": model, "messages": [{"role": "user", "content": text}], "max_tokens": 10})
    assert r.status_code == status, r.text


@pytest.fixture(scope="module")
def context(browser: Any, stack: dict[str, Any], screenshots: Path) -> Iterator[Any]:
    """A browser context logged in through the login form."""
    ctx = browser.new_context(viewport={"width": 1440, "height": 900})
    ctx.set_default_timeout(TIMEOUT_MS)
    page = ctx.new_page()
    page.goto(stack["srv"].url + "/ui")
    page.fill("#key", "fk_wrong_key")
    page.click("#login")
    page.wait_for_selector("p.error")
    assert "invalid API key" in page.inner_text("p.error")
    page.fill("#key", stack["key"])
    page.screenshot(path=str(screenshots / "01-login.png"))
    page.click("#login")
    page.wait_for_selector("body[data-loaded=network]")
    cookies = {c["name"]: c for c in ctx.cookies()}
    assert cookies["fedinf_session"]["httpOnly"] and cookies["fedinf_session"]["sameSite"] == "Strict"
    assert page.evaluate("document.cookie") == ""  # script cannot read the session
    assert page.evaluate("JSON.stringify(localStorage) + JSON.stringify(sessionStorage)") == "{}{}"
    page.close()
    yield ctx
    ctx.close()


def _open(context: Any, stack: dict[str, Any], tab: str) -> Any:
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(f"{stack['srv'].url}/ui/#{tab}")
    page.wait_for_selector(f"body[data-loaded={tab}]")
    assert not page.is_visible("#notice"), page.inner_text("#notice")
    page.errors = errors
    return page


def test_network_by_zone_with_health_and_licenses(context: Any, stack: dict[str, Any], screenshots: Path) -> None:
    page = _open(context, stack, "network")
    assert page.inner_text("#who").startswith(stack["key"].split("_")[1])
    onprem, cloud = page.locator(".zone[data-zone=onprem]"), page.locator(".zone[data-zone=cloud]")
    assert "clearance restricted" in onprem.inner_text() and "our own rack" in onprem.inner_text()
    assert "clearance internal" in cloud.inner_text()
    assert onprem.locator("tr[data-model=local-a]").count() == 1
    # the dead replica is found unhealthy by the active health checks (0.3 s interval)
    for _ in range(30):
        vllm = onprem.locator("tr[data-model=vllm-b]").inner_text()
        if "1/2 healthy" in vllm:
            break
        page.wait_for_timeout(300)
        page.click("#net-refresh")
    assert "1/2 healthy" in vllm and "gpu-2: unhealthy" in vllm and "gpu-1: healthy" in vllm
    nc = cloud.locator("tr[data-model=cloud-nc]").inner_text()
    assert "CC-BY-NC-4.0" in nc and "not served" in nc and "forbidden" in nc
    assert "cloud-big → local-a" in page.inner_text("#routes")
    page.screenshot(path=str(screenshots / "02-network.png"), full_page=True)
    assert not page.errors


def _rows(page: Any) -> list[str]:
    return page.locator("#decisions tbody tr").all_inner_texts()


def _filter(page: Any, **values: str) -> list[str]:
    for name, value in values.items():
        sel = f"#filters [name={name}]"
        if page.locator(sel).evaluate("e => e.tagName") == "SELECT":
            page.select_option(sel, value)
        else:
            page.fill(sel, value)
    page.click("#apply")
    expect = "&".join(f"{k}={v}" for k, v in values.items() if v)
    page.wait_for_selector(f'body[data-decisions^="{(expect + "&" if expect else "") + "order=desc"}"]',
                           state="attached")  # (the page's CSP forbids eval, so no wait_for_function)
    return _rows(page)


def test_decisions_filters_live_updates_and_chain(context: Any, stack: dict[str, Any], screenshots: Path) -> None:
    page = _open(context, stack, "decisions")
    rows = _rows(page)
    assert len(rows) == 5, rows
    assert "jane.doe" not in page.content() and "4111" not in page.content()  # never content
    conf = _filter(page, data_class="confidential")
    assert len(conf) == 1 and "local-a (onprem)" in conf[0] and "email" in conf[0].lower()
    refused = _filter(page, data_class="", outcome="error")
    assert len(refused) == 1 and "403" in refused[0] and "restricted" in refused[0]
    acme = _filter(page, outcome="", tenant="acme")
    assert len(acme) == 1 and "cloud-big (cloud)" in acme[0]
    _filter(page, tenant="")
    assert len(_rows(page)) == 5
    # live: a request made now appears without reloading (polling every 2 s)
    _chat(stack["http"], "auto", "a live one")
    page.wait_for_selector("#decisions tbody tr:nth-child(6)")
    assert "6 record(s) shown · live" in page.inner_text("#dec-count")
    page.click("#verify")
    page.wait_for_selector("#verify-result.ok")
    assert "Chain intact: 6 record(s)" in page.inner_text("#verify-result")
    page.screenshot(path=str(screenshots / "03-decisions.png"), full_page=True)
    # tampering with the trail (a record's model changed in the database) is caught and located
    db = sqlite3.connect(stack["state"] / "audit.db")
    db.execute("UPDATE audit_records SET body = replace(body, 'cloud-big', 'local-a') WHERE seq = 1")
    db.commit()
    db.close()
    page.click("#verify")
    page.wait_for_selector("#verify-result.bad")
    assert "Chain BROKEN" in page.inner_text("#verify-result") and "seq 1" in page.inner_text("#verify-result")
    page.screenshot(path=str(screenshots / "04-chain-broken.png"))
    assert not page.errors


def test_create_and_revoke_a_key(context: Any, stack: dict[str, Any], screenshots: Path) -> None:
    page = _open(context, stack, "keys")
    page.fill("#new-key [name=tenant]", "partners")
    page.fill("#new-key [name=name]", "partner-portal")
    page.select_option("#new-key [name=max_class]", "internal")
    page.click("#create-key")
    page.wait_for_selector("#new-secret")
    secret = page.inner_text("#new-secret")
    key_id = secret.split("_")[1]
    row = page.locator(f"tr[data-key='{key_id}']")
    assert "partners" in row.inner_text() and "internal" in row.inner_text() and "active" in row.inner_text()
    _chat(stack["http"], "auto", "hello", key=secret)  # the new key works
    page.screenshot(path=str(screenshots / "05-keys.png"), full_page=True)
    page.once("dialog", lambda d: d.accept())
    page.click(f"button[data-revoke='{key_id}']")
    page.wait_for_selector(f"tr[data-key='{key_id}']", state="detached")
    assert "revoked" in page.inner_text("#notice")
    page.check("#keys-all")
    page.wait_for_selector(f"tr[data-key='{key_id}'] .badge.bad")
    assert "revoked" in page.locator(f"tr[data-key='{key_id}']").inner_text()
    _chat(stack["http"], "auto", "hello", key=secret, status=401)  # and stops working at once
    assert not page.errors


def test_tasks_and_batch_progress_of_a_real_run(context: Any, stack: dict[str, Any], screenshots: Path) -> None:
    docs = stack["tmp"] / "docs"
    docs.mkdir()
    for i in range(3):
        (docs / f"invoice-{i}.txt").write_text(f"Invoice INV-{i}\nTotal: {i + 10}.00 EUR\n")
    proc = subprocess.run([sys.executable, "-m", "fedinf", "run", "invoice", str(docs), "--out",
                           str(stack["tmp"] / "out.jsonl"), "--config", str(stack["cfg"]), "--no-progress"],
                          env={**__import__("os").environ, "PYTHONPATH": str(SRC)}, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode in (0, 1), proc.stderr
    page = _open(context, stack, "tasks")
    assert page.locator("#tasks tr[data-task=invoice]").count() == 1
    assert page.locator("#tasks tr[data-task=utility_bill]").count() == 1
    (row,) = page.locator("#batches tbody tr").all_inner_texts()
    assert "invoice" in row and "3/3 (100%)" in row and ("done" in row or "failed" in row)
    page.screenshot(path=str(screenshots / "06-tasks.png"), full_page=True)
    assert not page.errors


def test_logout_ends_the_session(context: Any, stack: dict[str, Any]) -> None:
    page = _open(context, stack, "network")
    page.click("#logout")
    page.wait_for_selector("#key")
    assert not any(c["name"] == "fedinf_session" for c in context.cookies())
    page.goto(stack["srv"].url + "/ui/#keys")
    page.wait_for_selector("#key")  # back to the login page
