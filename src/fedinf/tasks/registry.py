"""The task registry: built-in tasks plus those declared in the config (inline or ``{file: ...}``)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml
from pydantic import ValidationError

from fedinf.errors import ConfigError, NotFound
from fedinf.tasks.builtin import BUILTIN
from fedinf.tasks.spec import TaskSpec

if TYPE_CHECKING:
    from fedinf.config import Config


class TaskRegistry:
    def __init__(self, tasks: dict[str, TaskSpec], *, declared: tuple[str, ...] = ()) -> None:
        self._tasks = dict(tasks)
        self._declared = declared  # the names the config declared (the rest are built-ins)

    @classmethod
    def from_entries(cls, entries: list[dict[str, Any]], *, base_dir: str | Path = ".",
                     builtins: bool = True) -> "TaskRegistry":
        """Parse the config's ``tasks:`` entries. A config task may replace a built-in of the same name."""
        tasks = dict(BUILTIN) if builtins else {}
        seen: set[str] = set()
        for i, entry in enumerate(entries):
            source = f"tasks[{i}]"
            if set(entry) == {"file"}:
                path = Path(base_dir) / str(entry["file"])
                source = str(path)
                try:
                    entry = yaml.safe_load(path.read_text(encoding="utf-8"))
                except (OSError, yaml.YAMLError) as exc:
                    raise ConfigError(f"{source}: cannot read task file: {exc}") from None
                if not isinstance(entry, dict):
                    raise ConfigError(f"{source}: a task file must hold one mapping")
            try:
                spec = TaskSpec.model_validate(entry)
            except ValidationError as exc:
                errs = [f"{source}.{'.'.join(map(str, e['loc']))}: {e['msg'].removeprefix('Value error, ')}"
                        if e["loc"] else f"{source}: {e['msg'].removeprefix('Value error, ')}" for e in exc.errors()]
                raise ConfigError(f"invalid task in {source}:\n  " + "\n  ".join(errs), errors=errs) from None
            if spec.name in seen:
                raise ConfigError(f"{source}.name: duplicate task name {spec.name!r}")
            seen.add(spec.name)
            tasks[spec.name] = spec
        return cls(tasks, declared=tuple(seen))

    @classmethod
    def from_config(cls, config: Config, *, base_dir: str | Path = ".") -> "TaskRegistry":
        """The built-ins plus the config's tasks; a config task whose ``route`` or ``policy.allowed_zones`` names
        nothing the config defines is a ConfigError (it would otherwise fail on its first document)."""
        entries = list(config.tasks)
        reg = cls.from_entries(entries, base_dir=base_dir)
        declared = [reg._tasks[n] for n in reg._declared]
        errors = [e for spec in declared for e in _references(spec, config)]
        if errors:
            raise ConfigError(f"{len(errors)} error(s) in the config's tasks:\n  " + "\n  ".join(errors),
                              errors=errors)
        return reg

    def get(self, name: str) -> TaskSpec:
        try:
            return self._tasks[name]
        except KeyError:
            raise NotFound(f"unknown task {name!r}; known tasks: {', '.join(sorted(self._tasks))}",
                           code="task_not_found") from None

    def names(self) -> list[str]:
        return sorted(self._tasks)

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self._tasks[n] for n in self.names())


def _references(spec: TaskSpec, config: Config) -> list[str]:
    """Names in ``spec`` that the config does not define (routes/models, zones)."""
    errors = []
    routes, models, zones = set(config.routes), {m.id for m in config.models}, set(config.zones)
    if spec.route not in routes | models:
        errors.append(f"task {spec.name!r}: route {spec.route!r} is neither a route ({sorted(routes)}) nor a model "
                      f"id ({sorted(models)})")
    for zone in spec.policy.allowed_zones or []:
        if zone not in zones:
            errors.append(f"task {spec.name!r}: policy.allowed_zones names zone {zone!r}, which the config does "
                          f"not define ({sorted(zones)})")
    return errors
