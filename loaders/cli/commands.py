"""Every `elt` command: its options, then one call of an operation (loaders/ops/), whose result it prints.

The operations are imported inside each command: they bring dlt, dbt's subprocess and the drivers, and
`elt --help` must not wait for them.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from loaders.cli.app import EPILOG, app, complain, dead_letters_app, emit, settings, simulate_app, state_app
from loaders.cli.options import SAMPLE, DryRun, FullRefresh, Json, OnlySource, Root, Source, SourceName, Sources, Yes
from loaders.core.outcomes import USAGE_ERROR, ExitCode
from loaders.core.registry import SOURCE_NAMES
from loaders.core.settings import DEFAULT_MAX_DEAD_LETTER_RATE, InvalidSetting, parse_limit, parse_rate


def _rate(text: str) -> float:
    try:
        return parse_rate(text)
    except InvalidSetting as exc:
        raise typer.BadParameter(str(exc)) from None


def _limit(text: str) -> int | None:
    try:
        return parse_limit(text)
    except InvalidSetting as exc:
        raise typer.BadParameter(str(exc), param_hint="'--max-new-quarantine'") from None


def _names(sources: list[SourceName] | None) -> list[str]:
    return [str(source) for source in sources or SOURCE_NAMES]


@app.command(epilog=EPILOG)
def run(
    source: Annotated[list[SourceName] | None, typer.Option(help="load only this source (repeatable)")] = None,
    full_refresh: FullRefresh = False,
    max_dead_letter_rate: Annotated[
        float | None,
        typer.Option(
            parser=_rate,
            metavar="RATE",
            help="exit 6 when a source dead-letters more than this share (0-1) of what it extracted in the run "
            f"(default ELT_MAX_DEAD_LETTER_RATE or {DEFAULT_MAX_DEAD_LETTER_RATE}); checked after dbt",
        ),
    ] = None,
    max_new_quarantine: Annotated[
        str | None,
        typer.Option(
            metavar="N",
            help="exit 7 when the run opens more than N quarantine rows, or 'none' "
            "(default ELT_MAX_NEW_QUARANTINE or none); checked after dbt",
        ),
    ] = None,
) -> int:
    """Load every source, then dbt build; print a one-line summary."""
    from loaders.ops.run import elt_run

    thresholds: dict[str, float | int | None] = {}  # the command line's win over the environment's
    if max_dead_letter_rate is not None:
        thresholds["max_dead_letter_rate"] = max_dead_letter_rate
    if max_new_quarantine is not None:
        thresholds["max_new_quarantine"] = _limit(max_new_quarantine)
    chosen = settings().with_thresholds(**thresholds)
    return emit(elt_run(chosen, _names(source), ["--full-refresh"] if full_refresh else []))


@app.command(epilog=EPILOG)
def load(sources: Sources = None) -> int:
    """Load sources into raw_* only (all of them when none is named)."""
    from loaders.ops.load import load as load_only

    return emit(load_only(settings(), _names(sources)))


@app.command(
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True, "help_option_names": ["--help"]},
    epilog=EPILOG,
)
def build(ctx: typer.Context) -> int:
    """dbt build with the warehouse settings, under the run lock; every argument goes to dbt
    (elt build --select orders+ --full-refresh)."""
    from loaders.ops.build import build as dbt_build

    return emit(dbt_build(settings(), list(ctx.args)))


@app.command(epilog=EPILOG)
def rejudge(
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="print per table how many versions would be released or quarantined")
    ] = False,
    verbose: Annotated[bool, typer.Option("--verbose", help="with --dry-run: list their keys")] = False,
) -> int:
    """Judge already-landed versions again after a change of the rules or seeds (dbt build)."""
    return judge_again(dry_run, verbose, command="rejudge")


@app.command("replay", epilog=EPILOG)
def replay(
    dry_run: Annotated[bool, typer.Option("--dry-run", help="as `elt rejudge --dry-run`")] = False,
    verbose: Annotated[bool, typer.Option("--verbose", help="as `elt rejudge --verbose`")] = False,
) -> int:
    """Alias of `elt rejudge` (its old name, kept for one release)."""
    return judge_again(dry_run, verbose, command="replay")


def judge_again(dry_run: bool, verbose: bool, command: str) -> int:
    from loaders.ops.rejudge import rejudge

    return emit(rejudge(settings(), dry_run, verbose, command=command))


@app.command()
def check() -> int:
    """Test the warehouse's and every source's connection with the current settings; load nothing."""
    from loaders.ops.check import check as check_connections

    return emit(check_connections(settings()))


@app.command(epilog=EPILOG)
def reset(source: Source, yes: Yes = False) -> int:
    """Drop a source's raw tables, cursor state and manifest, load it from the start, rebuild its models."""
    from loaders.ops.reset import reset as reset_source

    return emit(reset_source(settings(), str(source), yes))


