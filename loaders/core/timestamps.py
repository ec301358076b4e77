"""The project's one timestamp grammar, the parser the loaders use for it, and how instants are written.

The same regular expression, character for character, is `safe_timestamp` in macros/cross_database.sql,
so the loaders' `_version_at` and dbt's typed timestamps accept exactly the same texts and read them as
the same instant, whatever the host's, dbt's or the database session's time zone. A text is either

- `YYYY-MM-DD` alone: midnight UTC of that day; or
- `YYYY-MM-DD` then `T`, `t` or one space, then `HH:MM`, optionally `:SS`, optionally `.` and 1 to 6
  fraction digits, then optionally a zone: `Z`, `z`, `±HH`, `±HHMM` or `±HH:MM`. No zone means UTC.

Months 01-12, days 01-31 and a real calendar date (2024-02-30 is not), hours 00-23, minutes and seconds
00-59 (no `24:00`, no leap second), offset hours 00-14 (the zones in use span -12:00 to +14:00; PostgreSQL
refuses beyond 15:59). The instant must fall in years 0001-9999 once in UTC (Python's datetime range).
Anything else is not a timestamp: surrounding whitespace, an empty text, week or ordinal dates
(`2024-W10-1`), compact forms (`20240301T120000Z`), 7 or more fraction digits, `now`, `epoch`, `infinity`.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

# Plain POSIX-style classes only, no `\d` or named groups: PostgreSQL's and DuckDB's (RE2) regular
# expressions must read this pattern exactly as Python does.
TIMESTAMP_GRAMMAR = re.compile(
    "^([0-9]{4})-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])"
    "([Tt ]([01][0-9]|2[0-3]):([0-5][0-9])(:([0-5][0-9])([.]([0-9]{1,6}))?)?"
    "([Zz]|([+-])(0[0-9]|1[0-4])(:?([0-5][0-9]))?)?)?$"
)


def parse_timestamp(text: str | None) -> datetime | None:
    """The instant a text of the grammar names, as an aware UTC datetime; None for any other text."""
    # fullmatch, because Python's `$` also matches before a trailing newline.
    if not isinstance(text, str) or TIMESTAMP_GRAMMAR.fullmatch(text) is None:
        return None
    # Every text of the grammar is one that fromisoformat reads (once `t` and `z` are upper case), with
    # the same meaning; it is several times faster than assembling the datetime from the groups, and
    # this runs for every version landed. It still refuses what the pattern cannot: 2024-02-30.
    try:
        parsed = datetime.fromisoformat(text.upper())
        return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
    except (ValueError, OverflowError):  # not a calendar date, or outside years 0001-9999 once in UTC
        return None


def as_utc(value: datetime | str) -> datetime:
    """A timestamp as the drivers hand it back (aware in the session's zone, naive UTC, or ISO text from
    Spark) as an aware UTC datetime."""
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def iso(value: datetime | str) -> str:
    """An instant as the project writes it everywhere for people and machines: `2024-03-01T06:00:00Z`."""
    return as_utc(value).strftime("%Y-%m-%dT%H:%M:%SZ")
