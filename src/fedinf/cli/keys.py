"""``fedinf keys``: create, list, rotate and revoke API keys; manage tenants. Works on the configured key store."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Optional

import typer
from rich.table import Table

from fedinf.cli.common import CONFIG_OPTION, console, err_console, load

app = typer.Typer(help="Create, list, rotate and revoke API keys; manage tenants.", no_args_is_help=True)

STORE_OPTION: Any = typer.Option(None, "--store", envvar="FEDINF_KEY_STORE",
                                 help="Key store URL (sqlite:///path or postgresql://...); default: access.store.")


def _store(config: Optional[Path], store_url: Optional[str]) -> Any:
    from fedinf.access import open_access_store

    cfg = load(config)
    return open_access_store(store_url or cfg.access.store, state_dir=cfg.server.state_dir,
                             schema=cfg.access.schema_name)


def _notify(config: Optional[Path], key_id: str | None) -> None:
    """Tell running gateways (through Redis pub/sub, when access.redis_url is set) to drop ``key_id`` from their
    key caches now rather than within access.key_cache_ttl_s."""
    cfg = load(config)
    if not cfg.access.redis_url:
        return
    from fedinf.access.invalidation import publish_sync

    try:
        publish_sync(cfg.access.redis_url, cfg.access.redis_prefix, key_id)
    except Exception as exc:  # noqa: BLE001 - the change is committed; gateways notice within the TTL
        err_console.print(f"[yellow]warning:[/yellow] could not notify running gateways through Redis ({exc}); "
                          f"they notice within {cfg.access.key_cache_ttl_s:g} s", highlight=False)


def _when(ts: float | None) -> str:
    return "-" if ts is None else time.strftime("%Y-%m-%d %H:%M", time.gmtime(ts))


def _limits_text(lim: dict[str, Any]) -> str:
    parts = []
    if lim.get("requests_per_minute"):
        parts.append(f"{lim['requests_per_minute']} req/min")
    if lim.get("tokens_per_minute"):
        parts.append(f"{lim['tokens_per_minute']} tok/min")
    if lim.get("token_budget"):
        parts.append(f"{lim['token_budget']} tok/{lim.get('budget_period', 'month')}")
    return ", ".join(parts) or "unlimited"


def _print_secret(rec: Any, secret: str, as_json: bool) -> None:
    if as_json:
        console.print_json(json.dumps({**rec.to_dict(), "secret": secret}))
        return
    console.print(f"key [bold]{rec.key_id}[/bold] (tenant {rec.tenant}, roles {', '.join(rec.roles)})")
    console.print(f"secret: [bold green]{secret}[/bold green]", highlight=False, soft_wrap=True)
    err_console.print("[yellow]This secret is shown only once; it is stored as a hash. "
                      "Send it as `Authorization: Bearer <secret>`.[/yellow]")


@app.command("create")
def create(
    tenant: str = typer.Option("default", help="Tenant owning the key (created if new)."),
    name: str = typer.Option("", help="A label for the key."),
    role: list[str] = typer.Option(["user"], "--role", help="admin, user or auditor (repeatable)."),
    model: list[str] = typer.Option(["*"], "--model", help="Allowed model ids or globs (repeatable)."),
    zone: list[str] = typer.Option(["*"], "--zone", help="Allowed zones or globs (repeatable)."),
    route: list[str] = typer.Option(["*"], "--route", help="Allowed routes or globs (repeatable)."),
    task: list[str] = typer.Option(["*"], "--task", help="Allowed tasks or globs (repeatable)."),
    collection: list[str] = typer.Option(["*"], "--collection",
                                         help="Allowed retrieval collections or globs (repeatable)."),
    max_class: str = typer.Option("restricted", help="Highest data class the key may send."),
    may_lower: bool = typer.Option(False, help="May declare a lower data class than the one detected."),
    rpm: Optional[int] = typer.Option(None, help="Requests per minute."),
    tpm: Optional[int] = typer.Option(None, help="Tokens per minute."),
    budget: Optional[int] = typer.Option(None, help="Token budget per period."),
    budget_period: str = typer.Option("month", help="hour, day, week or month (UTC calendar)."),
    expires_days: Optional[float] = typer.Option(None, help="Expire after this many days."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON (including the secret)."),
    config: Optional[Path] = CONFIG_OPTION,
    store_url: Optional[str] = STORE_OPTION,
) -> None:
    """Create a key; its secret is printed once."""
    from fedinf.access import Limits, Scopes, new_key
    from fedinf.data_class import DataClass

    try:
        scopes = Scopes(models=tuple(model), zones=tuple(zone), routes=tuple(route), tasks=tuple(task),
                        collections=tuple(collection), max_class=DataClass.parse(max_class), may_lower_class=may_lower)
        limits = Limits(requests_per_minute=rpm, tokens_per_minute=tpm, token_budget=budget,
                        budget_period=budget_period)  # type: ignore[arg-type]
        rec, secret = new_key(tenant=tenant, name=name, roles=tuple(role), scopes=scopes, limits=limits,
                              expires_at=time.time() + expires_days * 86400 if expires_days else None)
    except ValueError as exc:
        err_console.print(f"[red]error:[/red] {exc}", highlight=False)
        raise typer.Exit(2) from None
    store = _store(config, store_url)
    store.insert_key(rec)
    store.close()
    _print_secret(rec, secret, as_json)


@app.command("list")
def list_keys(
    tenant: Optional[str] = typer.Option(None, help="Only this tenant's keys."),
    show_all: bool = typer.Option(False, "--all", help="Include revoked and expired keys."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
    config: Optional[Path] = CONFIG_OPTION,
    store_url: Optional[str] = STORE_OPTION,
) -> None:
    """List keys (never their secrets)."""
    store = _store(config, store_url)
    keys = [k.to_dict() for k in store.list_keys(tenant=tenant, include_inactive=show_all)]
    store.close()
    if as_json:
        console.print_json(json.dumps(keys))
        return
    table = Table(title=f"API keys ({len(keys)})")
    for col in ("key id", "tenant", "name", "roles", "models", "zones", "max class", "limits", "created", "state"):
        table.add_column(col)
    for k in keys:
        s = k["scopes"]
        table.add_row(k["key_id"], k["tenant"], k["name"], ",".join(k["roles"]), ",".join(s["models"]) or "(none)",
                      ",".join(s["zones"]) or "(none)", s["max_class"] + (" (may lower)" if s["may_lower_class"]
                                                                           else ""),
                      _limits_text(k["limits"]), _when(k["created_at"]), k["state"])
    console.print(table)


@app.command("rotate")
def rotate(
    key_id: str = typer.Argument(..., help="The key to replace."),
    grace: float = typer.Option(0.0, help="Seconds the old key keeps working."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON (including the new secret)."),
    config: Optional[Path] = CONFIG_OPTION,
    store_url: Optional[str] = STORE_OPTION,
) -> None:
    """Replace a key with a new secret (same tenant, roles, scopes and limits); the old one is revoked."""
    from fedinf.access.keys import rotated

    store = _store(config, store_url)
    got = store.get_key(key_id)
    if got is None:
        err_console.print(f"[red]error:[/red] no API key {key_id}; see `fedinf keys list --all`")
        raise typer.Exit(1)
    new, secret = rotated(got[0])
    store.rotate_key(key_id, new, old_ends_at=time.time() + grace)
    store.close()
    _notify(config, key_id)
    _print_secret(new, secret, as_json)
    if not as_json:
        console.print(f"old key {key_id} " + (f"stops working in {grace:g} s" if grace else "revoked"))


@app.command("revoke")
def revoke(
    key_id: str = typer.Argument(..., help="The key to revoke."),
    config: Optional[Path] = CONFIG_OPTION,
    store_url: Optional[str] = STORE_OPTION,
) -> None:
    """Revoke a key (running gateways stop accepting it at once with access.redis_url, else within
    access.key_cache_ttl_s)."""
    store = _store(config, store_url)
    rec = store.revoke_key(key_id)
    store.close()
    if rec is None:
        err_console.print(f"[red]error:[/red] no API key {key_id}; see `fedinf keys list --all`")
        raise typer.Exit(1)
    _notify(config, key_id)
    console.print(f"revoked {key_id} (tenant {rec.tenant})")


@app.command("tenant")
def tenant(
    name: str = typer.Argument(..., help="Tenant name."),
    description: Optional[str] = typer.Option(None, help="Description."),
    log_content: Optional[bool] = typer.Option(None, help="Keep pseudonymized content in audit records."),
    config: Optional[Path] = CONFIG_OPTION,
    store_url: Optional[str] = STORE_OPTION,
) -> None:
    """Create or update a tenant."""
    from fedinf.access import Tenant
    from fedinf.access.keys import check_name

    try:
        check_name("tenant", name)
    except ValueError as exc:
        err_console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from None
    store = _store(config, store_url)
    cur = store.get_tenant(name) or Tenant(name=name)
    t = store.upsert_tenant(Tenant(name=name, description=cur.description if description is None else description,
                                   log_content=cur.log_content if log_content is None else log_content,
                                   created_at=cur.created_at))
    store.close()
    _notify(config, None)
    console.print(f"tenant {t.name}: log_content={'on' if t.log_content else 'off'}", highlight=False)


@app.command("tenants")
def tenants(config: Optional[Path] = CONFIG_OPTION, store_url: Optional[str] = STORE_OPTION) -> None:
    """List tenants."""
    store = _store(config, store_url)
    rows = store.list_tenants()
    store.close()
    table = Table(title=f"tenants ({len(rows)})")
    for col in ("tenant", "description", "content logging", "created"):
        table.add_column(col)
    for t in rows:
        table.add_row(t.name, t.description, "on (pseudonymized)" if t.log_content else "off", _when(t.created_at))
    console.print(table)
