"""`elt dead-letters`: the records no loader could land, as work an engineer can finish.

`elt dead-letters` lists them (source, resource, location, error, age, id; `--json` for machines);
`elt dead-letters replay` lands again those whose raw text lands now — after a loader fix, or with a
corrected raw text the engineer supplies — and marks them resolved. Nothing is ever deleted: the dead
letter stays in `raw_<source>.dead_letters` (and `ops.dead_letters`); its resolution is a row of the
harness-owned `ops.dead_letter_resolutions` (when, how — `relanded` or `corrected` —, the dlt load that
landed it and the ledger's run id), which neither dbt nor `elt reset` ever drops.

A replayed record goes through the loaders' own landing path: the source's record model and
`landing.Batch.add`, so its raw row is one the loader could have landed (`_version`, `_version_at`,
`_cursor_at`, `_delivered_at` = the replay's time, `_record`, …), merged into `raw_<source>.<resource>`
with the same hints. It is loaded by a pipeline of its own (`elt_<source>_dead_letters`) into the same
dataset, so the source's cursor and file manifest never move; its folder is removed before each replay,
as it carries nothing from one replay to the next. The rows are landed first and the resolutions recorded
after: a replay killed in between lands the same rows again next time (the merge absorbs them) and only
then records them.

A resolution counts while the load that landed the record is in the source's raw dataset: after
`elt reset SOURCE` drops that dataset the corrected row is gone, so the dead letter (dead-lettered again
by the reload) is open again, and its old resolution stays as history.
"""

from __future__ import annotations

import functools
import io
import json as jsonlib
import shutil
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from loaders.entities import SOURCE_NAMES
from loaders.settings import Settings

if TYPE_CHECKING:
    from loaders.sources.landing import Batch

RESOLUTIONS_SCHEMA = "ops"
RESOLUTIONS_TABLE_NAME = "dead_letter_resolutions"
RESOLUTIONS_TABLE = f"{RESOLUTIONS_SCHEMA}.{RESOLUTIONS_TABLE_NAME}"
RESOLUTIONS_DDL = (
    f"create schema if not exists {RESOLUTIONS_SCHEMA}",
    f"""create table if not exists {RESOLUTIONS_TABLE} (
        dead_letter_id varchar not null,
        source varchar not null,
        resource varchar not null,
        resolved_at timestamp with time zone not null,
        how varchar not null,
        load_id varchar not null,
        run_id varchar,
        primary key (dead_letter_id, load_id)
    )""",
)
REPLAY_COMMAND = "dead-letters replay"
RELANDED, CORRECTED = "relanded", "corrected"
# The loaders store bytes that were not UTF-8 escaped (`\xff`): that text is not what arrived, and
# landing it would land something the source never sent. Only a corrected record can resolve it.
ESCAPED_BYTES = "invalid UTF-8 at byte"


def replay_pipeline_name(source: str) -> str:
    from loaders.pipelines import pipeline_name

    return f"{pipeline_name(source)}_dead_letters"


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


def as_utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def present_tables(conn: Any, schemas: Iterable[str]) -> set[tuple[str, str]]:
    names = ", ".join(f"'{schema}'" for schema in schemas)
    cursor = conn.cursor()
    cursor.execute(f"select table_schema, table_name from information_schema.tables where table_schema in ({names})")
    return {(str(schema), str(table)) for schema, table in cursor.fetchall()}


