"""The warehouse as the harness and the loaders reach it: one dialect per target (duckdb, postgres, spark).

`dialect(settings)` is the one place that reads `settings.target`; everything else asks the dialect. This
module stays light (the dialects import dlt and the drivers when first used), so `elt --help` is instant.
"""

from __future__ import annotations

import contextlib
import importlib
from typing import TYPE_CHECKING, Any

from loaders.core.settings import Settings

if TYPE_CHECKING:
    from loaders.warehouse.base import Dialect

__all__ = ["Dialect", "connect", "dialect", "fetch_all", "refused"]

# target -> the module and class of its dialect
DIALECTS = {"duckdb": ("duckdb", "DuckDB"), "postgres": ("postgres", "Postgres"), "spark": ("spark", "Spark")}
# Commands whose SQL (deletes, updates, roles, DuckDB files) is not written for a target yet: refused there
# with a clear message rather than failing half-way (docs/spark.md).
NOT_YET = {"spark": ("backfill", "replay", "rejudge", "dead-letters", "reset", "grants", "move", "report")}


def dialect(settings: Settings) -> Dialect:
    module, name = DIALECTS[settings.target]
    cls: type[Dialect] = getattr(importlib.import_module(f"loaders.warehouse.{module}"), name)
    return cls(settings)


def refused(settings: Settings, command: str) -> str | None:
    """Why the warehouse cannot run this command yet, or None."""
    if command in NOT_YET.get(settings.target, ()):
        return f"not available on {settings.target.capitalize()} yet; see docs/spark.md for what runs there"
    return None


def connect(settings: Settings, read_only: bool = True) -> contextlib.AbstractContextManager[Any]:
    return dialect(settings).connect(read_only)


def fetch_all(settings: Settings, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    return dialect(settings).fetch_all(sql, params)
