"""Token usage read back from the durable audit trail, so in-process budgets survive a restart.

:class:`AuditUsage` is the ``budget_source`` of a :class:`~fedinf.access.limits.MemoryLimiter`: called once per key
per process (the first time the key has a budget to check), it sums the tokens the audit trail recorded for that key
since the start of the current budget period. It opens its own store connection, in its own thread, on first use.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fedinf.config import AuditSettings


class AuditUsage:
    """``await usage(key_id, since) -> tokens`` over the audit store named by ``settings``."""

    def __init__(self, settings: "AuditSettings", *, state_dir: str | Path) -> None:
        self._settings = settings
        self._state_dir = state_dir
        self._executor = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="fedinf-usage")
        self._store: Any = None

    def _sum(self, key_id: str, since: float) -> int:
        if self._store is None:
            from fedinf.audit import open_audit_store

            self._store = open_audit_store(self._settings, state_dir=self._state_dir)
        return int(self._store.tokens_used(key_id, since))

    async def __call__(self, key_id: str, since: float) -> int:
        return await asyncio.get_running_loop().run_in_executor(self._executor, self._sum, key_id, since)

    def _close(self) -> None:
        if self._store is not None:
            self._store.close()
            self._store = None

    async def aclose(self) -> None:
        await asyncio.get_running_loop().run_in_executor(self._executor, self._close)
        self._executor.shutdown(wait=True)
