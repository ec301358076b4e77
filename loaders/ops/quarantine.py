"""Quarantine rows as the harness counts them around a build: open before, open after, by identity."""

from __future__ import annotations

from dataclasses import dataclass

from loaders.core.registry import QUARANTINE_KEYS
from loaders.core.settings import Settings
from loaders.warehouse import connect

OpenRows = dict[str, set[tuple[str, str]] | None]


def open_quarantine_rows(settings: Settings, missing_is_empty: bool = False) -> OpenRows:
    """Per quarantine table, the (natural key, version_key) of every open row; None when the table is not
    built (a failed first build), or an empty set with `missing_is_empty` (before a first build)."""
    rows: OpenRows = {}
    with connect(settings) as conn:
        cursor = conn.cursor()
        for table, key in QUARANTINE_KEYS.items():
            try:
                cursor.execute(f"select {key}, version_key from quarantine.{table} where not is_resolved")
                rows[table] = {(str(k), str(v)) for k, v in cursor.fetchall()}
            except Exception:  # not built yet (the connection autocommits: no transaction is left aborted)
                rows[table] = set() if missing_is_empty else None
    return rows


def open_counts(rows: OpenRows) -> dict[str, int | None]:
    """Open quarantine rows per table (None: not built)."""
    return {table: None if found is None else len(found) for table, found in rows.items()}


@dataclass(frozen=True)
class NewQuarantine:
    """Quarantine rows open after the build that were not open before it, per table (None: not built).

    Exact by identity, not by clock or count: a row is its (natural key, version_key), so a run that
    opens three rows and resolves three others opened three, a `--full-refresh` that rewrites every row
    (and its `first_seen_at`) opens none, and a row an earlier crashed build evaluated but did not write
    counts for the run that writes it."""

    by_table: dict[str, int | None]

    @classmethod
    def between(cls, before: OpenRows, after: OpenRows) -> NewQuarantine:
        return cls(
            {table: None if rows is None else len(rows - (before.get(table) or set())) for table, rows in after.items()}
        )

    @property
    def total(self) -> int:
        return sum(n for n in self.by_table.values() if n is not None)


def resolved_between(before: OpenRows, after: OpenRows) -> int:
    """Quarantine rows open before the build and not after it (released, or replaced by a newer row)."""
    return sum(len((before.get(table) or set()) - rows) for table, rows in after.items() if rows is not None)
