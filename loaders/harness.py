"""The `elt` run: every loader, then `dbt build`, then the thresholds, the ledger and a one-line summary.

A loader that fails does not stop the others or dbt (what landed is still worth building); it makes the
run's exit code non-zero. Progress goes to stderr as events (loaders/events.py: JSON lines, or readable lines
and progress bars on a terminal); the summary is the one line on stdout.

After dbt the run checks two thresholds (`Settings.max_dead_letter_rate`, `max_new_quarantine`): a source
that dead-lettered too large a share of what it extracted, or a build that opened too many quarantine
rows, gives the run its own exit code — with everything loaded and built kept, since the check comes last.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from enum import IntEnum
from functools import partial
from pathlib import Path
from typing import Any

from loaders.books import Book, entity_books, source_books
from loaders.entities import ENTITIES
from loaders.events import DbtProgress, bound_run, interactive, load_progress, log_event
from loaders.ledger import RunEntry, new_run_id, record_finish, record_start
from loaders.settings import Settings

QUARANTINE_KEYS = {entity.name: entity.key for entity in ENTITIES}


class ExitCode(IntEnum):
    """What `elt run` (and `load`, `build`, `replay`) exits with. When several apply, the smallest non-zero
    one. No outcome is 2: that is the command line's exit for a command called wrong (USAGE_ERROR)."""

    OK = 0
    LOAD_FAILED = 1
    BUILD_FAILED = 3
    TESTS_FAILED = 4
    LOCKED = 5
    DEAD_LETTER_THRESHOLD = 6
    QUARANTINE_THRESHOLD = 7
    GRANTS_FAILED = 8
    WAREHOUSE_UNREACHABLE = 9
    CHECK_FAILED = 10
    BOOKS_UNBALANCED = 11


USAGE_ERROR = 2  # click's exit on bad arguments; elt also uses it for a setting that cannot be used


@dataclass
class SourceOutcome:
    source: str
    extracted: int = 0
    landed: int = 0
    dead_lettered: int = 0
    collapsed: int = 0  # rows of one extraction that a later row with the same (key, version) replaced
    error: str | None = None
    resumed_packages: int = 0
    load_ids: tuple[str, ...] = ()
    retries: int = 0
    files_read: int | None = None  # sources that read files: files taken in this run
    cursor_before: dict[str, Any] = field(default_factory=dict)
    cursor_after: dict[str, Any] = field(default_factory=dict)

    def describe(self) -> str:
        if self.error:
            return f"{self.source} FAILED ({self.error})"
        resumed = f" resumed={self.resumed_packages}" if self.resumed_packages else ""
        return (
            f"{self.source} extracted={self.extracted} landed={self.landed} dead_lettered={self.dead_lettered}{resumed}"
        )


@dataclass
class DbtOutcome:
    returncode: int
    invocation_id: str | None = None
    models_built: int = 0
    models_failed: int = 0
    tests_passed: int = 0
    tests_failed: int = 0
    statuses: dict[str, str] = field(default_factory=dict)

    def describe(self) -> str:
        return (
            f"models built={self.models_built} failed={self.models_failed}; "
            f"tests passed={self.tests_passed} failed={self.tests_failed}"
        )


def load_sources(settings: Settings, sources: list[str]) -> list[SourceOutcome]:
    with load_progress():
        return [load_one(settings, source) for source in sources]


def load_one(settings: Settings, source: str) -> SourceOutcome:
    from loaders.indexes import ensure_raw_indexes
    from loaders.locking import writer_lock
    from loaders.pipelines import cursor_positions, load_source
    from loaders.sources.shop_api.helpers import RETRIES

    started = time.monotonic()
    log_event("load_started", source=source)
    before = cursor_positions(settings, source)
    RETRIES.take()
    try:
        with writer_lock(settings):
            report = load_source(settings, source, on_reset=partial(log_event, "local_state_reset", source=source))
            ensure_raw_indexes(settings, source)
    except Exception as exc:  # one source's failure must not hide the others'
        message = root_cause(exc)
        log_event("load_failed", source=source, error=message)
        return SourceOutcome(source, error=message, retries=RETRIES.take(), cursor_before=before, cursor_after=before)
    after = cursor_positions(settings, source)
    outcome = SourceOutcome(
        source,
        report.extracted,
        report.landed,
        report.dead_lettered,
        report.collapsed,
        resumed_packages=report.resumed_packages,
        load_ids=tuple(report.load_ids),
        retries=RETRIES.take(),
        files_read=files_taken(before, after),
        cursor_before=before,
        cursor_after=after,
    )
    log_event(
        "load_finished",
        source=source,
        extracted=outcome.extracted,
        landed=outcome.landed,
        dead_lettered=outcome.dead_lettered,
        collapsed=outcome.collapsed,
        load_ids=list(report.load_ids),
        resumed_packages=report.resumed_packages,
        resumed_load_ids=list(report.resumed_load_ids),
        retries=outcome.retries,
        cursor_after=after,
        seconds=round(time.monotonic() - started, 2),
    )
    return outcome


