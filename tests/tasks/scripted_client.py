"""A scripted ChatClient for task tests (no model)."""

import json
from typing import Any


class ScriptedClient:
    """A ChatClient answering with ``reply(body) -> dict`` as JSON content; keeps every body it got."""

    def __init__(self, reply=None, *, model="scripted-1", zones=None, fail=None):
        self.reply = reply or (lambda body: {})
        self.model = model
        self.bodies: list[dict[str, Any]] = []
        self.zones = zones  # route -> [(model, zone)]
        self.fail = fail

    async def chat(self, body):
        self.bodies.append(body)
        if self.fail is not None:
            raise self.fail
        content = self.reply(body)
        return {"id": "x", "object": "chat.completion", "model": self.model,
                "choices": [{"index": 0, "message": {"role": "assistant",
                                                     "content": content if isinstance(content, str)
                                                     else json.dumps(content)},
                             "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}}
