"""``fedinf chat MODEL "prompt"``: one quick completion through an in-process gateway."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Optional

import typer

from fedinf.cli.common import CONFIG_OPTION, console, fail, load
from fedinf.errors import FedinfError


def chat(
    model: str = typer.Argument(..., help="Model id or route alias (e.g. auto)."),
    prompt: str = typer.Argument(..., help="The user message."),
    config: Optional[Path] = CONFIG_OPTION,
    max_tokens: int = typer.Option(128, help="Maximum tokens to generate."),
    system: Optional[str] = typer.Option(None, help="A system message."),
    show_headers: bool = typer.Option(False, "--explain", help="Also print where the request went and why."),
) -> None:
    """Send one chat completion through the full pipeline (classify, decide, execute) and print the answer."""
    from fedinf.gateway import Gateway

    cfg = load(config)
    messages = ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": prompt}]

    async def go() -> None:
        async with Gateway.local(cfg) as gw:
            reply = await gw.pipeline.chat({"model": model, "messages": messages, "max_tokens": max_tokens})
            if reply.error is not None:
                fail(reply.error)
            assert reply.body is not None
            console.print(reply.body["choices"][0]["message"].get("content") or "", highlight=False)
            if show_headers:
                console.print(json.dumps(reply.headers, indent=2), highlight=False)

    try:
        asyncio.run(go())
    except FedinfError as exc:
        fail(exc)
