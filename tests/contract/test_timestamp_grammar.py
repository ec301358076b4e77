"""One timestamp grammar (contract 2.1: timestamps are UTC; 2.2: `bad_timestamp` is "unparseable").

The loaders' parser (`_version_at`, the cursor and "latest") and dbt's `safe_timestamp` (every other typed
timestamp) must accept exactly the same texts and read each as the same instant, whatever the session's
time zone: else one version is "latest" in raw and quarantined in dbt, or a run on another host quarantines
other rows. One table below states the expected instant (UTC) of every text, or None; the Python parser and
the real macro, compiled by dbt and run in sessions deliberately set off UTC, must both give it.
"""

from __future__ import annotations

import subprocess
from datetime import UTC, datetime

import pytest

from loaders.core.registry import PROJECT_DIR
from loaders.core.settings import Settings
from loaders.core.timestamps import TIMESTAMP_GRAMMAR, parse_timestamp
from loaders.ops.dbt import dbt_environment, dbt_executable
from loaders.warehouse import connect

pytestmark = pytest.mark.warehouses("duckdb", "postgres")

# (text, its instant in UTC, or None when the text is not a timestamp)
CORPUS: list[tuple[str | None, str | None]] = [
    # ISO-8601 / RFC 3339 with a zone
    ("2024-03-01T12:30:00Z", "2024-03-01T12:30:00"),
    ("2024-03-01t12:30:00z", "2024-03-01T12:30:00"),
    ("2024-03-01T12:30:00+05:30", "2024-03-01T07:00:00"),
    ("2024-03-01T12:30:00+0530", "2024-03-01T07:00:00"),
    ("2024-03-01T12:30:00+05", "2024-03-01T07:30:00"),
    ("2024-03-01T12:30:00-08:00", "2024-03-01T20:30:00"),
    ("2024-03-01T23:30:00-08:00", "2024-03-02T07:30:00"),
    ("2024-03-01T01:00:00+14:00", "2024-02-29T11:00:00"),
    ("2024-03-01T12:30:00-00:00", "2024-03-01T12:30:00"),
    ("2024-03-01 12:30:00+00:00", "2024-03-01T12:30:00"),
    ("2024-03-01 12:30Z", "2024-03-01T12:30:00"),
    # no zone: UTC, whatever the session's zone
    ("2024-03-01T12:30:00", "2024-03-01T12:30:00"),
    ("2024-03-01 12:30:00", "2024-03-01T12:30:00"),  # SQLite's own spelling (the app database)
    ("2024-03-01T12:30", "2024-03-01T12:30:00"),
    ("2024-03-10 02:30:00", "2024-03-10T02:30:00"),  # no such wall-clock time in New York
    ("2024-11-03 01:30:00", "2024-11-03T01:30:00"),  # twice in New York
    # a date alone: midnight UTC
    ("2024-03-01", "2024-03-01T00:00:00"),
    ("2024-02-29", "2024-02-29T00:00:00"),
    # fractions of a second: 1 to 6 digits
    ("2024-03-01T12:30:00.1Z", "2024-03-01T12:30:00.100000"),
    ("2024-03-01T12:30:00.12Z", "2024-03-01T12:30:00.120000"),
    ("2024-03-01T12:30:00.123", "2024-03-01T12:30:00.123000"),
    ("2024-03-01T12:30:00.1234+01:00", "2024-03-01T11:30:00.123400"),
    ("2024-03-01T12:30:00.12345Z", "2024-03-01T12:30:00.123450"),
    ("2024-03-01T12:30:00.123456Z", "2024-03-01T12:30:00.123456"),
    ("2024-03-01T12:30:00.000000Z", "2024-03-01T12:30:00"),
    ("2024-03-01T12:30:00.1234567Z", None),
    ("2024-03-01T12:30:00.Z", None),
    ("2024-03-01T12:30:00,5Z", None),
    # calendar and clock
    ("2024-02-29T12:00:00Z", "2024-02-29T12:00:00"),
    ("2023-02-29T12:00:00Z", None),
    ("2024-02-30", None),
    ("2024-04-31T00:00:00Z", None),
    ("2024-13-01", None),
    ("2024-00-10", None),
    ("2024-03-00", None),
    ("2024-03-01T24:00:00Z", None),
    ("2024-03-01T24:00", None),
    ("2024-03-01T23:59:60Z", None),
    ("2024-03-01T12:60:00Z", None),
    ("2024-03-01T12:30:00+15:00", None),
    ("2024-03-01T12:30:00+05:60", None),
    ("2024-03-01T12:30:00+5:30", None),
    ("2024-03-01T12:30:00+05:30:00", None),
    # the edges of the years 0001-9999, in UTC
    ("0001-01-01T00:00:00Z", "0001-01-01T00:00:00"),
    ("9999-12-31T23:59:59.999999Z", "9999-12-31T23:59:59.999999"),
    ("0000-01-01", None),
    ("0001-01-01T00:00:00+01:00", None),
    ("9999-12-31T23:30:00-01:00", None),
    # other ISO-8601 spellings
    ("2024-W10-1", None),
    ("2024-W10", None),
    ("2024-061", None),
    ("20240301T123000Z", None),
    ("20240301", None),
    ("2024-03-01T1230", None),
    ("2024-03-01T12", None),
    ("2024-03", None),
    ("+2024-03-01", None),
    ("2024-03-01Z", None),
    ("2024-03-01+05:00", None),
    # near misses
    ("2024-3-1", None),
    ("24-03-01", None),
    ("2024/03/01", None),
    ("2024-03-01  12:30:00", None),
    ("2024-03-01_12:30:00", None),
    ("2024-03-01T12:30:00 Z", None),
    ("2024-03-01T12:30:00 +05:30", None),
    ("2024-03-01T12:30:00UTC", None),
    ("2024-03-01T12:30:00 UTC", None),
    ("2024-03-01T12:30:00 America/New_York", None),
    ("２０２４-03-01", None),
    # surrounding whitespace is not part of a timestamp
    (" 2024-03-01T12:30:00Z", None),
    ("2024-03-01T12:30:00Z ", None),
    ("2024-03-01T12:30:00Z\n", None),
    ("\t2024-03-01", None),
    ("", None),
    ("   ", None),
    (None, None),
    # words some readers take for timestamps
    ("not-a-date", None),
    ("now", None),
    ("today", None),
    ("epoch", None),
    ("infinity", None),
    ("-infinity", None),
    ("allballs", None),
    ("NaN", None),
    ("null", None),
    ("1709296200", None),
]

