"""`elt dead-letters`: the records no loader could land, listed, and landed again once they can be.

Nothing is ever deleted: a dead letter stays in `raw_<source>.dead_letters`; its resolution is a row of
`ops.dead_letter_resolutions`. A replayed record goes through its loader's own landing path (the source's
spec and `Batch.add`) and a pipeline of its own, so the source's cursor and manifest never move. The rows
are landed first and the resolutions recorded after (docs/commands.md, "dead-letters").
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any

import dlt

from loaders.core.events import log_event
from loaders.core.outcomes import ExitCode, SourceOutcome, UsageError, outcome_code, root_cause
from loaders.core.registry import DEAD_LETTERS_TABLE, LOADS_TABLE, SOURCE_NAMES, raw_dataset, replay_pipeline_name
from loaders.core.settings import Settings
from loaders.core.timestamps import as_utc
from loaders.landing.batch import Batch, raw_table_hints
from loaders.landing.pipelines import land_resources
from loaders.landing.spec import ResourceSpec
from loaders.ops.runner import Result, dbt_build, ledgered
from loaders.sources import spec
from loaders.warehouse import dialect, ops_tables
from loaders.warehouse.base import Dialect
from loaders.warehouse.ledger import RunEntry
from loaders.warehouse.locks import run_lock, writer_lock
from loaders.warehouse.ops_tables import DEAD_LETTER_RESOLUTIONS, SCHEMA

REPLAY_COMMAND = "dead-letters replay"
RELANDED, CORRECTED = "relanded", "corrected"
# The loaders store bytes that were not UTF-8 escaped (`\xff`): that text is not what arrived, and
# landing it would land something the source never sent. Only a corrected record can resolve it.
ESCAPED_BYTES = "invalid UTF-8 at byte"


# -- reading ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Resolution:
    resolved_at: datetime
    how: str
    load_id: str
    run_id: str | None


@dataclass(frozen=True)
class DeadLetter:
    dead_letter_id: str
    source: str
    resource: str
    location: str
    raw_text: str
    error: str
    dead_lettered_at: datetime
    resolution: Resolution | None = None

    @property
    def is_open(self) -> bool:
        return self.resolution is None

    def age_hours(self, now: datetime) -> float:
        return round((now - as_utc(self.dead_lettered_at)).total_seconds() / 3600, 2)

    def to_json(self, now: datetime) -> dict[str, Any]:
        resolution = self.resolution
        return {
            "dead_letter_id": self.dead_letter_id,
            "source": self.source,
            "resource": self.resource,
            "location": self.location,
            "error": self.error,
            "raw_text": self.raw_text,
            "dead_lettered_at": as_utc(self.dead_lettered_at).isoformat(),
            "age_hours": self.age_hours(now),
            "resolved": resolution is not None,
            "resolved_at": None if resolution is None else as_utc(resolution.resolved_at).isoformat(),
            "how": None if resolution is None else resolution.how,
            "load_id": None if resolution is None else resolution.load_id,
            "run_id": None if resolution is None else resolution.run_id,
        }


def read_dead_letters(
    warehouse: Dialect, conn: Any, sources: Iterable[str], include_resolved: bool = False
) -> dict[str, list[DeadLetter]]:
    """Per source, its dead letters of completed loads (open ones only unless `include_resolved`), oldest
    first; a source never loaded has none. Source names come from the registry, never from a user."""
    cursor = conn.cursor()
    has_resolutions = DEAD_LETTER_RESOLUTIONS.name in warehouse.table_names(cursor, SCHEMA)
    found: dict[str, list[DeadLetter]] = {}
    for source in sources:
        dataset = raw_dataset(source)
        found[source] = []
        if not {DEAD_LETTERS_TABLE, LOADS_TABLE} <= warehouse.table_names(cursor, dataset):
            continue
        completed = f"(select load_id from {dataset}.{LOADS_TABLE} where status = 0)"
        resolutions: dict[str, Resolution] = {}
        if has_resolutions:
            cursor.execute(
                f"select dead_letter_id, resolved_at, how, load_id, run_id from {DEAD_LETTER_RESOLUTIONS.qualified}"
                f" where source = '{source}' and load_id in {completed} order by resolved_at"
            )
            for dead_letter_id, *resolution in cursor.fetchall():
                resolutions[dead_letter_id] = Resolution(*resolution)  # the latest wins
        cursor.execute(
            "select dead_letter_id, source, resource, location, raw_text, error, dead_lettered_at"
            f" from {dataset}.{DEAD_LETTERS_TABLE} where _dlt_load_id in {completed}"
            " order by dead_lettered_at, dead_letter_id"
        )
        for row in cursor.fetchall():
            letter = DeadLetter(*row, resolution=resolutions.get(row[0]))
            if include_resolved or letter.is_open:
                found[source].append(letter)
    return found


def list_dead_letters(settings: Settings, sources: list[str], include_resolved: bool) -> dict[str, list[DeadLetter]]:
    """`elt dead-letters`: per source, its open dead letters (every one with `include_resolved`)."""
    warehouse = dialect(settings)
    with warehouse.connect() as conn:
        return read_dead_letters(warehouse, conn, sources, include_resolved)


def open_counts(warehouse: Dialect, conn: Any, sources: Iterable[str]) -> dict[str, int]:
    """Open (unresolved) dead letters per source: `elt status`'s figure."""
    return {source: len(letters) for source, letters in read_dead_letters(warehouse, conn, sources).items()}