@app.command()
def status(
    as_json: Json = False,
    runs: Annotated[int, typer.Option(help="how many of the last runs to show")] = 10,
    freshness: Annotated[
        bool, typer.Option("--freshness", help="run `dbt source freshness` first and show dbt's verdicts")
    ] = False,
) -> int:
    """Last runs, each source's cursor, freshness and pending packages, open quarantine (reads only)."""
    from loaders.cli.render import render_status
    from loaders.ops.status import check_freshness, collect

    if freshness:
        check_freshness(settings())
    found = collect(settings(), list(SOURCE_NAMES), limit=runs)
    if as_json:
        print(found.to_json())
    else:
        render_status(found)
    return int(ExitCode.OK)


@app.command(
    epilog="\b\nexit codes: 0 the roles and privileges are in place (DuckDB: nothing to do); 8 the warehouse "
    "refused them (the message says why); 5 another run holds the warehouse lock"
)
def grants(
    loader_user: Annotated[
        list[str] | None, typer.Option(metavar="LOGIN", help="grant the loader role to this existing login")
    ] = None,
    transformer_user: Annotated[
        list[str] | None, typer.Option(metavar="LOGIN", help="grant the transformer role to this existing login")
    ] = None,
    reader_user: Annotated[
        list[str] | None, typer.Option(metavar="LOGIN", help="grant the reader role to this existing login")
    ] = None,
) -> int:
    """PostgreSQL: create or bring up to date the roles named by ELT_LOADER_ROLE, ELT_TRANSFORMER_ROLE and
    ELT_READER_ROLE (default elt_loader, elt_transformer, elt_reader) and their privileges; idempotent.
    Run it as a superuser. On DuckDB there are no roles: it says so and exits 0."""
    from loaders.ops.grants import grants as apply

    members = {"loader": loader_user or [], "transformer": transformer_user or [], "reader": reader_user or []}
    return emit(apply(settings(), members))


@app.command(epilog=EPILOG)
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
    from loaders.ops.backfill import backfill as land_window

    return emit(land_window(settings(), source, start, end, chunk, parallel, resume))


Resolved = Annotated[bool, typer.Option("--all", help="include the resolved ones, with when and how")]


@dead_letters_app.callback(invoke_without_command=True)
def dead_letters(
    ctx: typer.Context, source: OnlySource = None, as_json: Json = False, resolved: Resolved = False
) -> None:
    """List the records no loader could land (open ones unless --all); `replay` lands them again."""
    if ctx.invoked_subcommand is not None:
        return
    import json
    from datetime import UTC, datetime

    from loaders.cli.render import render_dead_letters
    from loaders.ops.dead_letters import list_dead_letters

    found = list_dead_letters(settings(), [str(source)] if source else list(SOURCE_NAMES), resolved)
    now = datetime.now(UTC)
    letters = [letter for source_letters in found.values() for letter in source_letters]
    if as_json:
        document = {
            "open": {name: sum(letter.is_open for letter in items) for name, items in found.items()},
            "dead_letters": [letter.to_json(now) for letter in letters],
        }
        print(json.dumps(document, indent=2))
    else:
        render_dead_letters(letters, now, resolved)
    raise typer.Exit(int(ExitCode.OK))


@dead_letters_app.command("replay")
def replay_dead_letters(
    source: OnlySource = None,
    ids: Annotated[
        list[str] | None,
        typer.Option(
            "--id",
            metavar="ID",
            help="replay this dead letter (repeatable); default: every open one",
            show_default=False,
        ),
    ] = None,
    corrected: Annotated[
        Path | None,
        typer.Option(
            "--corrected",
            metavar="FILE",
            help="a JSON file {dead_letter_id: corrected raw text} (the JSON record, or the CSV line for "
            "payments_files); those dead letters land with that text",
            show_default=False,
        ),
    ] = None,
    dry_run: DryRun = False,
) -> None:
    """Land again the dead letters whose raw text (or corrected text) lands now, mark them resolved, and
    build what they touched. One that still fails stays open, with the reason."""
    from loaders.ops.dead_letters import read_corrections, replay

    corrections = read_corrections(corrected)
    raise typer.Exit(emit(replay(settings(), str(source) if source else None, ids or [], corrections, dry_run)))


Resource = Annotated[str | None, typer.Argument(metavar="[RESOURCE]", help="one resource (default: all of them)")]


@state_app.command("get")
def state_get(source: Source, resource: Resource = None) -> int:
    """Print the source's state as the warehouse last committed it: each resource's cursor or manifest."""
    from loaders.ops.state import get

    return emit(get(settings(), str(source), resource))


@state_app.command("set")
def state_set(
    source: Source,
    resource: Resource = None,
    cursor: Annotated[
        str, typer.Option("--cursor", metavar="T", help="the cursor's new position: a date or a UTC timestamp")
    ] = "",
    yes: Yes = False,
) -> int:
    """Pin the resources' cursor (the next run reads from there); ledgered, under the run lock."""
    from loaders.ops.state import change

    if not cursor:
        raise typer.BadParameter("give the cursor's new position", param_hint="'--cursor'")
    return emit(change(settings(), str(source), resource, cursor, yes, "state set"))


