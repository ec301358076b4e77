"""The two timestamp spellings of the simulated sources, and the one parser that reads them back.

The API and the CSV files speak ISO-8601 with a `Z`; the app database speaks SQLite's own
`YYYY-MM-DD HH:MM:SS`. Both are UTC with whole seconds. A naive datetime is taken to be in UTC.
Texts are read back by the project's one grammar (loaders/timestamps.py), so the simulated API sorts and
filters by `updated_at` exactly the texts the loaders and dbt take for timestamps.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from loaders.core.timestamps import parse_timestamp


def as_utc(at: datetime) -> datetime:
    """A naive datetime is taken to be UTC already; an aware one is converted."""
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)


def _naive_utc(at: datetime) -> datetime:
    return at if at.tzinfo is None else at.astimezone(UTC).replace(tzinfo=None)


# isoformat is several times faster than strftime, and these run for every timestamp of every record.
def iso_timestamp(at: datetime) -> str:
    return _naive_utc(at).isoformat(timespec="seconds") + "Z"


def sqlite_timestamp(at: datetime) -> str:
    return _naive_utc(at).isoformat(sep=" ", timespec="seconds")


def normalise_timestamp(value: Any) -> str | None:
    """The API's comparable text form `YYYY-MM-DDTHH:MM:SSZ`, or None when `value` is not a timestamp."""
    if not isinstance(value, str):
        return None
    parsed = parse_timestamp(value)
    return None if parsed is None else iso_timestamp(parsed)
