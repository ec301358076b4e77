"""`elt`: the command a scheduler and an engineer on call use. Thin: parse (Typer), call the harness, map
the outcome to an exit code.

Every command returns its exit code; `main` runs the Typer app without letting it exit, so a usage error is
always 2 (click's) and never an outcome. Heavy imports (dlt, dbt, duckdb) happen inside the commands so
`elt --help` answers at once.
"""

from __future__ import annotations

import enum
import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from loaders import backfill, dead_letters, move, report
from loaders.entities import SOURCE_NAMES
from loaders.harness import USAGE_ERROR
from loaders.settings import DEFAULT_MAX_DEAD_LETTER_RATE, PROJECT_DIR, InvalidSetting, parse_limit, parse_rate

EXIT_CODES = """exit codes (when several apply, the smallest non-zero one):
  0  everything succeeded;
  1  a loader failed (the other loaders and dbt still ran);
  2  the command was called wrong: bad arguments or a bad setting; never a run outcome;
  3  a dbt model failed;
  4  a dbt test failed;
  5  another run holds the warehouse lock;
  6  elt run: a source dead-lettered more than --max-dead-letter-rate of what it extracted (all kept, built);
  7  elt run: the build opened more quarantine rows than --max-new-quarantine (all kept, built);
  8  elt grants: the warehouse refused to create a role or grant a privilege (nothing half-done);
  9  the warehouse cannot be reached (refused, wrong password, no such database): nothing was done;
 10  elt check: a connection failed (each line says which and why);
 11  elt run: the books do not balance — a record or a version is unaccounted for (which book, by how much)"""
# click rewraps help paragraphs; a paragraph after a "\b" line is printed as written
EPILOG = "\b\n" + EXIT_CODES

app = typer.Typer(
    name="elt",
    help="Load the shop's sources with dlt and build the warehouse with dbt.",
    epilog=EPILOG,
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode=None,  # click's plain help, as dbt's: rich is for tables and progress
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 120},
)
simulate_app = typer.Typer(help="Generate or serve the deterministic sample sources.", no_args_is_help=True)
app.add_typer(simulate_app, name="simulate")

# the registry's names are the choices (dbt_project.yml); a StrEnum member is its name as a str
SourceName = enum.StrEnum("SourceName", {name: name for name in SOURCE_NAMES})
Source = Annotated[SourceName, typer.Argument(metavar="SOURCE", show_default=False)]


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


# Commands whose SQL (deletes, updates, PostgreSQL's roles, DuckDB files) is not written for Spark yet:
# refused there with a clear message rather than failing half-way (docs/spark.md).
NOT_ON_SPARK = ("backfill", "replay", "dead-letters", "reset", "grants", "move", "report")


def main(argv: list[str] | None = None) -> int:
    # dlt reads .dlt/config.toml and .dlt/secrets.toml from the project, wherever elt is called from.
    os.environ.setdefault("DLT_PROJECT_DIR", str(PROJECT_DIR))
    os.environ.setdefault("RUNTIME__LOG_LEVEL", "ERROR")
    from loaders.harness import ExitCode
    from loaders.warehouse import RunLocked, WarehouseUnreachable

    command = typer.main.get_command(app)
    args = sys.argv[1:] if argv is None else argv
    # the command's name as the user typed it: `run`, `dead-letters replay`
    name = " ".join(args[:2] if args[:1] in (["dead-letters"], ["simulate"]) and args[1:2] != ["-h"] else args[:1])
    if os.environ.get("ELT_TARGET") == "spark" and name.split(" ")[0] in NOT_ON_SPARK:
        print(f"elt {name}: not available on Spark yet; see docs/spark.md for what runs there", file=sys.stderr)
        return USAGE_ERROR
    try:
        return int(command.main(args=args, prog_name="elt", standalone_mode=False) or 0)
    except typer.BadParameter as exc:  # usage errors (click's UsageError): its message, exit 2
        exc.show()
        return USAGE_ERROR
    except typer.TyperException as exc:  # click's other errors (no such option, missing argument, ...)
        exc.show()
        return int(getattr(exc, "exit_code", USAGE_ERROR))
    except typer.Abort:
        print("elt: interrupted", file=sys.stderr)
        return 130
    except InvalidSetting as exc:
        print(f"elt {name}: {exc}", file=sys.stderr)
        return USAGE_ERROR
    except RunLocked as exc:  # every command that writes takes the run lock first
        print(f"elt {name} FAILED(locked): {exc}")
        return int(ExitCode.LOCKED)
    except WarehouseUnreachable as exc:
        print(f"elt {name} FAILED(warehouse): {exc}", file=sys.stderr)
        return int(ExitCode.WAREHOUSE_UNREACHABLE)


