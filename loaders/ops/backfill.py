"""`elt backfill SOURCE --start T1 --end T2`: land a past window of a source again, in chunks, without moving
its cursor, then build what it touched. The window is `[start, end)`; chunks are recorded in
`ops.elt_backfill_chunks` so `--resume` lands only those not ok (docs/commands.md, "backfill").
"""

from __future__ import annotations

import contextvars
import json
import re
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from queue import Queue

from loaders.core.events import log_event
from loaders.core.outcomes import DbtOutcome, ExitCode, SourceOutcome, UsageError, outcome_code, root_cause
from loaders.core.registry import SOURCE_NAMES, raw_dataset
from loaders.core.settings import Settings
from loaders.core.timestamps import as_utc, iso, parse_timestamp
from loaders.landing.pipelines import (
    cursor_positions,
    finish_backfill_packages,
    import_frame_libraries,
    load_window,
    pipeline,
)
from loaders.ops.runner import Result, dbt_build, ledgered
from loaders.sources import spec
from loaders.warehouse import dialect, ops_tables
from loaders.warehouse.locks import HeldLock, run_lock, writer_lock
from loaders.warehouse.ops_tables import BACKFILL_CHUNKS

# A window cut finer than this is a typo (`--chunk 1m` over a year), not a plan.
MAX_CHUNKS = 1000
CHUNK_UNITS = {"m": timedelta(minutes=1), "h": timedelta(hours=1), "d": timedelta(days=1), "w": timedelta(weeks=1)}
CHUNK_PATTERN = re.compile(r"([1-9][0-9]{0,4})([mhdw])")


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


def parse_instant(option: str, text: str) -> datetime:
    moment = parse_timestamp(text)
    if moment is None:
        raise UsageError(f"{option} {text!r} is not a date or UTC timestamp (e.g. 2024-03-01 or 2024-03-01T06:00:00Z)")
    return moment


def parse_chunk(text: str) -> timedelta:
    """`30m`, `6h`, `1d`, `2w`: a whole number (1-99999) of minutes, hours, days or weeks."""
    match = CHUNK_PATTERN.fullmatch(text.strip().lower())
    if match is None:
        raise UsageError(f"--chunk {text!r} is not a duration such as 30m, 6h, 1d or 1w")
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
    """The window and its chunks, or UsageError: everything checked before a lock is taken."""
    if source not in SOURCE_NAMES:
        raise UsageError(f"unknown source {source!r}; known: {', '.join(SOURCE_NAMES)}")
    window_start, window_end = parse_instant("--start", start), parse_instant("--end", end)
    if window_end <= window_start:
        raise UsageError(f"--end {iso(window_end)} must be after --start {iso(window_start)} (--end is excluded)")
    if parallel < 1:
        raise UsageError(f"--parallel {parallel}: at least 1 chunk at a time")
    step = parse_chunk(chunk) if chunk is not None else None
    if step is not None and (window_end - window_start) / step > MAX_CHUNKS:
        raise UsageError(f"--chunk {chunk} cuts the window into more than {MAX_CHUNKS} chunks; take a larger one")
    return window_start, window_end, split_window(window_start, window_end, step)


def backfill(
    settings: Settings, source: str, start: str, end: str, chunk: str | None, parallel: int, resume: bool
) -> Result:
    """Re-extract a bounded window of a source, merge it into raw without moving the source's cursor, then
    dbt build what it touched. UsageError (exit 2) for bad arguments, checked before any lock."""
    window_start, window_end, chunks = validate(source, start, end, chunk, parallel)
    arguments = [source, "--start", iso(window_start), "--end", iso(window_end)]
    arguments += ["--chunk", chunk] if chunk else []
    arguments += ["--parallel", str(parallel), *(["--resume"] if resume else [])]
    with run_lock(settings) as lock:
        # --resume with nothing to resume is known only under the lock (UsageError)
        plan = make_plan(settings, source, window_start, window_end, chunks, resume)
        return run_backfill(settings, plan, parallel, arguments, lock)


