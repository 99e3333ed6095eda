"""``fedinf ask COLLECTION "question"``: answer from a collection, with citations, through the whole pipeline.

The question is sent as a chat request naming the collection, so retrieval raises its data class to what was
retrieved and routing stays inside the eligible set; the answer is printed with the sources it cited (document,
chunk, offsets). An answer citing nothing is flagged.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any, Optional

import typer

from fedinf.cli.common import CONFIG_OPTION, console, fail, load
from fedinf.errors import FedinfError


def _print(body: dict[str, Any], headers: dict[str, str]) -> None:
    from rich.table import Table

    answer = body["choices"][0]["message"].get("content") or ""
    extra = body.get("fedinf") or {}
    console.print(answer, highlight=False)
    if not extra.get("cited"):
        console.print("[yellow]this answer cites none of the sources[/yellow]")
    table = Table(title=f"sources ({headers.get('x-fedinf-model', '?')}, {headers.get('x-fedinf-data-class', '?')})")
    for col in ("ref", "cited", "document", "chunk", "offsets", "page", "class"):
        table.add_column(col)
    cited = {c["ref"] for c in extra.get("citations", [])}
    for s in extra.get("sources", []):
        table.add_row(str(s["ref"]), "yes" if s["ref"] in cited else "", s["document"], str(s["chunk"]),
                      f"{s['start']}-{s['end']}", str(s["page"]), s["data_class"])
    console.print(table)


def command(
    collection: str = typer.Argument(..., help="The collection to search."),
    question: str = typer.Argument(..., help="The question."),
    also: list[str] = typer.Option([], "--also", help="More collections to search (repeatable)."),
    model: str = typer.Option("auto", help="Model id or route alias."),
    k: Optional[int] = typer.Option(None, "--k", help="Chunks to retrieve (default retrieval.top_k)."),
    mode: Optional[str] = typer.Option(None, help="hybrid, bm25 or vector."),
    max_tokens: int = typer.Option(256, help="Maximum tokens to generate."),
    as_json: bool = typer.Option(False, "--json", help="Print the completion JSON (with fedinf.citations)."),
    config: Optional[Path] = CONFIG_OPTION,
) -> None:
    """Ask a question of one or more collections; print the answer and its citations."""
    from fedinf.gateway import Gateway

    cfg = load(config)
    options: dict[str, Any] = {"collections": [collection, *also]}
    if k is not None:
        options["top_k"] = k
    if mode is not None:
        options["search_mode"] = mode
    body = {"model": model, "max_tokens": max_tokens, "messages": [{"role": "user", "content": question}],
            "fedinf": options}

    async def go() -> None:
        async with Gateway.local(cfg) as gw:
            reply = await gw.pipeline.chat(body)
            if reply.error is not None:
                fail(reply.error)
            assert reply.body is not None
            if as_json:
                console.print_json(json.dumps(reply.body))
            else:
                _print(reply.body, reply.headers)

    try:
        asyncio.run(go())
    except FedinfError as exc:
        fail(exc)
