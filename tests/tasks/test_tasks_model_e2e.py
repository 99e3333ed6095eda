"""The task runner against the embedded SmolLM2 model through the real gateway (slow: marked `model`)."""

import pytest

from fedinf.config import default_config
from fedinf.gateway import Gateway
from fedinf.tasks import GatewayClient, TaskRunner, TaskSpec

pytestmark = pytest.mark.model

TOTAL = TaskSpec.model_validate({
    "name": "total", "prompt": "What is the total amount and its currency?\n{document}",
    "output_schema": {"type": "object", "properties": {"total_amount": {"type": ["number", "null"]},
                                                       "currency": {"type": ["string", "null"],
                                                                    "pattern": "^[A-Z]{3}$"}},
                      "required": ["total_amount", "currency"], "additionalProperties": False},
    "fields": {"total_amount": {"extractor": "total_amount", "normalize": "amount"},
               "currency": {"extractor": "currency", "normalize": "currency"}},
    "policy": {"min_data_class": "confidential"}, "max_tokens": 24, "timeout_s": 600,
})


async def test_embedded_model_constrained_record(tmp_path):
    pytest.importorskip("xllamacpp")
    cfg = default_config()
    cfg = cfg.model_copy(update={"server": cfg.server.model_copy(update={"state_dir": str(tmp_path)})})
    async with Gateway.local(cfg) as gw:
        result = await TaskRunner(GatewayClient(gw)).run_bytes(TOTAL, b"Invoice\nTotal: 42.50 EUR\n", name="t.txt")
    r = result.to_dict()
    assert r["metadata"]["model"] == "smollm2-135m" and r["metadata"]["zone"] == "onprem"
    assert r["metadata"]["model_calls"] == 1 and r["metadata"]["schema_valid"]
    assert r["record"] == {"total_amount": 42.5, "currency": "EUR"}  # the extractors make it right either way
    assert {f["source"] for f in r["fields"].values()} <= {"agree", "disagree", "extractor"}
