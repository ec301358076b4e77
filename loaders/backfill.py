"""`elt backfill SOURCE --start T1 --end T2 [--chunk 1d] [--parallel N] [--resume]`: land a past window again.

A source's own cursor re-reads only a short lag behind where it stands (6 h for the API, 1 h for the app
database; the payments manifest re-reads a file only when its size or modification time changed). A
version that arrives later than that — or a file corrected in place with the same size and mtime — is
never seen by a scheduled run. A backfill re-extracts the window and merges it into the source's raw
dataset:

- **The window** is `[start, end)`: `--start` included, `--end` excluded. Both are texts of the project's
  timestamp grammar (`loaders/timestamps.py`); a date alone is 00:00 UTC of that day, so
  `--start 2024-03-01 --end 2024-03-04` is three whole UTC days. A version belongs to it by its version
  column (`updated_at`), parsed as the loaders parse it.
- **What is read**: the API and the app database through dlt's incremental with `initial_value` and
  `end_value` (dlt then keeps no state for it); every file of the payments folder, keeping the rows
  whose `updated_at` falls in the window, with the manifest neither read nor changed. Each chunk lands
  through a backfill pipeline of its own (`elt_<source>_backfill_<slot>`), never the source's, so the
  source's cursor and manifest do not move. Raw merges on (key, version): a second identical backfill
  lands the same rows onto themselves and changes no canonical table.
- **Chunks**: `--chunk 1d` (`30m`, `6h`, `2d`, `1w`) splits the window; the last chunk ends at `--end`.
  Each chunk is recorded in `ops.elt_backfill_chunks` (pending, then ok or failed, with its load ids
  and error). A chunk that fails does not stop the others; the run exits 1, and `--resume` (same
  SOURCE, `--start`, `--end`) lands again only the chunks of the latest such backfill that are not ok —
  failed, or left pending by a killed run. `--resume` reuses the recorded chunks, whatever `--chunk` says.
- **`--parallel N`**: on PostgreSQL up to N chunks extract at once (threads, one dlt pipeline each); each
  chunk's load into the warehouse still holds the writer lock, so merges into one raw table never
  interleave. DuckDB admits one writing process and the chunks share it: they run one after another
  (the summary says so).
- **A backfill killed while loading** left a package in its pipeline's folder; the next backfill of the
  source loads it first (rows it had merged are hidden from staging until it completes), then its chunks.
- **Then** one `dbt build --select source:<source>+`: the incremental models find the new load ids
  themselves (consumed state, see the README), so only what the window touched is judged again.

All of it holds the run lock and leaves one row in the run ledger (`command = 'backfill'`). Exit codes:
0 ok, 1 a chunk failed, 2 bad arguments (checked before any lock), 3/4 a dbt model/test failed, 5 locked,
9 the warehouse cannot be reached.
"""

from __future__ import annotations

import contextvars
import json
import re
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from queue import Queue
from typing import TYPE_CHECKING, Annotated, Any

import typer

from loaders.entities import SOURCE_NAMES
from loaders.timestamps import parse_timestamp

if TYPE_CHECKING:
    from loaders.harness import DbtOutcome
    from loaders.settings import Settings

CHUNKS_TABLE = "ops.elt_backfill_chunks"
CHUNKS_DDL = f"""create table if not exists {CHUNKS_TABLE} (
    backfill_id varchar not null,
    source varchar not null,
    window_start timestamp with time zone not null,
    window_end timestamp with time zone not null,
    requested_at timestamp with time zone not null,
    chunk_start timestamp with time zone not null,
    chunk_end timestamp with time zone not null,
    status varchar not null,
    landed integer,
    dead_lettered integer,
    load_ids varchar,
    error varchar,
    run_id varchar,
    finished_at timestamp with time zone,
    primary key (backfill_id, chunk_start)
)"""
# A window cut finer than this is a typo (`--chunk 1m` over a year), not a plan.
MAX_CHUNKS = 1000
CHUNK_UNITS = {"m": timedelta(minutes=1), "h": timedelta(hours=1), "d": timedelta(days=1), "w": timedelta(weeks=1)}
CHUNK_PATTERN = re.compile(r"([1-9][0-9]{0,4})([mhdw])")


class BadArguments(ValueError):
    """The command was called wrong (exit 2); the message says how."""


@dataclass(frozen=True)
class Chunk:
    start: datetime
    end: datetime

    def describe(self) -> str:
        return f"[{iso(self.start)}, {iso(self.end)})"