def read_dead_letters(conn: Any, sources: Iterable[str], include_resolved: bool = False) -> dict[str, list[DeadLetter]]:
    """Per source, its dead letters of completed loads (open ones only unless `include_resolved`), oldest
    first; a source never loaded has none. Source names come from the registry, never from a user."""
    sources = list(sources)
    datasets = {source: f"raw_{source}" for source in sources}
    present = present_tables(conn, [RESOLUTIONS_SCHEMA, *datasets.values()])
    cursor = conn.cursor()
    found: dict[str, list[DeadLetter]] = {}
    for source, dataset in datasets.items():
        found[source] = []
        if not {(dataset, "dead_letters"), (dataset, "_dlt_loads")} <= present:
            continue
        completed = f"(select load_id from {dataset}._dlt_loads where status = 0)"
        resolutions: dict[str, Resolution] = {}
        if (RESOLUTIONS_SCHEMA, RESOLUTIONS_TABLE_NAME) in present:
            cursor.execute(
                f"select dead_letter_id, resolved_at, how, load_id, run_id from {RESOLUTIONS_TABLE}"
                f" where source = '{source}' and load_id in {completed} order by resolved_at"
            )
            for dead_letter_id, *resolution in cursor.fetchall():
                resolutions[dead_letter_id] = Resolution(*resolution)  # the latest wins
        cursor.execute(
            "select dead_letter_id, source, resource, location, raw_text, error, dead_lettered_at"
            f" from {dataset}.dead_letters where _dlt_load_id in {completed}"
            " order by dead_lettered_at, dead_letter_id"
        )
        for row in cursor.fetchall():
            letter = DeadLetter(*row, resolution=resolutions.get(row[0]))
            if include_resolved or letter.is_open:
                found[source].append(letter)
    return found


def open_counts(conn: Any, sources: Iterable[str]) -> dict[str, int]:
    """Open (unresolved) dead letters per source: `elt status`'s figure."""
    return {source: len(letters) for source, letters in read_dead_letters(conn, sources).items()}


# -- landing again ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Landing:
    """How the source's loader lands one resource (see loaders/sources/<source>): model, key, options."""

    source: str
    resource: str
    model: Any
    key: str
    text_format: str  # "json" (the API's and the database's records) or "csv" (a settlement file's line)
    cursor_tolerance_seconds: float | None = None  # sources read through `version_cursor`
    file_column: str | None = None  # settlement files: the file name column (`_source_file`)

    def batch(self, now: datetime) -> Batch:
        import pyarrow as pa

        from loaders.sources.landing import Batch

        horizon = None
        if self.cursor_tolerance_seconds is not None:
            horizon = now + timedelta(seconds=self.cursor_tolerance_seconds)
        extra = {self.file_column: pa.string()} if self.file_column else {}
        identity = "location" if self.file_column else "raw_text"
        return Batch(
            self.source,
            self.resource,
            self.model,
            key=self.key,
            extra_columns=extra,
            dead_letter_identity=identity,
            cursor_horizon=horizon,
        )


def landings() -> dict[tuple[str, str], Landing]:
    """Every (source, resource) a dead letter can come from, as its loader lands it."""
    from loaders.records import Order, Payment
    from loaders.sources import app_db, payments_files, shop_api
    from loaders.sources.app_db.settings import FUTURE_VERSION_TOLERANCE_SECONDS as APP_DB_TOLERANCE
    from loaders.sources.shop_api.settings import FUTURE_VERSION_TOLERANCE_SECONDS as SHOP_API_TOLERANCE

    found = [Landing(shop_api.SOURCE, "orders", Order, "id", "json", SHOP_API_TOLERANCE)]
    for table, (model, key) in app_db.TABLES.items():
        found.append(Landing(app_db.SOURCE, table, model, key, "json", APP_DB_TOLERANCE))
    found.append(Landing(payments_files.SOURCE, "payments", Payment, "payment_id", "csv", file_column="_source_file"))
    return {(landing.source, landing.resource): landing for landing in found}


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


def source_file(location: str) -> str:
    """The settlement file of a location `payments_YYYYMMDD_NN.csv line N`."""
    return location.rsplit(" line ", 1)[0]