@app.command(epilog=EPILOG)
def run(
    source: Annotated[list[SourceName] | None, typer.Option(help="load only this source (repeatable)")] = None,
    full_refresh: Annotated[
        bool, typer.Option("--full-refresh", help="rebuild dbt's incremental models from raw")
    ] = False,
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
    from loaders.harness import elt_run
    from loaders.settings import Settings

    thresholds: dict[str, float | int | None] = {}  # the command line's win over the environment's
    if max_dead_letter_rate is not None:
        thresholds["max_dead_letter_rate"] = max_dead_letter_rate
    if max_new_quarantine is not None:
        thresholds["max_new_quarantine"] = _limit(max_new_quarantine)
    settings = Settings.from_env().with_thresholds(**thresholds)
    code, line = elt_run(settings, [str(s) for s in source or SOURCE_NAMES], ["--full-refresh"] if full_refresh else [])
    print(line, flush=True)
    return int(code)


@app.command(epilog=EPILOG)
def load(
    sources: Annotated[list[SourceName] | None, typer.Argument(metavar="[SOURCE]...", show_default=False)] = None,
) -> int:
    """Load sources into raw_* only (all of them when none is named)."""
    from loaders.harness import ExitCode, ledgered, load_sources
    from loaders.locking import run_lock
    from loaders.settings import Settings

    settings = Settings.from_env()
    chosen = [str(s) for s in sources or SOURCE_NAMES]
    with run_lock(settings), ledgered(settings, "load", chosen) as entry:
        entry.sources = load_sources(settings, chosen)
        entry.exit_code = ExitCode.LOAD_FAILED if any(o.error for o in entry.sources) else ExitCode.OK
        entry.summary = "elt load: " + "; ".join(outcome.describe() for outcome in entry.sources)
        entry.error = "; ".join(f"{o.source}: {o.error}" for o in entry.sources if o.error) or None
    print(entry.summary)
    return int(entry.exit_code)


@app.command(
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True, "help_option_names": ["--help"]},
    epilog=EPILOG,
)
def build(ctx: typer.Context) -> int:
    """dbt build with the warehouse settings, under the run lock; every argument goes to dbt
    (elt build --select orders+ --full-refresh)."""
    return build_with(list(ctx.args), "build")


def build_with(dbt_args: list[str], command: str) -> int:
    from loaders.harness import ledgered, outcome_code, record_dbt, run_dbt
    from loaders.locking import run_lock
    from loaders.settings import Settings

    settings = Settings.from_env()
    with run_lock(settings), ledgered(settings, command, dbt_args) as entry:
        outcome = run_dbt(settings, ["build", *dbt_args])
        record_dbt(entry, outcome)
        entry.exit_code = outcome_code([], outcome, [])
        entry.summary = f"elt {command}: {outcome.describe()}"
    print(entry.summary)
    return int(entry.exit_code)


@app.command(epilog=EPILOG)
def replay(
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="print per table how many versions would be released or quarantined")
    ] = False,
    verbose: Annotated[bool, typer.Option("--verbose", help="with --dry-run: list their keys")] = False,
) -> int:
    """Judge already-landed versions again after a change of the rules or seeds (dbt build)."""
    from loaders.harness import ExitCode
    from loaders.locking import run_lock
    from loaders.replay import PreviewFailed, preview
    from loaders.settings import Settings

    if not dry_run:
        return build_with([], "replay")
    settings = Settings.from_env()
    try:
        with run_lock(settings):
            changes = preview(settings)
    except PreviewFailed as exc:
        print(f"elt replay FAILED: {exc}")
        return int(ExitCode.BUILD_FAILED)
    print("elt replay --dry-run: versions whose verdict the pending rules and seeds change")
    for change in changes:
        print(change.describe(verbose=verbose))
    return int(ExitCode.OK)


@app.command()
def check() -> int:
    """Test the warehouse's and every source's connection with the current settings; load nothing."""
    from loaders.check import run_checks
    from loaders.harness import ExitCode
    from loaders.settings import Settings

    checks = run_checks(Settings.from_env())
    for result in checks:
        print(result.describe())
    return int(ExitCode.OK if all(result.ok for result in checks) else ExitCode.CHECK_FAILED)


