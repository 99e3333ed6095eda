"""The shipped deployment files stay true: the configs load with fedinf's strict parser, the compose file names the
services docs/deployment.md describes, and the systemd unit passes `systemd-analyze verify` (when available)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from fedinf.config import load_config

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"


@pytest.mark.parametrize("path", ["fedinf.yaml", "compose/fedinf.yaml"])
def test_deploy_configs_load(path: str) -> None:
    cfg = load_config(DEPLOY / path)
    assert cfg.access.store and cfg.access.store.startswith("postgresql://")
    assert cfg.audit.store == cfg.access.store and cfg.audit.schema_name != cfg.access.schema_name
    assert cfg.access.redis_url and cfg.reliability.redis_url == cfg.access.redis_url


def test_compose_file_wires_gateway_postgres_redis() -> None:
    compose = yaml.safe_load((DEPLOY / "compose" / "compose.yaml").read_text())
    services = compose["services"]
    assert set(services) == {"postgres", "redis", "gateway", "lb"}
    gateway = services["gateway"]
    assert gateway["deploy"]["replicas"] == 3
    assert set(gateway["depends_on"]) == {"postgres", "redis"}
    assert "--appendonly" in services["redis"]["command"]  # budgets live in Redis: persisted
    assert (DEPLOY / "compose" / gateway["build"]["dockerfile"].removeprefix("deploy/compose/")).exists()


def test_systemd_unit_verifies(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed")
    fedinf = shutil.which("fedinf") or "/bin/true"  # the unit names /opt/fedinf/.venv/bin/fedinf: not here
    unit = (DEPLOY / "systemd" / "fedinf@.service").read_text().replace("/opt/fedinf/.venv/bin/fedinf", fedinf)
    (tmp_path / "fedinf@.service").write_text(unit)
    (tmp_path / "fedinf@8081.service").symlink_to(tmp_path / "fedinf@.service")
    done = subprocess.run([analyze, "verify", str(tmp_path / "fedinf@8081.service")], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0 and not done.stderr.strip(), done.stderr