def parse_csv_record(text: str, header: list[str]) -> dict[str, str] | str:
    """The fields of one CSV record under the file's header, or why it is not one (as the loader reads it)."""
    from loaders.sources.payments_files.helpers import read_csv_records

    lines = io.StringIO(",".join(header) + "\n" + text).readlines()
    records = list(read_csv_records(line.encode("utf-8", "surrogatepass") for line in lines))
    if len(records) != 1:
        return f"the text holds {len(records)} CSV records, not one"
    record = records[0]
    return record.fields if record.fields is not None else (record.error or "unreadable")


def file_header(conn: Any, mark: str, landing: Landing, name: str) -> list[str]:
    """The header of a settlement file, from a row the loader landed from it (`_record` keeps the
    header's order); the contract's header when none of its rows landed."""
    from loaders.records import PAYMENT_CSV_HEADER

    cursor = conn.cursor()
    cursor.execute(
        f"select _record from raw_{landing.source}.{landing.resource} where {landing.file_column} = {mark} limit 1",
        (name,),
    )
    row = cursor.fetchone()
    return list(jsonlib.loads(row[0])) if row else list(PAYMENT_CSV_HEADER)


def try_again(
    conn: Any, mark: str, letters: list[DeadLetter], corrections: dict[str, str], now: datetime
) -> tuple[list[Attempt], dict[tuple[str, str], tuple[Landing, Batch]]]:
    """Pass each dead letter's text (its correction, if supplied) through its loader's landing again.

    Returns every attempt and, per (source, resource), the batch holding the rows that landed; nothing is
    written. The rows are delivered now, in the order given (`_delivery_seq` 1, 2, …)."""
    table = landings()
    batches: dict[tuple[str, str], tuple[Landing, Batch]] = {}
    headers: dict[str, list[str]] = {}
    attempts = []
    for seq, letter in enumerate(letters, start=1):
        how = CORRECTED if letter.dead_letter_id in corrections else RELANDED
        text = corrections.get(letter.dead_letter_id, letter.raw_text)
        landing = table.get((letter.source, letter.resource))
        if landing is None:
            attempts.append(Attempt(letter, how, f"no loader lands {letter.source}.{letter.resource}"))
            continue
        if how == RELANDED and ESCAPED_BYTES in letter.error:
            reason = "its raw text is an escaped copy of bytes that are not UTF-8; only a corrected record lands"
            attempts.append(Attempt(letter, how, reason))
            continue
        extra: dict[str, str] = {}
        if landing.text_format == "csv":
            name = source_file(letter.location)
            if name not in headers:
                headers[name] = file_header(conn, mark, landing, name)
            record: Any = parse_csv_record(text, headers[name])
            if isinstance(record, str):
                attempts.append(Attempt(letter, how, record))
                continue
            if landing.file_column:
                extra[landing.file_column] = name
        else:
            try:
                record = jsonlib.loads(text)
            except ValueError as exc:
                attempts.append(Attempt(letter, how, f"not JSON: {getattr(exc, 'msg', exc)}"))
                continue
        _, batch = batches.setdefault((landing.source, landing.resource), (landing, landing.batch(now)))
        if batch.add(record, text, letter.location, now, seq, **extra):
            attempts.append(Attempt(letter, how))
        else:  # the batch made it a dead letter again: keep the reason, write nothing
            attempts.append(Attempt(letter, how, batch.pending_dead_letters[-1]["error"]))
            batch.pending_dead_letters.clear()
    return attempts, batches


def reland(settings: Settings, source: str, batches: list[tuple[Landing, Batch]]) -> str:
    """Merge the batches' rows into the source's raw tables with the loader's hints; the load id."""
    import dlt

    from loaders.pipelines import destination, loader_file_format, raw_dataset
    from loaders.sources.landing import raw_table_hints

    name = replay_pipeline_name(source)
    shutil.rmtree(settings.pipelines_dir() / name, ignore_errors=True)  # carries nothing between replays
    settings.pipelines_dir().mkdir(parents=True, exist_ok=True)
    pipe = dlt.pipeline(
        pipeline_name=name,
        destination=destination(settings),
        dataset_name=raw_dataset(source),
        pipelines_dir=str(settings.pipelines_dir()),
    )
    resources = [
        dlt.resource(list(batch.drain()), name=landing.resource, **raw_table_hints(landing.key))
        for landing, batch in batches
    ]
    info = pipe.run(resources, loader_file_format=loader_file_format(settings))
    return info.loads_ids[-1]