@app.command(epilog=EPILOG)
def reset(
    source: Source,
    yes: Annotated[bool, typer.Option("--yes", help="do it; without it, print what it would drop and stop")] = False,
) -> int:
    """Drop a source's raw tables, cursor state and manifest, load it from the start, rebuild its models."""
    from loaders.harness import ExitCode, ledgered, load_sources, outcome_code, record_dbt, run_dbt
    from loaders.locking import run_lock, writer_lock
    from loaders.reset import drop, plan
    from loaders.settings import Settings

    settings = Settings.from_env()
    with run_lock(settings):
        planned = plan(settings, source)
        print(planned.describe())
        if not yes:
            print("nothing changed: run again with --yes to do it")
            return int(ExitCode.OK)
        with ledgered(settings, "reset", [source]) as entry:
            with writer_lock(settings):
                drop(settings, planned)
            entry.sources = load_sources(settings, [source])
            outcome = run_dbt(settings, ["build", *planned.dbt_selection])
            record_dbt(entry, outcome)
            entry.exit_code = outcome_code(entry.sources, outcome, [])
            loaded = "; ".join(o.describe() for o in entry.sources)
            entry.summary = f"elt reset {source}: {loaded}; {outcome.describe()}"
    print(entry.summary)
    return int(entry.exit_code)


@app.command()
def status(
    json: Annotated[bool, typer.Option("--json", help="one JSON document on stdout, for machines")] = False,
    runs: Annotated[int, typer.Option(help="how many of the last runs to show")] = 10,
) -> int:
    """Last runs, each source's cursor, freshness and pending packages, open quarantine (reads only)."""
    from loaders.settings import Settings
    from loaders.status import collect, render

    found = collect(Settings.from_env(), list(SOURCE_NAMES), limit=runs)
    if json:
        print(found.to_json())
    else:
        render(found)
    return 0


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
    from loaders.grants import GrantsFailed, Roles, apply_grants
    from loaders.harness import ExitCode
    from loaders.locking import run_lock
    from loaders.settings import Settings

    settings = Settings.from_env()
    if settings.target != "postgres":
        print(f"elt grants: {settings.target} has no roles or privileges; nothing to grant")
        return int(ExitCode.OK)
    members = {"loader": loader_user or [], "transformer": transformer_user or [], "reader": reader_user or []}
    try:
        with run_lock(settings):
            report = apply_grants(settings, Roles.from_env(), members)
    except GrantsFailed as exc:
        print(f"elt grants FAILED: {exc}")
        return int(ExitCode.GRANTS_FAILED)
    print(report.describe())
    return int(ExitCode.OK)


Root = Annotated[Path, typer.Option(help="the folder of the sample sources")]
SAMPLE = PROJECT_DIR / "sample"


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
    from loaders.simulate import SimulationConfig
    from loaders.simulate import generate as write_world

    knobs = {name: value for name, value in locals().items() if name not in ("root", "days", "seed")}
    config = SimulationConfig(seed=seed, **{name: value for name, value in knobs.items() if value is not None})
    summary = write_world(root, config, through_day=days)
    print(f"elt simulate: wrote day {days} into {root}: {summary}")
    return 0


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
        print("elt simulate serve: set SOURCES__SHOP_API__TOKEN to the token clients must send", file=sys.stderr)
        return USAGE_ERROR
    serve_forever(root, host, port, token, FaultPlan(sequence=[f for f in faults.split(",") if f]))
    return 0


@app.command(epilog=EPILOG)
def demo(root: Root = SAMPLE, days: int = 3) -> int:
    """Generate sample sources, serve the API, run the ELT on them (what `make run` does)."""
    import secrets

    from loaders.harness import elt_run
    from loaders.settings import Settings
    from loaders.simulate import ApiServer, SimulationConfig
    from loaders.simulate import generate as write_world

    root = root.resolve()
    write_world(root, SimulationConfig(), through_day=days)
    token = secrets.token_urlsafe(16)
    with ApiServer(root, token=token) as api:
        os.environ.update(
            SOURCES__SHOP_API__BASE_URL=api.base_url,
            SOURCES__SHOP_API__TOKEN=token,
            SOURCES__APP_DB__CREDENTIALS=f"sqlite:///{root / 'app.db'}",
            SOURCES__PAYMENTS_FILES__BUCKET_URL=str(root / "payments"),
        )
        settings = Settings.from_env()
        code, line = elt_run(settings, list(SOURCE_NAMES), [])
    print(line, flush=True)
    print(f"tables: {settings.warehouse_location()} — schemas analytics, quarantine, ops, staging, raw_*")
    return int(code)


# commands defined in their own modules (one line each)
app.command(epilog=EPILOG)(backfill.backfill)
app.add_typer(dead_letters.app, name="dead-letters")
app.command()(report.report)
app.command(epilog=EPILOG)(move.move)


if __name__ == "__main__":
    sys.exit(main())
