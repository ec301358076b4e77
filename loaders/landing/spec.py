"""What the rest of the code knows about a source: its spec, declared in the source's own folder.

A source folder (`loaders/sources/<name>/`) holds its dlt source, its record models and a `SPEC` of this
type: the dlt source function, each resource as its loader lands it (model, key, how a dead letter's text
is read again), and its connection check. The harness, the dead-letter replay, `elt check` and the tests
read the spec; nothing outside the folder names the source's modules.

A load's counts travel in a `Tally` the pipeline hands to the source function and gets back filled in:
records handed to dlt (the first column of the books) and requests retried. No module global carries them.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

import pyarrow as pa

from loaders.core.outcomes import Check
from loaders.landing.batch import Batch, Tally
from loaders.landing.records import SourceRecord

__all__ = ["Check", "ResourceSpec", "SourceSpec", "Tally", "json_record"]


RecordFromText = Callable[[str, str, "LandedRecord"], "tuple[Any, dict[str, Any]] | str"]
"""How a dead letter's text becomes a record again: `(text, location, landed_record)` gives the record and
the extra columns the loader lands with it, or why the text is not one."""

LandedRecord = Callable[[str, str], "dict[str, Any] | None"]
"""`(column, value)`: the `_record` of one row the loader landed with that value in that column, or None
(a settlement file's header is read from a row landed from the same file)."""


def json_record(text: str, location: str, landed_record: LandedRecord) -> tuple[Any, dict[str, Any]] | str:
    """A record that arrived as JSON (the API's, the database's): its text parsed, nothing landed beside it."""
    try:
        return json.loads(text), {}
    except ValueError as exc:
        return f"not JSON: {getattr(exc, 'msg', exc)}"


@dataclass(frozen=True)
class ResourceSpec:
    """One resource as its loader lands it: into `raw_<source>.<name>` keyed by (`key`, `_version`)."""

    name: str
    model: type[SourceRecord]
    key: str
    record_from_text: RecordFromText
    # sources read through `version_cursor`: how far in the future a version may be and still move it
    cursor_tolerance_seconds: float | None = None
    extra_columns: dict[str, pa.DataType] = field(default_factory=dict)
    # what makes two dead letters one: the record's text (re-served at another place on every re-read) or
    # its place in a file
    dead_letter_identity: Literal["raw_text", "location"] = "raw_text"

    def batch(self, source: str, delivered_at: datetime, tally: Tally | None = None) -> Batch:
        """A batch that lands this resource's records as its loader does, delivered at `delivered_at`."""
        horizon = None
        if self.cursor_tolerance_seconds is not None:
            horizon = delivered_at + timedelta(seconds=self.cursor_tolerance_seconds)
        return Batch(
            source,
            self.name,
            self.model,
            key=self.key,
            extra_columns=self.extra_columns,
            dead_letter_identity=self.dead_letter_identity,
            cursor_horizon=horizon,
            tally=tally or Tally(),
        )


@dataclass(frozen=True)
class SourceSpec:
    name: str
    dlt_source: Callable[..., Any]  # called with `tally=` and, for a backfill, `start=`/`end=`
    resources: tuple[ResourceSpec, ...]
    check: Callable[[], Check]

    def resource(self, name: str) -> ResourceSpec | None:
        return next((resource for resource in self.resources if resource.name == name), None)