@dataclass
class ChunkOutcome:
    chunk: Chunk
    landed: int = 0
    dead_lettered: int = 0
    load_ids: tuple[str, ...] = ()
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    def describe(self) -> str:
        if self.error:
            return f"{iso(self.chunk.start)} FAILED ({self.error})"
        return f"{iso(self.chunk.start)} ok landed={self.landed} dead_lettered={self.dead_lettered}"


@dataclass
class Plan:
    """What one invocation lands: a new backfill's chunks, or the chunks `--resume` takes up again."""

    backfill_id: str
    source: str
    start: datetime
    end: datetime
    chunks: list[Chunk]
    resumed: bool = False
    skipped: int = 0  # --resume: chunks of the backfill already ok
    outcomes: list[ChunkOutcome] = field(default_factory=list)
    left_packages: tuple[str, ...] = ()  # load ids of the packages a killed backfill left, finished first
    left_packages_error: str | None = None


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_instant(option: str, text: str) -> datetime:
    moment = parse_timestamp(text)
    if moment is None:
        raise BadArguments(
            f"{option} {text!r} is not a date or UTC timestamp (e.g. 2024-03-01 or 2024-03-01T06:00:00Z)"
        )
    return moment


def parse_chunk(text: str) -> timedelta:
    """`30m`, `6h`, `1d`, `2w`: a whole number (1-99999) of minutes, hours, days or weeks."""
    match = CHUNK_PATTERN.fullmatch(text.strip().lower())
    if match is None:
        raise BadArguments(f"--chunk {text!r} is not a duration such as 30m, 6h, 1d or 1w")
    return int(match.group(1)) * CHUNK_UNITS[match.group(2)]


def split_window(start: datetime, end: datetime, step: timedelta | None) -> list[Chunk]:
    """The window in consecutive chunks of `step` (the last one ends at `end`); one chunk without a step."""
    if step is None:
        return [Chunk(start, end)]
    chunks = []
    at = start
    while at < end:
        chunks.append(Chunk(at, min(at + step, end)))
        at += step
    return chunks


def validate(
    source: str, start: str, end: str, chunk: str | None, parallel: int
) -> tuple[datetime, datetime, list[Chunk]]:
    """The window and its chunks, or BadArguments: everything checked before a lock is taken."""
    if source not in SOURCE_NAMES:
        raise BadArguments(f"unknown source {source!r}; known: {', '.join(SOURCE_NAMES)}")
    window_start, window_end = parse_instant("--start", start), parse_instant("--end", end)
    if window_end <= window_start:
        raise BadArguments(f"--end {iso(window_end)} must be after --start {iso(window_start)} (--end is excluded)")
    if parallel < 1:
        raise BadArguments(f"--parallel {parallel}: at least 1 chunk at a time")
    step = parse_chunk(chunk) if chunk is not None else None
    if step is not None and (window_end - window_start) / step > MAX_CHUNKS:
        raise BadArguments(f"--chunk {chunk} cuts the window into more than {MAX_CHUNKS} chunks; take a larger one")
    return window_start, window_end, split_window(window_start, window_end, step)


