"""Store URLs and the registry of store engines, shared by every family of stored state (audit trail, API keys).

A store URL names its engine by scheme::

    sqlite:///relative/path.db     (resolved against server.state_dir)
    sqlite:////absolute/path.db    (SQLAlchemy's convention)
    postgresql://user@host:port/db (also postgres://)

:func:`open_store` parses the URL, finds the engine in :data:`ENGINES` and calls the engine's opener for the family
(``audit``, ``keys``, ``claims``, ``retrieval``). Openers are ``module:function`` strings, so an engine's client library (psycopg) is
imported only when a configured URL uses it. Adding an engine = one module per family with an opener
``open_<engine>(url: StoreUrl, **options) -> store`` + one :class:`Engine` entry here; adding a family = one key in
each engine's ``families``.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fedinf.errors import ConfigError

FAMILIES = ("audit", "keys", "claims", "retrieval")


@dataclass(frozen=True, slots=True)
class StoreUrl:
    """A parsed store URL: ``kind`` is the engine's name; file engines set ``path``, server engines ``dsn``."""

    kind: str
    path: Path | None = None
    dsn: str | None = None


def _sqlite(url: str, base_dir: Path) -> StoreUrl:
    raw = url[len("sqlite:///"):]
    if not raw:
        raise ConfigError(f"store url {url!r}: missing the database file path")
    p = Path(raw)
    return StoreUrl("sqlite", path=p if p.is_absolute() else base_dir / p)


def _postgresql(url: str, base_dir: Path) -> StoreUrl:
    return StoreUrl("postgresql", dsn=url)


@dataclass(frozen=True, slots=True)
class Engine:
    """One store engine: the URL prefixes it answers to, how to parse them, and its opener per family."""

    name: str
    prefixes: tuple[str, ...]
    parse: Callable[[str, Path], StoreUrl]
    families: Mapping[str, str] = field(default_factory=dict)  # family -> "module:function"


ENGINES: tuple[Engine, ...] = (
    Engine("sqlite", ("sqlite:///",), _sqlite,
           {"audit": "fedinf.audit.store:open_sqlite", "keys": "fedinf.access.store:open_sqlite",
            "claims": "fedinf.claims.store:open_sqlite", "retrieval": "fedinf.retrieval.sqlite_store:open_sqlite"}),
    Engine("postgresql", ("postgresql://", "postgres://"), _postgresql,
           {"audit": "fedinf.audit.pg:open_postgres", "keys": "fedinf.access.store:open_postgres",
            "claims": "fedinf.claims.store:open_postgres", "retrieval": "fedinf.retrieval.pg_store:open_postgres"}),
)


def engine_for(url: str) -> Engine:
    for engine in ENGINES:
        if url.startswith(engine.prefixes):
            return engine
    known = " or ".join(f"{e.prefixes[0]}..." for e in ENGINES)
    raise ConfigError(f"store url {url!r}: expected {known}")


def parse_store_url(url: str, *, base_dir: str | Path = ".") -> StoreUrl:
    """Parse ``url``; a relative file path is resolved against ``base_dir``. Raises ConfigError when unknown."""
    return engine_for(url).parse(url, Path(base_dir))


def open_store(family: str, url: str, *, base_dir: str | Path = ".", **options: Any) -> Any:
    """Open (and migrate) the ``family`` store at ``url``. ``options`` go to the engine's opener; each family's
    own ``open_*_store`` function gives the result its type."""
    engine = engine_for(url)
    target = engine.families.get(family)
    if target is None:
        raise ConfigError(f"store url {url!r}: the {engine.name} engine cannot hold the {family} store")
    module_name, _, func = target.partition(":")
    opener = getattr(importlib.import_module(module_name), func)
    return opener(engine.parse(url, Path(base_dir)), **options)
