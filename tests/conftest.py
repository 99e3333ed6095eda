"""Shared fixtures: real servers on loopback (uvicorn in a thread, or `fedinf serve` as a subprocess)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[1]
SRC = REPO / "src"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url: str, timeout: float = 60.0, proc: subprocess.Popen | None = None) -> None:
    import urllib.request

    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status < 500:
                    return
        except Exception:
            time.sleep(0.1)
    raise TimeoutError(f"{url} did not come up in {timeout}s")


class ThreadServer:
    """Run an ASGI app under uvicorn on a real loopback port, in a background thread."""

    def __init__(self, app: Any) -> None:
        import uvicorn

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning",
                                                    lifespan="on", timeout_graceful_shutdown=2))
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.key = ""
        self.auth: dict[str, str] = {}
        self.gateway: Any = None

    def __enter__(self) -> "ThreadServer":
        self.thread.start()
        wait_http(self.url + "/healthz", timeout=30)
        return self

    def __exit__(self, *exc: Any) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


def audit_rows(config: Any, until: Callable[[list[dict[str, Any]]], bool], *, limit: int = 5000,
               timeout_s: float = 10.0) -> list[dict[str, Any]]:
    """The audit records as another connection (another process) sees them, polled until ``until(rows)`` holds or
    ``timeout_s`` passes: the serving process inserts its journaled records in batches, ~50 ms after the replies."""
    from fedinf.audit import AuditQuery, open_audit_store

    store = open_audit_store(config.audit, state_dir=config.server.state_dir)
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            rows = store.query(AuditQuery(limit=limit))
            if until(rows) or time.monotonic() > deadline:
                return rows
            time.sleep(0.01)
    finally:
        store.close()


def make_config(config_text: str, *, require_keys: bool = True, state_dir: str | None = None) -> Any:
    """Parse a test config; keys off (unless asked) and state (SQLite audit, keys) in a fresh temp dir."""
    import tempfile

    import yaml

    from fedinf.config import parse_config

    data = yaml.safe_load(config_text)
    data.setdefault("server", {}).setdefault("state_dir", state_dir or tempfile.mkdtemp(prefix="fedinf-test-"))
    data.setdefault("access", {}).setdefault("require_keys", require_keys)
    return parse_config(yaml.safe_dump(data), source="test.yaml")


def gateway_server(config_text: str, *, roles: tuple[str, ...] = ("admin",), **overrides: Any) -> ThreadServer:
    """A gateway on a real loopback port, with one API key (``server.key``) holding ``roles``."""
    import asyncio

    from fedinf.gateway import Gateway
    from fedinf.server import create_app

    gw = Gateway.from_config(make_config(config_text), **overrides)
    _, secret = asyncio.run(gw.access.create_key(tenant="test", name="test", roles=roles))
    server = ThreadServer(create_app(gw))
    server.key = secret
    server.auth = {"authorization": f"Bearer {secret}"}
    server.gateway = gw
    return server


class ServeProcess:
    """`python -m fedinf serve` as a real subprocess (what a user runs); its output goes to a log file."""

    def __init__(self, config_path: Path | None, env: dict[str, str] | None = None,
                 args: list[str] | None = None, *, log_dir: Path | None = None) -> None:
        import tempfile

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        cmd = [sys.executable, "-m", "fedinf", "serve", "--port", str(self.port), *(args or [])]
        if config_path is not None:
            cmd += ["--config", str(config_path)]
        full_env = {**os.environ, "PYTHONPATH": str(SRC), **(env or {})}
        full_env.pop("FEDINF_CONFIG", None)
        self.log_path = Path(tempfile.mkstemp(prefix="fedinf-serve-", suffix=".log", dir=log_dir)[1])
        self._log = open(self.log_path, "w")
        self.proc = subprocess.Popen(cmd, env=full_env, stdout=self._log, stderr=subprocess.STDOUT, text=True,
                                     cwd=str(log_dir) if log_dir else None)

    def __enter__(self) -> "ServeProcess":
        try:
            wait_http(self.url + "/healthz", timeout=90, proc=self.proc)
        except Exception:
            self.stop()
            raise RuntimeError(f"fedinf serve failed to start:\n{self.output()}") from None
        return self

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def admin_key(self) -> str:
        """The bootstrap admin key printed once on first start."""
        import re

        end = time.monotonic() + 30
        while time.monotonic() < end:
            m = re.search(r"\b(fk_[A-Za-z0-9_-]+)", self.output())
            if m:
                return m.group(1)
            time.sleep(0.1)
        raise AssertionError(f"no admin key printed:\n{self.output()}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()

    def __exit__(self, *exc: Any) -> None:
        self.stop()


class UpstreamProcess:
    """A fake upstream (``fedinf.testing.upstream`` or ``.anthropic_upstream``) as a real subprocess."""

    def __init__(self, module: str = "fedinf.testing.upstream", *args: str) -> None:
        self.port = free_port()
        self.origin = f"http://127.0.0.1:{self.port}"
        env = {**os.environ, "PYTHONPATH": str(SRC)}
        self.proc = subprocess.Popen([sys.executable, "-m", module, "--port", str(self.port), *args], env=env,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def __enter__(self) -> "UpstreamProcess":
        wait_http(self.origin + "/_control", timeout=30, proc=self.proc)
        return self

    def control(self, **body: Any) -> Any:
        import json
        import urllib.request

        req = urllib.request.Request(self.origin + "/_control", data=json.dumps(body).encode(), method="POST",
                                     headers={"content-type": "application/json"})
        with urllib.request.urlopen(req, timeout=5) as r:
            return json.loads(r.read() or b"null")

    def stats(self) -> Any:
        import json
        import urllib.request

        with urllib.request.urlopen(self.origin + "/_control", timeout=5) as r:
            return json.loads(r.read())

    def __exit__(self, *exc: Any) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


@pytest.fixture
def serve_process() -> Iterator[type[ServeProcess]]:
    yield ServeProcess


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")