def backfill(
    source: Annotated[
        str,
        typer.Argument(metavar="SOURCE", help=f"the source to re-extract: one of {', '.join(SOURCE_NAMES)}"),
    ],
    start: Annotated[
        str,
        typer.Option("--start", metavar="T1", help="window start, included: a date (00:00 UTC) or a UTC timestamp"),
    ],
    end: Annotated[
        str,
        typer.Option(
            "--end",
            metavar="T2",
            help="window end, EXCLUDED: a date (00:00 UTC) or a UTC timestamp; "
            "--start 2024-03-01 --end 2024-03-04 is three whole days",
        ),
    ],
    chunk: Annotated[
        str | None,
        typer.Option(
            "--chunk",
            metavar="DURATION",
            help="split the window into chunks of 30m, 6h, 1d, 1w...; each lands on its own",
            show_default=False,
        ),
    ] = None,
    parallel: Annotated[
        int,
        typer.Option(
            "--parallel",
            metavar="N",
            help="chunks extracted at once (PostgreSQL; each load still waits for the writer lock); "
            "DuckDB runs them one after another",
        ),
    ] = 1,
    resume: Annotated[
        bool,
        typer.Option(
            "--resume",
            help="land again only the chunks of the latest backfill of this source and window that are not ok "
            "(its recorded chunks; --chunk is not used)",
        ),
    ] = False,
) -> int:
    """Re-extract a bounded window of a source, merge it into raw without moving the source's cursor, then
    dbt build what it touched. Exit 0 ok, 1 a chunk failed (re-run it with --resume), 2 bad arguments,
    3/4 a dbt model/test failed, 5 another run holds the warehouse, 9 the warehouse cannot be reached."""
    from loaders.harness import USAGE_ERROR
    from loaders.locking import run_lock
    from loaders.settings import Settings

    try:
        window_start, window_end, chunks = validate(source, start, end, chunk, parallel)
    except BadArguments as exc:
        print(f"elt backfill: {exc}", file=sys.stderr)
        return USAGE_ERROR
    settings = Settings.from_env()
    arguments = [source, "--start", iso(window_start), "--end", iso(window_end)]
    arguments += ["--chunk", chunk] if chunk else []
    arguments += ["--parallel", str(parallel), *(["--resume"] if resume else [])]
    with run_lock(settings):
        try:
            plan = make_plan(settings, source, window_start, window_end, chunks, resume)
        except BadArguments as exc:  # --resume with nothing to resume: known only under the lock
            print(f"elt backfill: {exc}", file=sys.stderr)
            return USAGE_ERROR
        code, line = run_backfill(settings, plan, parallel, arguments)
    print(line, flush=True)
    return int(code)


def run_backfill(settings: Settings, plan: Plan, parallel: int, arguments: list[str]) -> tuple[int, str]:
    """Land the plan's chunks, record them, build the source's models; under the caller's run lock."""
    from loaders.harness import SourceOutcome, ledgered, log_event, outcome_code, record_dbt, run_dbt
    from loaders.pipelines import cursor_positions

    started = time.monotonic()
    with ledgered(settings, "backfill", arguments) as run:
        before = cursor_positions(settings, plan.source)
        workers = parallel if settings.target == "postgres" else 1
        finish_left_packages(settings, plan)
        if plan.left_packages_error is None:
            plan.outcomes = land_chunks(settings, plan, run.run_id, workers)
        else:  # landing a chunk would empty the folder that holds the package: keep it for the next attempt
            plan.outcomes = [ChunkOutcome(chunk, error="not landed: see the packages left") for chunk in plan.chunks]
            for outcome in plan.outcomes:
                record_chunk(settings, plan.backfill_id, outcome, run.run_id)
        failed = [outcome for outcome in plan.outcomes if not outcome.ok]
        if plan.left_packages or any(outcome.landed or outcome.dead_lettered for outcome in plan.outcomes):
            ensure_indexes(settings, plan.source)
        errors = [f"chunk {o.chunk.describe()}: {o.error}" for o in failed]
        if plan.left_packages_error:
            errors.insert(0, f"packages a killed backfill left: {plan.left_packages_error}")
        source = SourceOutcome(
            plan.source,
            extracted=sum(o.landed + o.dead_lettered for o in plan.outcomes),
            landed=sum(o.landed for o in plan.outcomes),
            dead_lettered=sum(o.dead_lettered for o in plan.outcomes),
            load_ids=plan.left_packages + tuple(load_id for o in plan.outcomes for load_id in o.load_ids),
            resumed_packages=len(plan.left_packages),
            error="; ".join(errors) or None,
            cursor_before=before,
            cursor_after=cursor_positions(settings, plan.source),
        )
        run.sources = [source]
        dbt = run_dbt(settings, build_arguments(plan.source))
        record_dbt(run, dbt)
        code = outcome_code([source], dbt, [])
        line = summary_line(plan, dbt, code, parallel, workers, time.monotonic() - started)
        run.exit_code, run.summary, run.error = code, line, source.error
        log_event("backfill_finished", source=plan.source, exit_code=int(code), failed_chunks=len(failed))
    return code, line


def build_arguments(source: str) -> list[str]:
    # An explicit --select replaces the default selector, which leaves dbt's unit tests out of a plain
    # build (they prove logic, not data, and need the models built empty): leave them out here too.
    return ["build", "--select", f"source:{source}+", "--exclude-resource-type", "unit_test"]