# -- landing again ---------------------------------------------------------------------------------


@dataclass
class Attempt:
    """One dead letter tried again: landed (and how) or still failing (and why)."""

    letter: DeadLetter
    how: str
    reason: str | None = None

    @property
    def landed(self) -> bool:
        return self.reason is None

    def describe(self) -> str:
        where = f"{self.letter.dead_letter_id} ({self.letter.source} {self.letter.resource}, {self.letter.location})"
        if self.landed:
            return f"  lands: {where}, {self.how}"
        return f"  still fails: {where}: {self.reason}"


Batches = dict[tuple[str, str], tuple[ResourceSpec, Batch]]


def try_again(
    warehouse: Dialect, conn: Any, letters: list[DeadLetter], corrections: dict[str, str], now: datetime
) -> tuple[list[Attempt], Batches]:
    """Pass each dead letter's text (its correction, if supplied) through its loader's landing again.

    Returns every attempt and, per (source, resource), the batch holding the rows that landed; nothing is
    written. The rows are delivered now, in the order given (`_delivery_seq` 1, 2, …)."""

    @cache
    def landed_record(source: str, resource: str, column: str, value: str) -> dict[str, Any] | None:
        cursor = conn.cursor()
        cursor.execute(
            f"select _record from {raw_dataset(source)}.{resource} where {column} = {warehouse.placeholder} limit 1",
            (value,),
        )
        row = cursor.fetchone()
        return json.loads(row[0]) if row else None

    batches: Batches = {}
    attempts = []
    for seq, letter in enumerate(letters, start=1):
        how = CORRECTED if letter.dead_letter_id in corrections else RELANDED
        text = corrections.get(letter.dead_letter_id, letter.raw_text)
        resource = spec(letter.source).resource(letter.resource)
        if resource is None:
            attempts.append(Attempt(letter, how, f"no loader lands {letter.source}.{letter.resource}"))
            continue
        if how == RELANDED and ESCAPED_BYTES in letter.error:
            reason = "its raw text is an escaped copy of bytes that are not UTF-8; only a corrected record lands"
            attempts.append(Attempt(letter, how, reason))
            continue
        read = resource.record_from_text(
            text,
            letter.location,
            lambda column, value, letter=letter: landed_record(letter.source, letter.resource, column, value),
        )
        if isinstance(read, str):
            attempts.append(Attempt(letter, how, read))
            continue
        record, extra = read
        key = (letter.source, letter.resource)
        _, batch = batches.setdefault(key, (resource, resource.batch(letter.source, now)))
        if batch.add(record, text, letter.location, now, seq, **extra):
            attempts.append(Attempt(letter, how))
        else:  # the batch made it a dead letter again: keep the reason, write nothing
            attempts.append(Attempt(letter, how, batch.pending_dead_letters[-1]["error"]))
            batch.pending_dead_letters.clear()
    return attempts, batches


def reland(settings: Settings, source: str, batches: list[tuple[ResourceSpec, Batch]]) -> str:
    """Merge the batches' rows into the source's raw tables with the loader's hints; the load id."""
    resources = [
        dlt.resource(list(batch.drain()), name=resource.name, **raw_table_hints(resource.key))
        for resource, batch in batches
    ]
    return land_resources(settings, replay_pipeline_name(source), source, resources)


def record_resolutions(
    settings: Settings, attempts: list[Attempt], load_id: str, run_id: str | None, resolved_at: datetime
) -> None:
    warehouse = dialect(settings)
    with warehouse.connect(read_only=False) as conn:
        cursor = conn.cursor()
        cursor.execute("begin")
        for attempt in attempts:
            letter = attempt.letter
            cursor.execute(
                f"insert into {DEAD_LETTER_RESOLUTIONS.qualified} (dead_letter_id, source, resource, resolved_at,"
                f" how, load_id, run_id) values ({warehouse.placeholders(7)})",
                (letter.dead_letter_id, letter.source, letter.resource, resolved_at, attempt.how, load_id, run_id),
            )
        cursor.execute("commit")


def read_corrections(path: Path | None) -> dict[str, str]:
    """The `--corrected` file: one JSON object {dead_letter_id: corrected raw text} (UsageError otherwise)."""
    if path is None:
        return {}
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise UsageError(f"cannot read {path}: {exc}") from None
    if not isinstance(document, dict) or not all(isinstance(v, str) for v in document.values()):
        raise UsageError(f"{path} must be one JSON object {{dead_letter_id: corrected raw text}}")
    return document


