"""The CLI as a user drives it: init, config check, models, route explain, chat."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from fedinf.cli import app

runner = CliRunner()

CONFIG = """
server: {{state_dir: "{state}"}}
zones:
  onprem: {{kind: onprem, clearance: restricted}}
  cloud: {{kind: cloud, clearance: internal}}
models:
  - {{id: local-echo, backend: fake, zone: onprem, license: Apache-2.0}}
  - {{id: cloud-echo, backend: fake, zone: cloud, license: proprietary-api}}
  - {{id: nc, backend: fake, zone: onprem, license: CC-BY-NC-4.0}}
routes:
  auto: [cloud-echo, local-echo]
  cloud: [cloud-echo]
"""


@pytest.fixture(autouse=True)
def _wide_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "200")


@pytest.fixture
def cfg(tmp_path: Path) -> Path:
    path = tmp_path / "fedinf.yaml"
    path.write_text(CONFIG.format(state=tmp_path / "state"))
    return path


def test_init_writes_a_config_that_checks(tmp_path: Path) -> None:
    path = tmp_path / "new.yaml"
    result = runner.invoke(app, ["init", str(path)])
    assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["config", "check", str(path)])
    assert result.exit_code == 0, result.output
    assert "OK" in result.output
    assert runner.invoke(app, ["init", str(path)]).exit_code == 1  # never overwrites silently


def test_config_check_reports_file_line_and_key(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("zones:\n  z: {kind: cloud, clearance: public}\nmodels:\n  - {id: a, backend: fake, zone: q, "
                    "license: MIT}\n")
    result = runner.invoke(app, ["config", "check", str(path)])
    assert result.exit_code == 1
    assert f"{path}:4: models[0].zone: unknown zone 'q'" in result.output


def test_config_check_warns_about_excluded_licenses(cfg: Path) -> None:
    result = runner.invoke(app, ["config", "check", str(cfg)])
    assert result.exit_code == 0 and "nc will not be served" in result.output


def test_models_table_and_license_report(cfg: Path) -> None:
    result = runner.invoke(app, ["models", "--config", str(cfg)])
    assert result.exit_code == 0, result.output
    assert "local-echo" in result.output and "onprem" in result.output and "excluded" in result.output
    result = runner.invoke(app, ["models", "licenses", "--config", str(cfg)])
    assert result.exit_code == 0, result.output
    assert "CC-BY-NC-4.0" in result.output and "forbidden" in result.output


def test_route_explain_shows_why(cfg: Path) -> None:
    result = runner.invoke(app, ["route", "explain", "--config", str(cfg), "--model", "auto",
                                 "card 4111 1111 1111 1111"])
    assert result.exit_code == 0, result.output
    assert "restricted" in result.output and "CREDIT_CARD" in result.output
    assert "excluded (clearance)" in result.output and "eligible #1" in result.output
    result = runner.invoke(app, ["route", "explain", "--config", str(cfg), "--model", "cloud",
                                 "card 4111 1111 1111 1111"])
    assert result.exit_code == 1 and "policy_violation" in result.output
    assert "4111" not in result.output.split("entities")[-1]


def test_chat_runs_the_pipeline_in_process(cfg: Path) -> None:
    result = runner.invoke(app, ["chat", "auto", "hello there", "--config", str(cfg), "--explain"])
    assert result.exit_code == 0, result.output
    assert "echo: hello there" in result.output and "cloud-echo" in result.output
    result = runner.invoke(app, ["chat", "cloud", "my SSN is 536-22-1234", "--config", str(cfg)])
    assert result.exit_code == 1 and "policy_violation" in result.output


def test_help_lists_every_noun() -> None:
    result = runner.invoke(app, ["--help"])
    for noun in ("serve", "init", "config", "models", "route", "chat", "keys", "audit", "run"):
        assert noun in result.output


def test_config_check_validates_tasks(tmp_path: Path) -> None:
    path = tmp_path / "tasks.yaml"
    path.write_text("zones:\n  z: {kind: onprem, clearance: restricted}\nmodels:\n  - {id: a, backend: fake, zone: z, "
                    "license: MIT}\ntasks:\n  - {name: t1, colour: red}\n")
    result = runner.invoke(app, ["config", "check", str(path)])
    assert result.exit_code == 1 and "tasks[0]" in result.output and "colour" in result.output
