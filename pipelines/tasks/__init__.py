"""One module per generation task; each defines a TaskSpec subclass, found here by its `task` name.

Discovery walks this package, so a new task is a new module and nothing else changes.
"""

from __future__ import annotations

import importlib
import pkgutil
from functools import cache

from pipelines.spec import TaskSpec


@cache
def spec_types() -> dict[str, type[TaskSpec]]:
    for module in pkgutil.iter_modules(__path__):
        importlib.import_module(f"{__name__}.{module.name}")
    found: dict[str, type[TaskSpec]] = {}
    pending = list(TaskSpec.__subclasses__())
    while pending:
        cls = pending.pop()
        pending.extend(cls.__subclasses__())
        if "task" in vars(cls):
            found[cls.task] = cls
    return found


def spec_type(task: str) -> type[TaskSpec]:
    try:
        return spec_types()[task]
    except KeyError:
        raise LookupError(f"unknown generation task: {task}") from None