def files_taken(before: dict[str, Any], after: dict[str, Any]) -> int | None:
    """Files a run took, from the file manifests' sizes before and after (None: the source reads no files)."""
    manifests = [name for name, position in after.items() if isinstance(position, dict) and "files" in position]
    if not manifests:
        return None
    return sum(after[name]["files"] - (before.get(name) or {}).get("files", 0) for name in manifests)


def root_cause(exc: BaseException) -> str:
    from loaders.pipelines import innermost_cause

    cause = innermost_cause(exc)
    return f"{type(cause).__name__}: {cause}".splitlines()[0]


def dbt_executable() -> str:
    beside = Path(sys.executable).with_name("dbt")
    return str(beside) if beside.exists() else "dbt"


def run_dbt(settings: Settings, args: list[str]) -> DbtOutcome:
    env = {**os.environ, **settings.dbt_env(), "DBT_PROFILES_DIR": str(settings.project_dir)}
    # dbt's own DBT_TARGET_PATH lets two invocations (two test sessions, a plain dbt beside the
    # harness) keep their artifacts apart; relative paths are the project folder's, as for dbt.
    results_path = settings.project_dir / env.get("DBT_TARGET_PATH", "target") / "run_results.json"
    results_path.unlink(missing_ok=True)  # a dbt that fails before writing must not report the last run's
    log_event("dbt_started", args=args)
    command = [dbt_executable(), *args]
    if interactive():
        with (
            DbtProgress() as progress,
            subprocess.Popen(
                command, cwd=settings.project_dir, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
            ) as proc,
        ):
            for line in proc.stdout or ():
                progress.line(line)
    else:
        proc = subprocess.run(command, cwd=settings.project_dir, env=env, stdout=sys.stderr, check=False)
    outcome = DbtOutcome(returncode=proc.returncode)
    if results_path.exists():
        results = json.loads(results_path.read_text())
        outcome.invocation_id = results.get("metadata", {}).get("invocation_id")
        for result in results.get("results", []):
            kind = result["unique_id"].split(".", 1)[0]
            status = result["status"]
            outcome.statuses[result["unique_id"]] = status
            if kind == "model":
                if status == "success":
                    outcome.models_built += 1
                elif status in ("error", "skipped"):
                    outcome.models_failed += 1
            elif kind in ("test", "unit_test"):
                if status == "pass":
                    outcome.tests_passed += 1
                elif status in ("fail", "error"):
                    outcome.tests_failed += 1
    log_event(
        "dbt_finished",
        returncode=proc.returncode,
        models_built=outcome.models_built,
        models_failed=outcome.models_failed,
        tests_passed=outcome.tests_passed,
        tests_failed=outcome.tests_failed,
    )
    return outcome


OpenRows = dict[str, set[tuple[str, str]] | None]


def open_quarantine_rows(settings: Settings, missing_is_empty: bool = False) -> OpenRows:
    """Per quarantine table, the (natural key, version_key) of every open row; None when the table is not
    built (a failed first build), or an empty set with `missing_is_empty` (before a first build)."""
    from loaders.warehouse import connect

    rows: OpenRows = {}
    with connect(settings) as conn:
        cursor = conn.cursor()
        for table, key in QUARANTINE_KEYS.items():
            try:
                cursor.execute(f"select {key}, version_key from quarantine.{table} where not is_resolved")
                rows[table] = {(str(k), str(v)) for k, v in cursor.fetchall()}
            except Exception:  # not built yet
                rows[table] = set() if missing_is_empty else None
                if settings.target == "postgres":
                    conn.rollback()
    return rows


def open_quarantine(settings: Settings) -> dict[str, int | None]:
    """Open quarantine rows per table (None: not built)."""
    return {table: None if rows is None else len(rows) for table, rows in open_quarantine_rows(settings).items()}


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


@dataclass(frozen=True)
class Breach:
    """One threshold the run exceeded, and by how much."""

    code: ExitCode
    text: str


def check_thresholds(settings: Settings, outcomes: list[SourceOutcome], new: NewQuarantine) -> list[Breach]:
    breaches = []
    limit = settings.max_dead_letter_rate
    for outcome in outcomes:
        if outcome.error or outcome.extracted == 0:
            continue
        rate = outcome.dead_lettered / outcome.extracted
        if rate > limit:
            breaches.append(
                Breach(
                    ExitCode.DEAD_LETTER_THRESHOLD,
                    f"{outcome.source} dead-letter rate {rate:.2%} ({outcome.dead_lettered}/{outcome.extracted})"
                    f" > max {limit:.2%} by {(rate - limit) * 100:.2f} points",
                )
            )
    cap = settings.max_new_quarantine
    if cap is not None and new.total > cap:
        tables = " ".join(f"{table}={n}" for table, n in new.by_table.items() if n)
        breaches.append(
            Breach(
                ExitCode.QUARANTINE_THRESHOLD,
                f"new quarantine rows {new.total} ({tables}) > max {cap} by {new.total - cap}",
            )
        )
    return breaches