def ensure_resolutions(settings: Settings) -> None:
    """Create the resolutions table when it is missing; checked first, as the ledger's (split roles)."""
    from loaders.warehouse import connect

    with connect(settings, read_only=False) as conn:
        if (RESOLUTIONS_SCHEMA, RESOLUTIONS_TABLE_NAME) in present_tables(conn, [RESOLUTIONS_SCHEMA]):
            return
        cursor = conn.cursor()
        for statement in RESOLUTIONS_DDL:
            cursor.execute(statement)


def record_resolutions(
    settings: Settings, attempts: list[Attempt], load_id: str, run_id: str | None, resolved_at: datetime
) -> None:
    from loaders.ledger import marks
    from loaders.warehouse import connect

    with connect(settings, read_only=False) as conn:
        cursor = conn.cursor()
        cursor.execute("begin")
        for attempt in attempts:
            letter = attempt.letter
            cursor.execute(
                f"insert into {RESOLUTIONS_TABLE} (dead_letter_id, source, resource, resolved_at, how, load_id,"
                f" run_id) values ({marks(settings, 7)})",
                (letter.dead_letter_id, letter.source, letter.resource, resolved_at, attempt.how, load_id, run_id),
            )
        cursor.execute("commit")


# -- the commands ----------------------------------------------------------------------------------


def registered_source(name: str) -> str:
    if name not in SOURCE_NAMES:
        raise typer.BadParameter(f"{name!r} is not a registered source: {', '.join(SOURCE_NAMES)}")
    return name


SourceOption = Annotated[
    str | None,
    typer.Option(
        "--source",
        parser=registered_source,
        metavar="SOURCE",
        help=f"only this source: {', '.join(SOURCE_NAMES)}",
        show_default=False,
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="one JSON document on stdout, for machines")]
AllOption = Annotated[bool, typer.Option("--all", help="include the resolved ones, with when and how")]
IdOption = Annotated[
    list[str] | None,
    typer.Option(
        "--id", metavar="ID", help="replay this dead letter (repeatable); default: every open one", show_default=False
    ),
]
CorrectedOption = Annotated[
    Path | None,
    typer.Option(
        "--corrected",
        metavar="FILE",
        help="a JSON file {dead_letter_id: corrected raw text} (the JSON record, or the CSV line for "
        "payments_files); those dead letters land with that text",
        show_default=False,
    ),
]
DryRunOption = Annotated[
    bool, typer.Option("--dry-run", help="say what would land and what still fails; write nothing")
]


def chosen_sources(source: str | None, command: str) -> list[str] | None:
    if source is None:
        return list(SOURCE_NAMES)
    if source in SOURCE_NAMES:
        return [source]
    print(f"elt {command}: unknown source {source!r}; known: {', '.join(SOURCE_NAMES)}", file=sys.stderr)
    return None


def dead_letters(source: SourceOption = None, as_json: JsonOption = False, include_resolved: AllOption = False) -> int:
    """List the records no loader could land: source, resource, location, error, age and id (open ones
    unless --all)."""
    from loaders.harness import USAGE_ERROR, ExitCode
    from loaders.warehouse import RunLocked, WarehouseUnreachable, connect

    sources = chosen_sources(source, "dead-letters")
    if sources is None:
        return USAGE_ERROR
    settings = Settings.from_env()
    try:
        with connect(settings) as conn:
            found = read_dead_letters(conn, sources, include_resolved)
    except RunLocked as exc:
        print(f"elt dead-letters FAILED(locked): {exc}", file=sys.stderr)
        return int(ExitCode.LOCKED)
    except WarehouseUnreachable as exc:
        print(f"elt dead-letters FAILED(warehouse): {exc}", file=sys.stderr)
        return int(ExitCode.WAREHOUSE_UNREACHABLE)
    now = datetime.now(UTC)
    letters = [letter for source_letters in found.values() for letter in source_letters]
    if as_json:
        document = {
            "open": {name: sum(letter.is_open for letter in items) for name, items in found.items()},
            "dead_letters": [letter.to_json(now) for letter in letters],
        }
        print(jsonlib.dumps(document, indent=2))
    else:
        render(letters, now, include_resolved)
    return int(ExitCode.OK)