@dataclass
class ReplayPlan:
    attempts: list[Attempt] = field(default_factory=list)
    already: list[DeadLetter] = field(default_factory=list)
    batches: Batches = field(default_factory=dict)

    @property
    def landing(self) -> list[Attempt]:
        return [attempt for attempt in self.attempts if attempt.landed]

    def counts(self) -> str:
        relanded = sum(attempt.how == RELANDED for attempt in self.landing)
        return (
            f"relanded={relanded} corrected={len(self.landing) - relanded}"
            f" still_failing={len(self.attempts) - len(self.landing)} already_resolved={len(self.already)}"
        )

    def describe(self) -> str:
        lines = [attempt.describe() for attempt in self.attempts]
        for letter in self.already:
            resolution = letter.resolution
            assert resolution is not None
            lines.append(
                f"  already resolved: {letter.dead_letter_id} ({letter.source} {letter.resource}, {letter.location}),"
                f" {resolution.how} at {as_utc(resolution.resolved_at):%Y-%m-%dT%H:%M:%SZ}"
            )
        return "\n".join(lines)


def plan_replay(
    settings: Settings, sources: list[str], named: list[str], corrections: dict[str, str], now: datetime
) -> ReplayPlan:
    """What a replay would do (UsageError when a named id is no dead letter of these sources)."""
    warehouse = dialect(settings)
    with warehouse.connect() as conn:
        found = read_dead_letters(warehouse, conn, sources, include_resolved=True)
        by_id = {letter.dead_letter_id: letter for letters in found.values() for letter in letters}
        unknown = [dead_letter_id for dead_letter_id in named if dead_letter_id not in by_id]
        if unknown:
            raise UsageError(f"no dead letter {', '.join(unknown)} in {', '.join(sources)}")
        chosen = [by_id[i] for i in named] if named else [letter for letter in by_id.values() if letter.is_open]
        plan = ReplayPlan(already=[letter for letter in chosen if not letter.is_open])
        todo = [letter for letter in chosen if letter.is_open]
        plan.attempts, plan.batches = try_again(warehouse, conn, todo, corrections, now)
    return plan


def replay(
    settings: Settings, source: str | None, ids: list[str], corrections: dict[str, str], dry_run: bool
) -> Result:
    """Land again the dead letters whose raw text (or corrected text) lands now, mark them resolved, and
    build what they touched. One that still fails stays open, with the reason."""
    sources = [source] if source else list(SOURCE_NAMES)
    named = list(dict.fromkeys([*ids, *corrections]))
    arguments = [*(["--source", source] if source else []), *(f"--id={i}" for i in named)]
    with run_lock(settings) as lock:
        started, now = time.monotonic(), datetime.now(UTC)
        plan = plan_replay(settings, sources, named, corrections, now)
        details = [plan.describe()] if plan.attempts or plan.already else []
        if dry_run:
            lines = [f"elt {REPLAY_COMMAND} --dry-run: would land {plan.counts()}; nothing written", *details]
            return Result(ExitCode.OK, "\n".join(lines))
        with ledgered(settings, REPLAY_COMMAND, arguments, lock) as run:
            ops_tables.ensure(settings, (DEAD_LETTER_RESOLUTIONS,))
            touched, failures = reland_plan(settings, plan, sources, run)
            code = ExitCode.OK
            dbt_part = ""
            if touched:
                dbt = dbt_build(settings, run, ["build", "--select", *(f"source:{source}+" for source in touched)])
                code = outcome_code([], dbt, [])
                dbt_part = f" {dbt.describe()};"
            failed = [a for a in plan.attempts if not a.landed and a.letter.dead_letter_id in named]
            failures += [f"{a.letter.dead_letter_id}: {a.reason}" for a in failed]
            if failures:  # a load that failed, or a dead letter the engineer named that still fails
                code = min(c for c in (code, ExitCode.LOAD_FAILED) if c != ExitCode.OK)
            summary = f"elt {REPLAY_COMMAND}: {plan.counts()};{dbt_part} {time.monotonic() - started:.1f}s"
            run.finish(code, summary, "; ".join(failures) or None)
    return Result(run.exit_code, "\n".join([run.summary, *details]))


def reland_plan(settings: Settings, plan: ReplayPlan, sources: list[str], run: RunEntry) -> tuple[list[str], list[str]]:
    """Land each source's landing rows and record them resolved; the sources touched and what failed."""
    touched: list[str] = []
    failures: list[str] = []
    for source in sources:
        batches = [batches for (name, _), batches in plan.batches.items() if name == source]
        landed = [attempt for attempt in plan.landing if attempt.letter.source == source]
        if not landed:
            continue
        try:
            with writer_lock(settings):
                load_id = reland(settings, source, batches)
                record_resolutions(settings, landed, load_id, run.run_id, datetime.now(UTC))
        except Exception as exc:  # one source's failure must not hide the others' (nothing was marked)
            failures.append(f"{source}: {root_cause(exc)}")
            log_event("dead_letters_reland_failed", source=source, error=failures[-1])
            continue
        log_event("dead_letters_relanded", source=source, count=len(landed), load_ids=[load_id])
        run.sources.append(SourceOutcome(source, len(landed), len(landed), 0, load_ids=(load_id,)))
        touched.append(source)
    return touched, failures
