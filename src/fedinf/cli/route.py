"""``fedinf route explain``: show how a request would be classified and routed, without sending it."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from fedinf.cli.common import CONFIG_OPTION, console, err_console, fail, load
from fedinf.errors import FedinfError

app = typer.Typer(no_args_is_help=True, help="Explain routing decisions.")


@app.command("explain")
def explain(
    text: Optional[str] = typer.Argument(None, help="The request text (or use --file)."),
    model: str = typer.Option("auto", "--model", "-m", help="Model id or route alias asked for."),
    file: Optional[Path] = typer.Option(None, "--file", "-f", help="Read the request text from a file."),
    data_class: Optional[str] = typer.Option(None, "--data-class", help="Declared class (fedinf.data_class)."),
    config: Optional[Path] = CONFIG_OPTION,
) -> None:
    """Classify TEXT on-prem, then show the eligible models and, for each excluded one, why."""
    from fedinf.data_class import DataClass
    from fedinf.network import Network
    from fedinf.privacy import Classifier, apply_declared
    from fedinf.routing.decide import evaluate, refusal

    if (text is None) == (file is None):
        err_console.print("[red]give the request text or --file, not both[/red]")
        raise typer.Exit(2)
    body = file.read_text(encoding="utf-8", errors="replace") if file else str(text)
    cfg = load(config)
    net = Network.build(cfg)
    try:
        detected = Classifier.from_config(cfg.governance).classify([body])
        declared = DataClass.parse(data_class) if data_class else None
        cls = apply_declared(detected, declared, may_lower=cfg.governance.allow_lowering)
    except (FedinfError, ValueError) as exc:
        fail(exc if isinstance(exc, FedinfError) else FedinfError(str(exc)))
        return
    counts = cls.counts()
    console.print(f"classification: [bold]{cls.data_class.label}[/bold] "
                  f"(detected {cls.detected_class.label}"
                  f"{', ' + cls.adjustment if cls.adjustment else ''})", highlight=False)
    console.print("entities: " + (", ".join(f"{k} x{v}" for k, v in sorted(counts.items())) or "none"),
                  highlight=False)
    try:
        decision = evaluate(model, network=net, data_class=cls.data_class)
    except FedinfError as exc:
        fail(exc)
        return
    table = Table(title=f"routing for {model!r} (strategy {decision.strategy})")
    for col in ("model", "zone", "verdict", "why"):
        table.add_column(col)
    for i, t in enumerate(decision.targets):
        table.add_row(t.model_id, t.zone, f"eligible #{i + 1}",
                      "pseudonymized before sending" if t.pseudonymize else "zone cleared for the class")
    for e in decision.excluded:
        table.add_row(e.model_id, e.zone, f"excluded ({e.reason})", e.detail)
    console.print(table)
    if not decision.targets:
        refused = refusal(decision)
        console.print(f"[red]refused ({refused.code}):[/red] {refused.message}", highlight=False)
        raise typer.Exit(1)