def describe_age(hours: float) -> str:
    if hours < 1:
        return f"{max(hours * 60, 0):.0f}m"
    return f"{hours:.1f}h" if hours < 48 else f"{hours / 24:.1f}d"


def render(letters: list[DeadLetter], now: datetime, include_resolved: bool) -> None:
    from rich.console import Console
    from rich.table import Table

    # a pipe or a file gets whole lines (ids and locations unbroken, for grep); a terminal its own width
    console = Console(width=None if sys.stdout.isatty() else 250)
    kind = "dead letters" if include_resolved else "open dead letters"
    if not letters:
        console.print(f"no {kind}")
        return
    table = Table(title=f"{kind} ({len(letters)})")
    for column in ("source", "resource", "location", "error", "age", "dead_letter_id"):
        table.add_column(column, no_wrap=column in ("location", "dead_letter_id"))
    if include_resolved:
        table.add_column("resolved")
    for letter in letters:
        row = [
            letter.source,
            letter.resource,
            letter.location,
            letter.error,
            describe_age(letter.age_hours(now)),
            letter.dead_letter_id,
        ]
        if include_resolved:
            resolution = letter.resolution
            row.append(
                "open" if resolution is None else f"{resolution.how} {as_utc(resolution.resolved_at):%Y-%m-%d %H:%M}"
            )
        table.add_row(*row)
    console.print(table)


def read_corrections(path: Path | None) -> dict[str, str]:
    if path is None:
        return {}
    try:
        document = jsonlib.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ValueError(f"cannot read {path}: {exc}") from None
    if not isinstance(document, dict) or not all(isinstance(v, str) for v in document.values()):
        raise ValueError(f"{path} must be one JSON object {{dead_letter_id: corrected raw text}}")
    return document


def replay(
    source: SourceOption = None,
    ids: IdOption = None,
    corrected: CorrectedOption = None,
    dry_run: DryRunOption = False,
) -> int:
    """Land again the dead letters whose raw text (or corrected text) lands now, mark them resolved, and
    build what they touched. One that still fails stays open, with the reason."""
    from loaders.harness import USAGE_ERROR, ExitCode
    from loaders.locking import run_lock
    from loaders.warehouse import WarehouseUnreachable

    sources = chosen_sources(source, REPLAY_COMMAND)
    if sources is None:
        return USAGE_ERROR
    try:
        corrections = read_corrections(corrected)
    except ValueError as exc:
        print(f"elt {REPLAY_COMMAND}: {exc}", file=sys.stderr)
        return USAGE_ERROR
    named = list(dict.fromkeys([*(ids or []), *corrections]))
    arguments = [*(["--source", source] if source else []), *(f"--id={i}" for i in named)]
    settings = Settings.from_env()
    try:
        with run_lock(settings):
            return replay_holding_lock(settings, sources, named, corrections, dry_run, arguments)
    except WarehouseUnreachable as exc:
        print(f"elt {REPLAY_COMMAND} FAILED(warehouse): {exc}", file=sys.stderr)
        return int(ExitCode.WAREHOUSE_UNREACHABLE)


