"""A collection embedded by a remote model: text reaches it only when the model is eligible for the text's class."""

from __future__ import annotations

import pytest

from fedinf.errors import PolicyViolation
from fedinf.gateway import Gateway
from fedinf.testing.upstream import FakeOpenAIUpstream
from tests.conftest import make_config

CONFIG = """
zones:
  onprem: {{kind: onprem, clearance: restricted}}
  cloud: {{kind: cloud, clearance: internal}}
models:
  - {{id: local-a, backend: fake, zone: onprem, license: Apache-2.0}}
  - {{id: cloud-embed, backend: openai, zone: cloud, license: proprietary-api, capabilities: [embeddings],
      endpoints: [{{url: "{url}"}}]}}
retrieval: {{embedder: cloud-embed}}
"""


async def test_cloud_embedder_gets_public_text_only() -> None:
    async with FakeOpenAIUpstream() as up:
        gw = Gateway.from_config(make_config(CONFIG.format(url=up.url), require_keys=False))
        async with gw:
            rt = gw.retrieval_service()
            assert rt.embedder.name == "model:cloud-embed"
            await rt.create_collection("docs")
            ok = await rt.add_text("docs", "Release notes: version 2.0 adds dark mode.", name="notes.txt")
            assert ok.created and (await rt.get_collection("docs")).dim == 8
            sent = len(up.bodies)
            with pytest.raises(PolicyViolation):
                await rt.add_text("docs", "Customer Jane Roe, SSN 536-22-1234, card 4111 1111 1111 1111.",
                                  name="customer.txt")
            assert len(up.bodies) == sent  # refused before any byte left
            assert [d.name for d in await rt.list_documents("docs")] == ["notes.txt"]
            # a sensitive query is not embedded remotely either: keyword search alone, nothing leaves
            res = await rt.search("docs", "dark mode for Jane Roe, SSN 536-22-1234?", mode="vector")
            assert res.mode == "bm25" and res.hits[0].document_name == "notes.txt"
            assert len(up.bodies) == sent
            res = await rt.search("docs", "dark mode release", mode="hybrid")
            assert res.hits[0].document_name == "notes.txt"
