"""The ``fake`` backend keeps what it received for tests, bounded."""

from __future__ import annotations

from fedinf.backends.base import CallContext
from fedinf.backends.fake import KEEP, FakeBackend
from fedinf.config import ModelSpec
from fedinf.protocol import ChatRequest


async def test_the_fake_backend_keeps_only_the_latest_requests() -> None:
    spec = ModelSpec.model_validate({"id": "m", "backend": "fake", "zone": "z", "license": "proprietary-api",
                                     "options": {"reply": "ok"}})
    fake = FakeBackend(spec=spec, endpoint=None)
    ctx = CallContext(request_id="r", deadline=1e12, headers={}, upstream_model="m")
    for i in range(KEEP + 5):
        request = ChatRequest.model_validate({"model": "m", "messages": [{"role": "user", "content": f"q{i}"}]})
        answer = await fake.chat(request, ctx)
        assert answer["choices"][0]["message"]["content"] == "ok"
    assert len(fake.received) == KEEP
    assert fake.received[0].messages[0].content == "q5"  # the oldest five were dropped
    assert fake.received[-1].messages[0].content == f"q{KEEP + 4}"
