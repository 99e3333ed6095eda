"""Record builders: tasks whose record is more than a flat set of fields (a nested standard format such as OSV).

A task with ``builder: NAME`` is run by that builder instead of the field-by-field merge: the builder receives the
runner (for model calls through the same gateway path), the task and the loaded document, and returns a
:class:`~fedinf.tasks.runner.TaskResult`. Adding one = one module with an ``async def run(runner, spec, doc)`` plus
one entry here (imported lazily, so the task layer does not import every workload).
"""

from __future__ import annotations

import importlib
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fedinf.documents import Document
    from fedinf.tasks.runner import TaskResult
    from fedinf.tasks.spec import TaskSpec

Builder = Callable[[Any, "TaskSpec", "Document"], Awaitable["TaskResult"]]

BUILDERS: dict[str, str] = {
    "advisory": "fedinf.advisories.task:run",
}


def get_builder(name: str) -> Builder:
    module, _, attr = BUILDERS[name].partition(":")
    fn: Builder = getattr(importlib.import_module(module), attr)
    return fn