# Off UTC on both sides of it, and with DST.
SESSION_TIME_ZONES = ("Asia/Kolkata", "America/New_York")


def expected_instant(expected: str | None) -> datetime | None:
    return None if expected is None else datetime.fromisoformat(expected).replace(tzinfo=UTC)


def sql_literal(text: str | None) -> str:
    return "null" if text is None else "'" + text.replace("'", "''") + "'"


def compiled_by_dbt(settings: Settings, inline: str) -> str:
    """What dbt compiles an inline query to, with the project's own macros, for the settings' target."""
    env = dbt_environment(settings)
    proc = subprocess.run(
        [dbt_executable(), "compile", "--quiet", "--inline", inline],
        cwd=settings.project_dir,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.stdout


def test_the_python_parser_reads_every_text_as_the_table_says() -> None:
    wrong = [
        (text, parse_timestamp(text), expected)
        for text, expected in CORPUS
        if parse_timestamp(text) != expected_instant(expected)
    ]
    assert wrong == []


def test_the_sql_macro_states_the_same_pattern_as_the_python_parser() -> None:
    assert TIMESTAMP_GRAMMAR.pattern in (PROJECT_DIR / "macros" / "cross_database.sql").read_text()


def test_safe_timestamp_agrees_with_the_python_parser_in_any_session_time_zone(warehouse) -> None:
    settings = Settings.from_env(warehouse.env)
    rows = ", ".join(f"({n}, cast({sql_literal(text)} as varchar))" for n, (text, _) in enumerate(CORPUS))
    # The macro's instant, shown as a UTC wall-clock time so reading it back depends on no zone either.
    query = compiled_by_dbt(
        settings,
        "select corpus.n, ({{ safe_timestamp('corpus.text') }}) at time zone 'UTC' as instant "
        f"from (values {rows}) as corpus (n, text) order by corpus.n",
    )
    setup = compiled_by_dbt(settings, "{{ ensure_ops_objects() }}")  # dbt's on-run-start: ops' SQL helpers

    with connect(settings, read_only=False) as conn:
        cursor = conn.cursor()
        cursor.execute(setup)
        for zone in SESSION_TIME_ZONES:
            cursor.execute(f"set timezone = '{zone}'")
            cursor.execute(query)
            got = {n: instant for n, instant in cursor.fetchall()}
            wrong = [
                (zone, text, got[n], parse_timestamp(text), expected)
                for n, (text, expected) in enumerate(CORPUS)
                if got[n] != (None if expected is None else datetime.fromisoformat(expected))
                or parse_timestamp(text) != expected_instant(expected)
            ]
            assert wrong == [], f"{warehouse.target}: (zone, text, SQL, Python, expected)"


def test_the_suite_runs_off_utc() -> None:
    """What makes the table above bite: this process is not in UTC (tests/conftest.py), so a reader that
    fell back on the local zone would read a text without a zone 5h30 early."""
    offset = datetime(2024, 3, 1, 12, 30).astimezone().utcoffset()
    assert offset is not None and offset.total_seconds() == 5.5 * 3600
