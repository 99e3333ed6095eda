"""Config parsing: a table of broken configs and the exact error each must give (file, line, key)."""

from __future__ import annotations

import textwrap

import pytest

from fedinf.config import default_config, load_config, parse_config
from fedinf.errors import ConfigError

BASE = """\
zones:
  onprem: {kind: onprem, clearance: restricted}
models:
  - id: m1
    backend: fake
    zone: onprem
    license: Apache-2.0
"""

BROKEN = [
    ("unknown top-level key", BASE + "colour: blue\n", "x.yaml:8: colour: unknown key"),
    ("unknown model key", BASE.replace("license: Apache-2.0", "license: Apache-2.0\n    colour: red"),
     "x.yaml:8: models[0].colour: unknown key"),
    ("secret in file", BASE.replace("license: Apache-2.0",
                                    "license: Apache-2.0\n    endpoints:\n      - {url: http://a, api_key: sk-1}"),
     "x.yaml:9: models[0].endpoints[0].api_key: unknown key (secrets are never stored in the file"),
    ("bad zone kind", BASE.replace("kind: onprem", "kind: basement"),
     "x.yaml:2: zones.onprem.kind: Input should be 'onprem', 'vpc' or 'cloud'"),
    ("bad clearance", BASE.replace("clearance: restricted", "clearance: secret"),
     "x.yaml:2: zones.onprem.clearance: unknown data class 'secret'"),
    ("unknown zone", BASE.replace("zone: onprem", "zone: mars"),
     "x.yaml:6: models[0].zone: unknown zone 'mars'"),
    ("missing license", BASE.replace("    license: Apache-2.0\n", ""),
     "x.yaml:4: models[0].license: Field required"),
    ("duplicate id", BASE + "  - {id: m1, backend: fake, zone: onprem, license: MIT}\n",
     "x.yaml:8: models[1].id: duplicate model id 'm1'"),
    ("route to unknown model", BASE + "routes:\n  auto: [m1, m9]\n",
     "x.yaml:9: routes.auto.models[1]: unknown model 'm9'"),
    ("bad url", BASE.replace("license: Apache-2.0", "license: Apache-2.0\n    endpoints: [{url: ftp://x}]"),
     "x.yaml:8: models[0].endpoints[0].url: must be an http:// or https:// URL"),
    ("negative weight", BASE.replace("license: Apache-2.0",
                                     "license: Apache-2.0\n    endpoints: [{url: http://x, weight: -1}]"),
     "x.yaml:8: models[0].endpoints[0].weight: Input should be greater than 0"),
    ("invalid yaml", "zones: [\n", "x.yaml:2: invalid YAML"),
    ("not a mapping", "- 1\n- 2\n", "x.yaml:1: the config must be a mapping"),
    ("no models", "zones:\n  z: {kind: cloud, clearance: public}\nmodels: []\n",
     "x.yaml:3: models: List should have at least 1 item"),
    ("bad strategy", BASE + "routes:\n  auto: {models: [m1], strategy: random}\n",
     "x.yaml:9: routes.auto.strategy: Input should be 'priority', 'cost', 'latency' or 'cascade'"),
]


@pytest.mark.parametrize("name,text,expected", BROKEN, ids=[b[0] for b in BROKEN])
def test_broken_configs_name_file_line_and_key(name: str, text: str, expected: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(text, source="x.yaml")
    assert any(e.startswith(expected) or expected in e for e in info.value.errors), info.value.errors


def test_valid_config_and_route_shorthand(tmp_path) -> None:
    path = tmp_path / "ok.yaml"
    path.write_text(BASE + "routes:\n  auto: [m1]\n")
    cfg = load_config(path)
    assert cfg.routes["auto"].models == ["m1"] and cfg.routes["auto"].strategy == "priority"


def test_missing_file_is_a_config_error(tmp_path) -> None:
    with pytest.raises(ConfigError, match="cannot read config file"):
        load_config(tmp_path / "nope.yaml")


def test_default_config_is_the_embedded_local_model() -> None:
    cfg = default_config()
    (model,) = cfg.models
    assert model.backend == "local" and cfg.zones[model.zone].kind == "onprem"


def test_example_config_parses_and_documents_every_key() -> None:
    from pydantic import BaseModel

    from fedinf.cli.init import example_text
    from fedinf.config import Config

    text = example_text()
    parse_config(text, source="example")

    def keys(model: type[BaseModel]) -> set[str]:
        out = set()
        for name, field in model.model_fields.items():
            out.add(name)
            ann = field.annotation
            for cand in (ann, *getattr(ann, "__args__", ())):
                for sub in (cand, *getattr(cand, "__args__", ())):
                    if isinstance(sub, type) and issubclass(sub, BaseModel):
                        out |= keys(sub)
        return out

    missing = sorted(k for k in keys(Config) if f"{k}:" not in text)
    assert not missing, f"example config does not document: {missing}"


def test_docs_config_reference_is_in_sync() -> None:
    from pathlib import Path

    from fedinf.config_reference import render

    doc = Path(__file__).resolve().parents[2] / "docs" / "config.md"
    assert doc.read_text(encoding="utf-8") == render(), "regenerate: fedinf config reference > docs/config.md"