def finish_left_packages(settings: Settings, plan: Plan) -> None:
    """First load what a backfill killed during its load left in its pipelines' folders (see
    `pipelines.finish_backfill_packages`); when that fails, the run lands no chunk and exits 1."""
    from loaders.harness import log_event, root_cause
    from loaders.locking import writer_lock
    from loaders.pipelines import finish_backfill_packages

    try:
        plan.left_packages = finish_backfill_packages(settings, plan.source, load_lock=partial(writer_lock, settings))
    except Exception as exc:
        plan.left_packages_error = root_cause(exc)
        log_event("backfill_packages_failed", source=plan.source, error=plan.left_packages_error)
        return
    if plan.left_packages:
        log_event("backfill_packages_finished", source=plan.source, load_ids=list(plan.left_packages))


def land_chunks(settings: Settings, plan: Plan, run_id: str, workers: int) -> list[ChunkOutcome]:
    """Every chunk of the plan, `workers` at a time, each recorded as it ends; in the plan's order."""
    slots: Queue[int] = Queue()
    for slot in range(workers):
        slots.put(slot)

    def land(chunk: Chunk) -> ChunkOutcome:
        slot = slots.get()
        try:
            outcome = land_chunk(settings, plan.source, chunk, slot)
        finally:
            slots.put(slot)
        record_chunk(settings, plan.backfill_id, outcome, run_id)
        return outcome

    if workers == 1:
        return [land(chunk) for chunk in plan.chunks]
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="backfill") as pool:
        # a copy of this thread's context each, so the events of the pool's threads carry the run id too
        futures = [pool.submit(contextvars.copy_context().run, land, chunk) for chunk in plan.chunks]
        return [future.result() for future in futures]


def land_chunk(settings: Settings, source: str, chunk: Chunk, slot: int) -> ChunkOutcome:
    from loaders.harness import log_event, root_cause
    from loaders.locking import writer_lock
    from loaders.pipelines import load_window

    started = time.monotonic()
    log_event("chunk_started", source=source, chunk_start=iso(chunk.start), chunk_end=iso(chunk.end))
    try:
        report = load_window(
            settings, source, chunk.start, chunk.end, slot=slot, load_lock=partial(writer_lock, settings)
        )
    except Exception as exc:  # one chunk's failure must not stop the others
        outcome = ChunkOutcome(chunk, error=root_cause(exc))
        log_event("chunk_failed", source=source, chunk_start=iso(chunk.start), error=outcome.error)
        return outcome
    outcome = ChunkOutcome(chunk, report.landed, report.dead_lettered, tuple(report.load_ids))
    log_event(
        "chunk_finished",
        source=source,
        chunk_start=iso(chunk.start),
        chunk_end=iso(chunk.end),
        landed=outcome.landed,
        dead_lettered=outcome.dead_lettered,
        load_ids=list(outcome.load_ids),
        seconds=round(time.monotonic() - started, 2),
    )
    return outcome


def ensure_indexes(settings: Settings, source: str) -> None:
    """The raw tables' indexes and statistics, refreshed after the chunks changed them, as after a
    scheduled load. They serve the models' look-ups and are not what a backfill promises: when they
    cannot be refreshed (no scheduled load ever ran on this machine, so no local schema names the
    tables), the event says why and the next scheduled load refreshes them."""
    from loaders.harness import log_event, root_cause
    from loaders.indexes import ensure_raw_indexes
    from loaders.locking import writer_lock

    try:
        with writer_lock(settings):
            ensure_raw_indexes(settings, source)
    except Exception as exc:
        log_event("raw_indexes_skipped", source=source, error=root_cause(exc))


def summary_line(plan: Plan, dbt: DbtOutcome, code: int, parallel: int, workers: int, seconds: float) -> str:
    from loaders.harness import ExitCode

    status = "ok" if code == ExitCode.OK else f"FAILED({ExitCode(code).name.lower()})"
    ok = sum(1 for outcome in plan.outcomes if outcome.ok)
    parts = [f"elt backfill {plan.source} [{iso(plan.start)}, {iso(plan.end)}) {status}:"]
    resumed = f" resumed, {plan.skipped} already ok" if plan.resumed else ""
    parts.append(f"chunks {len(plan.outcomes)} ok={ok} failed={len(plan.outcomes) - ok}{resumed}")
    if parallel > 1 and workers == 1:
        parts[-1] += f" (one after another: DuckDB admits one writer, --parallel {parallel} not used)"
    elif workers > 1:
        parts[-1] += f" (up to {workers} at once)"
    parts[-1] += ";"
    if plan.outcomes:
        parts.append("; ".join(outcome.describe() for outcome in plan.outcomes) + ";")
    if plan.left_packages or plan.left_packages_error:
        finished = f"FAILED ({plan.left_packages_error})" if plan.left_packages_error else len(plan.left_packages)
        parts.append(f"packages a killed backfill left: finished={finished};")
    parts.append(f"landed={sum(o.landed for o in plan.outcomes)};")
    parts.append(dbt.describe() + ";")
    if not all(outcome.ok for outcome in plan.outcomes):
        parts.append(f"re-run the failed chunks with: elt backfill {plan.source} --start {iso(plan.start)}")
        parts[-1] += f" --end {iso(plan.end)} --resume;"
    parts.append(f"{seconds:.1f}s")
    return " ".join(parts)