@state_app.command("clear")
def state_clear(source: Source, resource: Resource = None, yes: Yes = False) -> int:
    """Forget what the resources have taken (cursor, file manifest) so the next run reads them from the start;
    raw is kept. Ledgered, under the run lock."""
    from loaders.ops.state import change

    return emit(change(settings(), str(source), resource, None, yes, "state clear"))


@app.command()
def report(
    output: Annotated[
        Path, typer.Option(help="where to write the page; a relative path is relative to the current directory")
    ] = Path("target/elt_report.html"),
    runs: Annotated[int, typer.Option(min=1, help="how many of the last runs to chart")] = 50,
) -> int:
    """Write one static HTML page: runs over time, open quarantine by table and reason, freshness per source."""
    from loaders.ops.report import report as write_report

    return emit(write_report(settings(), output, runs))


@app.command(epilog=EPILOG)
def move(
    from_duckdb: Annotated[
        Path, typer.Option("--from-duckdb", help="the DuckDB file the deployment ran on (only read)", exists=True)
    ],
    yes: Yes = False,
) -> int:
    """Carry a DuckDB deployment's landed history (raw data, dead letters, cursors, manifest) into the
    PostgreSQL the settings point at, then rebuild every model there."""
    from loaders.ops.move import move as move_in

    return emit(move_in(settings(), from_duckdb, yes))


@simulate_app.command()
def generate(
    root: Root = SAMPLE,
    days: Annotated[int, typer.Option(help="simulate through this day (1-based)")] = 3,
    seed: int = 7,
    orders_per_day: int | None = None,
    customers: int | None = None,
    update_rate: float | None = None,
    late_version_rate: float | None = None,
    invalid_rate: float | None = None,
    damaged_rate: float | None = None,
    late_dimension_rate: float | None = None,
    redelivery_rate: float | None = None,
    late_file_rate: float | None = None,
) -> int:
    """Write the world as of day N into a folder."""
    knobs = {
        "orders_per_day": orders_per_day,
        "customers": customers,
        "update_rate": update_rate,
        "late_version_rate": late_version_rate,
        "invalid_rate": invalid_rate,
        "damaged_rate": damaged_rate,
        "late_dimension_rate": late_dimension_rate,
        "redelivery_rate": redelivery_rate,
        "late_file_rate": late_file_rate,
    }
    from loaders.simulate import SimulationConfig
    from loaders.simulate import generate as write_world

    config = SimulationConfig(seed=seed, **{name: value for name, value in knobs.items() if value is not None})
    summary = write_world(root, config, through_day=days)
    print(f"elt simulate: wrote day {days} into {root}: {summary}")
    return int(ExitCode.OK)


@simulate_app.command()
def serve(
    root: Root = SAMPLE,
    host: str = "127.0.0.1",
    port: int = 8765,
    faults: Annotated[str, typer.Option(help="comma-separated faults for successive requests, e.g. 429,503")] = "",
) -> int:
    """Serve the orders API of a generated folder (clients must send SOURCES__SHOP_API__TOKEN)."""
    from loaders.simulate import FaultPlan, serve_forever

    token = os.environ.get("SOURCES__SHOP_API__TOKEN")
    if not token:
        complain("elt simulate serve: set SOURCES__SHOP_API__TOKEN to the token clients must send")
        return USAGE_ERROR
    serve_forever(root, host, port, token, FaultPlan(sequence=[f for f in faults.split(",") if f]))
    return int(ExitCode.OK)


@app.command(epilog=EPILOG)
def demo(
    root: Root = SAMPLE,
    days: Annotated[int, typer.Option(help="generate the sample world through this day")] = 3,
    next_day: Annotated[
        bool,
        typer.Option("--next-day", help="the day after the one the last demo generated: what a daily schedule sees"),
    ] = False,
) -> int:
    """Generate sample sources, serve their API, run the ELT on them (what `make run` does); with --next-day,
    the world one day on, as a daily scheduled `elt run` meets it."""
    import secrets

    from loaders.ops.run import elt_run
    from loaders.simulate import ApiServer, SimulationConfig, generated_day
    from loaders.simulate import generate as write_world
    from loaders.warehouse import dialect

    root = root.resolve()
    day = (generated_day(root) or days - 1) + 1 if next_day else days
    write_world(root, SimulationConfig(), through_day=day)
    token = secrets.token_urlsafe(16)
    with ApiServer(root, token=token) as api:
        os.environ.update(
            SOURCES__SHOP_API__BASE_URL=api.base_url,
            SOURCES__SHOP_API__TOKEN=token,
            SOURCES__APP_DB__CREDENTIALS=f"sqlite:///{root / 'app.db'}",
            SOURCES__PAYMENTS_FILES__BUCKET_URL=str(root / "payments"),
        )
        chosen = settings()
        code = emit(elt_run(chosen, list(SOURCE_NAMES), []))
    print(f"tables: {dialect(chosen).location()} — schemas analytics, quarantine, ops, staging, raw_*")
    print(f"sample world: day {day} in {root}; the next day's run: elt demo --next-day")
    return code
