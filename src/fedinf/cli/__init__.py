"""The ``fedinf`` command line: thin commands, one module per noun (serve, init, config, models, chat, route, ...).

Subsystems add their noun by shipping ``fedinf/cli/<noun>.py`` with a ``typer.Typer`` named ``app`` and one entry
in ``NOUNS`` below.
"""

from __future__ import annotations

import importlib

import typer

from fedinf.cli import chat, config, init, models, route, serve

app = typer.Typer(
    name="fedinf", no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
    help="fedinf: a federated inference gateway. One OpenAI-compatible API in front of on-prem and cloud models, "
         "routed fail-closed by the sensitivity of each request, with a tamper-evident audit trail.")

app.command("serve")(serve.serve)
app.command("init")(init.init)
app.command("chat")(chat.chat)
app.add_typer(config.app, name="config")
app.add_typer(models.app, name="models")
app.add_typer(route.app, name="route")

# nouns owned by optional subsystems: (module, command name, help)
NOUNS = [
    ("fedinf.cli.keys", "keys", "Create, list, rotate and revoke API keys."),
    ("fedinf.cli.audit", "audit", "Tail, query, export and verify the audit trail."),
    ("fedinf.cli.run", "run", None),
    ("fedinf.cli.ingest", "ingest", None),
    ("fedinf.cli.ask", "ask", None),
    ("fedinf.cli.advisories", "advisories", "Security advisories: text to OSV + remediation, merge sources, "
     "which packages are affected."),
    ("fedinf.cli.claims", "claims", "Health-care claims (X12): pre-validate, derive rules from rejections, review."),
]
for module_name, noun, help_text in NOUNS:
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name != module_name:
            raise
        continue
    if isinstance(getattr(module, "app", None), typer.Typer):
        app.add_typer(module.app, name=noun, help=help_text)
    elif hasattr(module, "command"):
        app.command(noun)(module.command)


def main() -> None:
    app()