@dataclass
class ReplayPlan:
    attempts: list[Attempt] = field(default_factory=list)
    already: list[DeadLetter] = field(default_factory=list)
    batches: dict[tuple[str, str], tuple[Landing, Batch]] = field(default_factory=dict)

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
) -> ReplayPlan | list[str]:
    """What a replay would do; or the named ids that are no dead letter of these sources."""
    from loaders.ledger import marks
    from loaders.warehouse import connect

    with connect(settings) as conn:
        found = read_dead_letters(conn, sources, include_resolved=True)
        by_id = {letter.dead_letter_id: letter for letters in found.values() for letter in letters}
        unknown = [dead_letter_id for dead_letter_id in named if dead_letter_id not in by_id]
        if unknown:
            return unknown
        chosen = [by_id[i] for i in named] if named else [letter for letter in by_id.values() if letter.is_open]
        plan = ReplayPlan(already=[letter for letter in chosen if not letter.is_open])
        todo = [letter for letter in chosen if letter.is_open]
        plan.attempts, plan.batches = try_again(conn, marks(settings, 1), todo, corrections, now)
    return plan


def replay_holding_lock(
    settings: Settings,
    sources: list[str],
    named: list[str],
    corrections: dict[str, str],
    dry_run: bool,
    arguments: list[str],
) -> int:
    from loaders.harness import (
        USAGE_ERROR,
        ExitCode,
        SourceOutcome,
        ledgered,
        log_event,
        outcome_code,
        record_dbt,
        root_cause,
    )
    from loaders.harness import run_dbt as build
    from loaders.locking import writer_lock

    started, now = time.monotonic(), datetime.now(UTC)
    plan = plan_replay(settings, sources, named, corrections, now)
    if isinstance(plan, list):
        print(f"elt {REPLAY_COMMAND}: no dead letter {', '.join(plan)} in {', '.join(sources)}", file=sys.stderr)
        return USAGE_ERROR
    if dry_run:
        print(f"elt {REPLAY_COMMAND} --dry-run: would land {plan.counts()}; nothing written")
        if plan.attempts or plan.already:
            print(plan.describe())
        return int(ExitCode.OK)
    with ledgered(settings, REPLAY_COMMAND, arguments) as run:
        ensure_resolutions(settings)
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
        code = ExitCode.OK
        dbt_part = ""
        if touched:
            dbt = build(settings, ["build", "--select", *(f"source:{source}+" for source in touched)])
            record_dbt(run, dbt)
            code = outcome_code([], dbt, [])
            dbt_part = f" {dbt.describe()};"
        failed = [a for a in plan.attempts if not a.landed and a.letter.dead_letter_id in named]
        failures += [f"{a.letter.dead_letter_id}: {a.reason}" for a in failed]
        if failures:  # a load that failed, or a dead letter the engineer named that still fails
            code = min(c for c in (code, ExitCode.LOAD_FAILED) if c != ExitCode.OK)
            run.error = "; ".join(failures)
        run.exit_code = code
        run.summary = f"elt {REPLAY_COMMAND}: {plan.counts()};{dbt_part} {time.monotonic() - started:.1f}s"
    print(run.summary)
    if plan.attempts or plan.already:
        print(plan.describe())
    return int(run.exit_code)


def exiting(command: Any) -> Any:
    """The command as Typer runs it: its int becomes the process's exit code."""

    @functools.wraps(command)
    def run(*args: Any, **kwargs: Any) -> None:
        raise typer.Exit(int(command(*args, **kwargs) or 0))

    return run


app = typer.Typer(
    help="The records no loader could land: list them (the default), replay them.",
    invoke_without_command=True,
    no_args_is_help=False,
    add_completion=False,
)


@app.callback(invoke_without_command=True)
def list_unless_replaying(
    ctx: typer.Context,
    source: SourceOption = None,
    as_json: JsonOption = False,
    include_resolved: AllOption = False,
) -> None:
    """List the records no loader could land (open ones unless --all); `replay` lands them again."""
    if ctx.invoked_subcommand is None:
        raise typer.Exit(dead_letters(source, as_json, include_resolved))


app.command("replay")(exiting(replay))
