"""The claims service in-process: the optional model rewording goes through the pipeline as restricted data."""

import json

from x12gen import status277
from fedinf.claims.service import ClaimsService
from fedinf.config import Config
from fedinf.gateway import Gateway


def config(tmp_path, models):
    return Config.model_validate({
        "zones": {"onprem": {"kind": "onprem", "clearance": "restricted"},
                  "cloud": {"kind": "cloud", "clearance": "internal"}},
        "models": models, "routes": {"describe": [m["id"] for m in models]},
        "claims": {"describe_route": "describe"}, "server": {"state_dir": str(tmp_path)}})


def fake(model_id, zone, text):
    return {"id": model_id, "backend": "fake", "zone": zone, "license": "MIT", "capabilities": ["json_schema"],
            "options": {"reply": json.dumps({"description": text})}}


async def test_rewording_only_on_prem(tmp_path):
    cfg = config(tmp_path, [fake("cloud-m", "cloud", "FROM THE CLOUD"),
                            fake("onprem-m", "onprem", "Send a valid NPI.")])
    async with Gateway.local(cfg) as gw:
        svc = ClaimsService(gw)
        try:
            out = await svc.derive([("r.277", status277("CLM1", "A7:562:85"))], describe=True)
        finally:
            svc.close()
    (rule,) = out.derivation.rules
    assert rule.note == "model wording: Send a valid NPI."  # the cloud model was never eligible
    assert "billing provider NPI" in rule.description  # the deterministic wording stays authoritative


async def test_rewording_fails_closed_without_an_on_prem_model(tmp_path):
    cfg = config(tmp_path, [fake("cloud-m", "cloud", "FROM THE CLOUD")])
    async with Gateway.local(cfg) as gw:
        svc = ClaimsService(gw)
        try:
            out = await svc.derive([("r.277", status277("CLM1", "A7:562:85"))], describe=True)
            stored = svc.store.rules()
        finally:
            svc.close()
    (rule,) = out.derivation.rules
    assert rule.note == "" and stored[0].id == rule.id and stored[0].status == "candidate"
