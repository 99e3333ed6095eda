"""Crash test: under a steady stream of requests, SIGKILL `fedinf serve` at random moments, several times.
Every response a client fully received must have its audit record afterwards, and the chain must verify.
With SQLite the default journal is on: records acknowledged but not yet inserted when a process dies are replayed
from its journal by the next start (and by any opener of the store)."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import uuid

import aiohttp
import pytest

from fedinf.audit import AuditQuery, SqliteAuditStore
from fedinf.audit.journal import recover
from tests.conftest import ServeProcess

from tests.services import pg_dsn

CONFIG = """
server: {{state_dir: "{state}"}}
zones: {{onprem: {{kind: onprem, clearance: restricted}}}}
models:
  - {{id: fake, backend: fake, zone: onprem, license: Apache-2.0, options: {{delay_s: 0.002}}}}
routes: {{auto: [fake]}}
{audit}
"""


async def _stream(url: str, key: str, received: list[str], stop: asyncio.Event) -> None:
    """One client: requests back to back; remembers the request id of every response it fully read."""
    body = {"model": "auto", "messages": [{"role": "user", "content": "hello there"}], "max_tokens": 4}
    async with aiohttp.ClientSession(headers={"authorization": f"Bearer {key}"}) as http:
        while not stop.is_set():
            try:
                async with http.post(url + "/v1/chat/completions", json=body) as r:
                    data = await r.json()
                    if r.status == 200 and data.get("choices"):
                        received.append(r.headers["x-fedinf-request-id"])
            except (aiohttp.ClientError, asyncio.TimeoutError, ValueError):
                await asyncio.sleep(0.01)


@pytest.mark.parametrize("store", ["sqlite", "postgres"])
async def test_sigkill_loses_no_delivered_record(tmp_path, store) -> None:
    rng = random.Random(7)
    schema = f"t_{uuid.uuid4().hex[:12]}"
    audit = ""
    if store == "postgres":
        audit = f'audit: {{store: "{pg_dsn()}", schema_name: {schema}}}'
    cfg = tmp_path / "fedinf.yaml"
    cfg.write_text(CONFIG.format(state=tmp_path / "state", audit=audit))
    received: list[str] = []
    key = None
    try:
        for _ in range(4):
            srv = ServeProcess(cfg, log_dir=tmp_path)
            with srv:
                key = key or srv.admin_key()
                stop = asyncio.Event()
                clients = [asyncio.create_task(_stream(srv.url, key, received, stop)) for _ in range(8)]
                before = len(received)
                for _ in range(600):  # the stream is flowing before the kill (slow first requests on a busy box)
                    if len(received) > before:
                        break
                    await asyncio.sleep(0.05)
                await asyncio.sleep(rng.uniform(0.3, 1.0))
                os.kill(srv.proc.pid, signal.SIGKILL)
                srv.proc.wait()
                await asyncio.sleep(0.05)
                stop.set()
                await asyncio.gather(*clients)
                assert len(received) > before, srv.output()
        assert len(received) > 50
        if store == "sqlite":
            reader = SqliteAuditStore(tmp_path / "state" / "audit.db")
            recover(reader)  # what `fedinf audit` and the next start do: replay the killed process's journal
        else:
            from fedinf.audit.pg import PostgresAuditStore
            reader = PostgresAuditStore(pg_dsn(), schema=schema)
        stored = {r["request_id"] for r in reader.query(AuditQuery(limit=1_000_000))}
        missing = [rid for rid in received if rid not in stored]
        assert not missing, f"{len(missing)} delivered responses have no audit record"
        print(f"crash test ({store}): {len(received)} delivered responses over 4 SIGKILLs, all audited; "
              f"{len(stored)} records")
        report = reader.verify()
        assert report.ok, report.problems[:5]
        reader.close()
    finally:
        if store == "postgres":
            import psycopg
            with psycopg.connect(pg_dsn(), autocommit=True) as conn:
                conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