def summary_line(
    outcomes: list[SourceOutcome],
    dbt: DbtOutcome | None,
    quarantine: dict[str, int | None],
    seconds: float,
    code: ExitCode,
    breaches: list[Breach] | None = None,
) -> str:
    parts = [f"elt run {'ok' if code == ExitCode.OK else 'FAILED(' + code.name.lower() + ')'}:"]
    parts.append("; ".join(outcome.describe() for outcome in outcomes) + ";")
    if dbt is not None:
        parts.append(dbt.describe() + ";")
    open_rows = " ".join(f"{table}={'?' if n is None else n}" for table, n in quarantine.items())
    parts.append(f"quarantine open {open_rows};")
    if breaches:
        parts.append("thresholds exceeded: " + "; ".join(breach.text for breach in breaches) + ";")
    parts.append(f"{seconds:.1f}s")
    return " ".join(parts)


def outcome_code(outcomes: list[SourceOutcome], dbt: DbtOutcome, breaches: list[Breach]) -> ExitCode:
    """The smallest code that applies: a failed load, then a failed model, a failed test, a threshold."""
    codes = [breach.code for breach in breaches]
    if any(outcome.error for outcome in outcomes):
        codes.append(ExitCode.LOAD_FAILED)
    if dbt.models_failed or (dbt.returncode != 0 and not dbt.tests_failed):
        codes.append(ExitCode.BUILD_FAILED)
    if dbt.tests_failed:
        codes.append(ExitCode.TESTS_FAILED)
    return min(codes, default=ExitCode.OK)


@contextlib.contextmanager
def ledgered(settings: Settings, command: str, arguments: list[str]) -> Iterator[RunEntry]:
    """One run in the ledger (call it holding the run lock): its row is written `running` now and completed
    when the block ends — with the exit code and summary the block set on the entry, or, when the block
    raised, exit 1 and the error. Every JSON event meanwhile carries the run id."""
    run = RunEntry(new_run_id(), command, arguments)
    with bound_run(run.run_id):
        record_start(settings, run)
        log_event("run_started", command=command, arguments=arguments)
        try:
            yield run
        except BaseException as exc:
            record_finish(settings, run, exit_code=1, error=root_cause(exc), summary="")
            raise
        record_finish(settings, run, exit_code=int(run.exit_code), error=run.error, summary=run.summary)


def record_dbt(run: RunEntry, dbt: DbtOutcome) -> None:
    run.dbt_invocation_id = dbt.invocation_id
    run.models_built, run.models_failed = dbt.models_built, dbt.models_failed
    run.tests_passed, run.tests_failed = dbt.tests_passed, dbt.tests_failed


def balance_books(settings: Settings, outcomes: list[SourceOutcome], dbt: DbtOutcome) -> list[Book]:
    """The run's books (loaders/books.py): each loaded source's, and each entity's when no model failed
    (a failed model leaves its tables behind the raw data until the next build)."""
    books = source_books(outcomes)
    if outcome_code([], dbt, []) in (ExitCode.OK, ExitCode.TESTS_FAILED):
        books += entity_books(settings)
    for book in books:
        log_event("book", name=book.name, balanced=book.balanced, difference=book.difference, text=book.describe())
    return books


def elt_run(settings: Settings, sources: list[str], dbt_args: list[str]) -> tuple[ExitCode, str]:
    from loaders.locking import RunLocked, run_lock

    started = time.monotonic()
    try:
        with run_lock(settings), ledgered(settings, "run", [*sources, *dbt_args]) as run:
            outcomes = load_sources(settings, sources)
            run.sources = outcomes
            # quarantine changes only in dbt: what is open now is what was open before the build
            before = open_quarantine_rows(settings, missing_is_empty=True)
            dbt = run_dbt(settings, ["build", *dbt_args])
            record_dbt(run, dbt)
            after = open_quarantine_rows(settings)
            new = NewQuarantine.between(before, after)
            run.quarantine_opened, run.quarantine_resolved = new.total, resolved_between(before, after)
            run.books = balance_books(settings, outcomes, dbt)
            breaches = check_thresholds(settings, outcomes, new) + [
                Breach(ExitCode.BOOKS_UNBALANCED, f"books do not balance: {book.describe()}")
                for book in run.books
                if not book.balanced
            ]
            code = outcome_code(outcomes, dbt, breaches)
            quarantine = {table: None if rows is None else len(rows) for table, rows in after.items()}
            line = summary_line(outcomes, dbt, quarantine, time.monotonic() - started, code, breaches)
            run.exit_code, run.summary = code, line
            run.error = (
                "; ".join([*(f"{o.source}: {o.error}" for o in outcomes if o.error), *(b.text for b in breaches)])
                or None
            )
            log_event(
                "run_finished",
                exit_code=int(code),
                new_quarantine=new.by_table,
                max_dead_letter_rate=settings.max_dead_letter_rate,
                max_new_quarantine=settings.max_new_quarantine,
                thresholds_exceeded=[breach.text for breach in breaches],
            )
    except RunLocked as exc:
        log_event("run_locked", error=str(exc))
        return ExitCode.LOCKED, f"elt run FAILED(locked): {exc}"
    return code, line