def run_backfill(settings: Settings, plan: Plan, parallel: int, arguments: list[str], lock: HeldLock) -> Result:
    """Land the plan's chunks, record them, build the source's models; under the caller's run lock."""
    started = time.monotonic()
    with ledgered(settings, "backfill", arguments, lock) as run:
        before = cursor_positions(settings, plan.source)
        workers = parallel if dialect(settings).concurrent_writers else 1
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
        dbt = dbt_build(settings, run, build_arguments(plan.source))
        code = outcome_code([source], dbt, [])
        run.finish(code, summary_line(plan, dbt, code, parallel, workers, time.monotonic() - started), source.error)
        log_event("backfill_finished", source=plan.source, exit_code=int(code), failed_chunks=len(failed))
    return Result(run.exit_code, run.summary)


def build_arguments(source: str) -> list[str]:
    # An explicit --select replaces the default selector, which leaves dbt's unit tests out of a plain
    # build (they prove logic, not data, and need the models built empty): leave them out here too.
    return ["build", "--select", f"source:{source}+", "--exclude-resource-type", "unit_test"]


def finish_left_packages(settings: Settings, plan: Plan) -> None:
    """First load what a backfill killed during its load left in its pipelines' folders (see
    `pipelines.finish_backfill_packages`); when that fails, the run lands no chunk and exits 1."""
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
    import_frame_libraries()  # before the threads: see its docstring
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="backfill") as pool:
        # a copy of this thread's context each, so the events of the pool's threads carry the run id too
        futures = [pool.submit(contextvars.copy_context().run, land, chunk) for chunk in plan.chunks]
        return [future.result() for future in futures]


def land_chunk(settings: Settings, source: str, chunk: Chunk, slot: int) -> ChunkOutcome:
    started = time.monotonic()
    log_event("chunk_started", source=source, chunk_start=iso(chunk.start), chunk_end=iso(chunk.end))
    try:
        report = load_window(
            settings, spec(source), chunk.start, chunk.end, slot=slot, load_lock=partial(writer_lock, settings)
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
    try:
        with writer_lock(settings):
            dialect(settings).after_load(raw_dataset(source), pipeline(settings, source).default_schema)
    except Exception as exc:
        log_event("raw_indexes_skipped", source=source, error=root_cause(exc))


def summary_line(plan: Plan, dbt: DbtOutcome, code: int, parallel: int, workers: int, seconds: float) -> str:
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


def make_plan(
    settings: Settings, source: str, start: datetime, end: datetime, chunks: list[Chunk], resume: bool
) -> Plan:
    """A new backfill with its chunks recorded `pending`; or, with `resume`, the latest backfill of this
    source and window, with the chunks that are not ok."""
    warehouse = dialect(settings)
    mark = warehouse.placeholder
    ops_tables.ensure(settings, (BACKFILL_CHUNKS,))
    with warehouse.connect(read_only=False) as conn:
        cursor = conn.cursor()
        if resume:
            cursor.execute(
                f"select backfill_id from {BACKFILL_CHUNKS.qualified} where source = {mark}"
                f" and window_start = {mark} and window_end = {mark}"
                " order by requested_at desc limit 1",
                (source, start, end),
            )
            found = cursor.fetchone()
            if found is None:
                raise UsageError(f"--resume: no backfill of {source} over [{iso(start)}, {iso(end)}) to resume")
            cursor.execute(
                f"select chunk_start, chunk_end, status from {BACKFILL_CHUNKS.qualified} where backfill_id = {mark}"
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
                f"insert into {BACKFILL_CHUNKS.qualified} (backfill_id, source, window_start, window_end,"
                f" requested_at, chunk_start, chunk_end, status) values ({warehouse.placeholders(8)})",
                (backfill_id, source, start, end, requested_at, chunk.start, chunk.end, "pending"),
            )
        cursor.execute("commit")
    return Plan(backfill_id, source, start, end, chunks)


def record_chunk(settings: Settings, backfill_id: str, outcome: ChunkOutcome, run_id: str) -> None:
    warehouse = dialect(settings)
    mark = warehouse.placeholder
    with warehouse.connect(read_only=False) as conn:
        conn.cursor().execute(
            f"update {BACKFILL_CHUNKS.qualified} set status = {mark}, landed = {mark}, dead_lettered = {mark},"
            f" load_ids = {mark}, error = {mark}, run_id = {mark}, finished_at = {mark}"
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