# -- chunk bookkeeping (ops.elt_backfill_chunks) -------------------------------------------------------


def ensure_chunks_table(settings: Settings) -> None:
    """Create the table when missing; checked first, since with split roles the loader may write it
    (`elt grants`) but not create anything in `ops`."""
    from loaders.warehouse import connect

    with connect(settings, read_only=False) as conn:
        cursor = conn.cursor()
        cursor.execute(
            "select count(*) from information_schema.tables"
            " where table_schema = 'ops' and table_name = 'elt_backfill_chunks'"
        )
        if cursor.fetchone()[0] == 1:
            return
        cursor.execute("create schema if not exists ops")
        cursor.execute(CHUNKS_DDL)


def make_plan(
    settings: Settings, source: str, start: datetime, end: datetime, chunks: list[Chunk], resume: bool
) -> Plan:
    """A new backfill with its chunks recorded `pending`; or, with `resume`, the latest backfill of this
    source and window, with the chunks that are not ok."""
    from loaders.ledger import marks
    from loaders.warehouse import connect

    ensure_chunks_table(settings)
    with connect(settings, read_only=False) as conn:
        cursor = conn.cursor()
        if resume:
            cursor.execute(
                f"select backfill_id from {CHUNKS_TABLE} where source = {marks(settings, 1)}"
                f" and window_start = {marks(settings, 1)} and window_end = {marks(settings, 1)}"
                " order by requested_at desc limit 1",
                (source, start, end),
            )
            found = cursor.fetchone()
            if found is None:
                raise BadArguments(f"--resume: no backfill of {source} over [{iso(start)}, {iso(end)}) to resume")
            cursor.execute(
                f"select chunk_start, chunk_end, status from {CHUNKS_TABLE} where backfill_id = {marks(settings, 1)}"
                " order by chunk_start",
                (found[0],),
            )
            rows = cursor.fetchall()
            todo = [Chunk(as_utc(row[0]), as_utc(row[1])) for row in rows if row[2] != "ok"]
            return Plan(found[0], source, start, end, todo, resumed=True, skipped=len(rows) - len(todo))
        backfill_id = uuid.uuid4().hex
        requested_at = datetime.now(UTC)
        cursor.execute("begin")
        for chunk in chunks:
            cursor.execute(
                f"insert into {CHUNKS_TABLE} (backfill_id, source, window_start, window_end, requested_at,"
                f" chunk_start, chunk_end, status) values ({marks(settings, 8)})",
                (backfill_id, source, start, end, requested_at, chunk.start, chunk.end, "pending"),
            )
        cursor.execute("commit")
    return Plan(backfill_id, source, start, end, chunks)


def record_chunk(settings: Settings, backfill_id: str, outcome: ChunkOutcome, run_id: str) -> None:
    from loaders.ledger import marks
    from loaders.warehouse import connect

    mark = marks(settings, 1)
    with connect(settings, read_only=False) as conn:
        conn.cursor().execute(
            f"update {CHUNKS_TABLE} set status = {mark}, landed = {mark}, dead_lettered = {mark}, load_ids = {mark},"
            f" error = {mark}, run_id = {mark}, finished_at = {mark}"
            f" where backfill_id = {mark} and chunk_start = {mark}",
            (
                "ok" if outcome.ok else "failed",
                outcome.landed,
                outcome.dead_lettered,
                json.dumps(list(outcome.load_ids)),
                outcome.error,
                run_id,
                datetime.now(UTC),
                backfill_id,
                outcome.chunk.start,
            ),
        )


def as_utc(value: Any) -> datetime:
    """A timestamptz as the drivers return it (DuckDB: in the session's zone, UTC here) as aware UTC."""
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
