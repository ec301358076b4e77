"""`elt`: the command a scheduler calls. Thin: parse, call the harness, map the outcome to an exit code.

Heavy imports (dlt, dbt, duckdb) happen inside the commands so `elt --help` answers at once.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from loaders.entities import SOURCE_NAMES
from loaders.settings import DEFAULT_MAX_DEAD_LETTER_RATE, PROJECT_DIR, parse_limit, parse_rate

UNSET = object()  # --max-new-quarantine not given (None is its "no limit")
EXIT_CODES = """exit codes (when several apply, the smallest non-zero one):
  0  everything succeeded;
  1  a loader failed (the other loaders and dbt still ran);
  2  the command was called wrong: bad arguments (argparse) or a bad threshold setting; never a run outcome;
  3  a dbt model failed;
  4  a dbt test failed;
  5  another run holds the warehouse lock;
  6  elt run: a source dead-lettered more than --max-dead-letter-rate of what it extracted (all kept, built);
  7  elt run: the build opened more quarantine rows than --max-new-quarantine (all kept, built);
  8  elt grants: the warehouse refused to create a role or grant a privilege (nothing half-done);
  9  the warehouse cannot be reached (refused, wrong password, no such database): nothing was done;
 10  elt check: a connection failed (each line says which and why)"""


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["build"] and argv[1:2] not in (["-h"], ["--help"]):
        # every argument after `build` is dbt's, options included (`--select orders+ --full-refresh`),
        # which argparse cannot take as a remainder
        args = argparse.Namespace(command="build", dbt_args=argv[1:], handler=cmd_build)
    else:
        args = parser.parse_args(argv)
    # dlt reads .dlt/config.toml and .dlt/secrets.toml from the project, wherever elt is called from.
    os.environ.setdefault("DLT_PROJECT_DIR", str(PROJECT_DIR))
    os.environ.setdefault("RUNTIME__LOG_LEVEL", "ERROR")
    from loaders.warehouse import WarehouseUnreachable

    try:
        return int(args.handler(args) or 0)
    except WarehouseUnreachable as exc:
        from loaders.harness import ExitCode

        print(f"elt {args.command} FAILED(warehouse): {exc}", file=sys.stderr)
        return int(ExitCode.WAREHOUSE_UNREACHABLE)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="elt",
        description="Load the shop's sources with dlt and build the warehouse with dbt.",
        epilog=EXIT_CODES,
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = commands.add_parser(
        "run",
        help="load every source, then dbt build; print a one-line summary",
        epilog=EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    run.add_argument("--source", action="append", choices=SOURCE_NAMES, help="load only this source (repeatable)")
    run.add_argument("--full-refresh", action="store_true", help="rebuild dbt's incremental models from raw")
    run.add_argument(
        "--max-dead-letter-rate",
        type=parse_rate,
        metavar="RATE",
        help="exit 6 when a source dead-letters more than this share (0-1) of what it extracted in the run "
        f"(default ELT_MAX_DEAD_LETTER_RATE or {DEFAULT_MAX_DEAD_LETTER_RATE}); checked after dbt",
    )
    run.add_argument(
        "--max-new-quarantine",
        type=parse_limit,
        metavar="N",
        default=UNSET,
        help="exit 7 when the run opens more than N quarantine rows, or 'none' "
        "(default ELT_MAX_NEW_QUARANTINE or none); checked after dbt",
    )
    run.set_defaults(handler=cmd_run)

    load = commands.add_parser("load", help="load sources into raw_* only", epilog=EXIT_CODES)
    load.add_argument("sources", nargs="*", default=[], metavar="SOURCE", help=f"any of {', '.join(SOURCE_NAMES)}")
    load.set_defaults(handler=cmd_load)

    build = commands.add_parser(
        "build", help="run dbt build (extra arguments go to dbt, e.g. --select orders+ --full-refresh)"
    )
    build.add_argument("dbt_args", nargs=argparse.REMAINDER, help="arguments passed to dbt build")
    build.set_defaults(handler=cmd_build)

    replay = commands.add_parser(
        "replay",
        help="judge already-landed versions again after a change of the rules or seeds (dbt build)",
        epilog=EXIT_CODES,
    )
    replay.add_argument(
        "--dry-run", action="store_true", help="print per table how many versions would be released or quarantined"
    )
    replay.add_argument("--verbose", action="store_true", help="with --dry-run: list their keys")
    replay.set_defaults(handler=cmd_replay)

    check = commands.add_parser(
        "check", help="test the warehouse's and every source's connection with the current settings; load nothing"
    )
    check.set_defaults(handler=cmd_check)

    reset = commands.add_parser(
        "reset",
        help="drop a source's raw tables, cursor state and manifest, load it from the start, rebuild its models",
        epilog=EXIT_CODES,
    )
    reset.add_argument("source", choices=SOURCE_NAMES)
    reset.add_argument("--yes", action="store_true", help="do it; without it, print what it would drop and stop")
    reset.set_defaults(handler=cmd_reset)

    status = commands.add_parser(
        "status",
        help="last runs, each source's cursor, freshness and pending packages, open quarantine (reads only)",
    )
    status.add_argument("--json", action="store_true", help="one JSON document on stdout, for machines")
    status.add_argument("--runs", type=int, default=10, help="how many of the last runs to show (default 10)")
    status.set_defaults(handler=cmd_status)

    grants = commands.add_parser(
        "grants",
        help="PostgreSQL: create or update the loader, transformer and reader roles and their privileges",
        description="Create (NOLOGIN) or bring up to date the roles named by ELT_LOADER_ROLE, ELT_TRANSFORMER_ROLE "
        "and ELT_READER_ROLE (default elt_loader, elt_transformer, elt_reader) and their privileges; idempotent. "
        "Run it as a superuser. On DuckDB there are no roles: it says so and exits 0.",
        epilog="exit codes: 0 the roles and privileges are in place (DuckDB: nothing to do); 2 they could not "
        "be applied (the message says why); 5 another run holds the warehouse lock",
    )
    for kind in ("loader", "transformer", "reader"):
        grants.add_argument(
            f"--{kind}-user",
            action="append",
            default=[],
            metavar="LOGIN",
            help=f"grant the {kind} role to this existing login (repeatable)"
            + ("; its sessions in this database act as the role" if kind != "reader" else ""),
        )
    grants.set_defaults(handler=cmd_grants)

    simulate = commands.add_parser("simulate", help="generate or serve the deterministic sample sources")
    sim_commands = simulate.add_subparsers(dest="sim_command", required=True, metavar="SIM_COMMAND")
    generate = sim_commands.add_parser("generate", help="write the world as of day N into a folder")
    generate.add_argument("--root", type=Path, default=PROJECT_DIR / "sample", help="where the sources go")
    generate.add_argument("--days", type=int, default=3, help="simulate through this day (1-based)")
    generate.add_argument("--seed", type=int, default=7)
    generate.add_argument("--orders-per-day", type=int)
    generate.add_argument("--customers", type=int)
    generate.add_argument("--update-rate", type=float)
    generate.add_argument("--late-version-rate", type=float)
    generate.add_argument("--invalid-rate", type=float)
    generate.add_argument("--damaged-rate", type=float)
    generate.add_argument("--late-dimension-rate", type=float)
    generate.add_argument("--redelivery-rate", type=float)
    generate.add_argument("--late-file-rate", type=float)
    generate.set_defaults(handler=cmd_simulate_generate)
    serve = sim_commands.add_parser("serve", help="serve the orders API of a generated folder")
    serve.add_argument("--root", type=Path, default=PROJECT_DIR / "sample")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8765)
    serve.add_argument("--faults", default="", help="comma-separated faults for successive requests, e.g. 429,503")
    serve.set_defaults(handler=cmd_simulate_serve)

    demo = commands.add_parser(
        "demo", help="generate sample sources, serve the API, run the ELT on them (what `make run` does)"
    )
    demo.add_argument("--root", type=Path, default=PROJECT_DIR / "sample")
    demo.add_argument("--days", type=int, default=3)
    demo.set_defaults(handler=cmd_demo)
    return parser


def cmd_run(args: argparse.Namespace) -> int:
    from loaders.harness import USAGE_ERROR, elt_run
    from loaders.settings import InvalidSetting, Settings

    thresholds: dict[str, float | int | None] = {}  # the command line's win over the environment's
    if args.max_dead_letter_rate is not None:
        thresholds["max_dead_letter_rate"] = args.max_dead_letter_rate
    if args.max_new_quarantine is not UNSET:
        thresholds["max_new_quarantine"] = args.max_new_quarantine
    try:
        settings = Settings.from_env().with_thresholds(**thresholds)
    except InvalidSetting as exc:
        print(f"elt run: {exc}", file=sys.stderr)
        return USAGE_ERROR
    code, line = elt_run(settings, list(args.source or SOURCE_NAMES), ["--full-refresh"] if args.full_refresh else [])
    print(line, flush=True)
    return int(code)


def cmd_load(args: argparse.Namespace) -> int:
    from loaders.harness import ExitCode, ledgered, load_sources
    from loaders.locking import RunLocked, run_lock
    from loaders.settings import Settings

    unknown = sorted(set(args.sources) - set(SOURCE_NAMES))
    if unknown:
        print(f"elt load: unknown source(s) {', '.join(unknown)}; known: {', '.join(SOURCE_NAMES)}")
        return 2
    settings = Settings.from_env()
    sources = list(args.sources or SOURCE_NAMES)
    try:
        with run_lock(settings), ledgered(settings, "load", sources) as run:
            run.sources = load_sources(settings, sources)
            run.exit_code = ExitCode.LOAD_FAILED if any(o.error for o in run.sources) else ExitCode.OK
            run.summary = "elt load: " + "; ".join(outcome.describe() for outcome in run.sources)
            run.error = "; ".join(f"{o.source}: {o.error}" for o in run.sources if o.error) or None
    except RunLocked as exc:
        print(f"elt load FAILED(locked): {exc}")
        return int(ExitCode.LOCKED)
    print(run.summary)
    return int(run.exit_code)


def cmd_build(args: argparse.Namespace) -> int:
    from loaders.harness import ExitCode, ledgered, outcome_code, record_dbt, run_dbt
    from loaders.locking import RunLocked, run_lock
    from loaders.settings import Settings

    settings = Settings.from_env()
    try:
        with run_lock(settings), ledgered(settings, "build", list(args.dbt_args)) as run:
            outcome = run_dbt(settings, ["build", *args.dbt_args])
            record_dbt(run, outcome)
            run.exit_code = outcome_code([], outcome, [])
            run.summary = f"elt build: {outcome.describe()}"
    except RunLocked as exc:
        print(f"elt build FAILED(locked): {exc}")
        return int(ExitCode.LOCKED)
    print(run.summary)
    return int(run.exit_code)


def cmd_check(args: argparse.Namespace) -> int:
    from loaders.check import run_checks
    from loaders.harness import ExitCode
    from loaders.settings import Settings

    checks = run_checks(Settings.from_env())
    for check in checks:
        print(check.describe())
    return int(ExitCode.OK if all(check.ok for check in checks) else ExitCode.CHECK_FAILED)


def cmd_reset(args: argparse.Namespace) -> int:
    from loaders.harness import ExitCode, ledgered, load_sources, outcome_code, record_dbt, run_dbt
    from loaders.locking import RunLocked, run_lock, writer_lock
    from loaders.reset import drop, plan
    from loaders.settings import Settings

    settings = Settings.from_env()
    try:
        with run_lock(settings):
            reset = plan(settings, args.source)
            print(reset.describe())
            if not args.yes:
                print("nothing changed: run again with --yes to do it")
                return int(ExitCode.OK)
            with ledgered(settings, "reset", [args.source]) as run:
                with writer_lock(settings):
                    drop(settings, reset)
                run.sources = load_sources(settings, [args.source])
                outcome = run_dbt(settings, ["build", *reset.dbt_selection])
                record_dbt(run, outcome)
                run.exit_code = outcome_code(run.sources, outcome, [])
                loaded = "; ".join(o.describe() for o in run.sources)
                run.summary = f"elt reset {args.source}: {loaded}; {outcome.describe()}"
    except RunLocked as exc:
        print(f"elt reset FAILED(locked): {exc}")
        return int(ExitCode.LOCKED)
    print(run.summary)
    return int(run.exit_code)


def cmd_status(args: argparse.Namespace) -> int:
    from loaders.settings import Settings
    from loaders.status import collect, render

    status = collect(Settings.from_env(), list(SOURCE_NAMES), limit=args.runs)
    if args.json:
        print(status.to_json())
    else:
        render(status)
    return 0


def cmd_replay(args: argparse.Namespace) -> int:
    from loaders.harness import ExitCode
    from loaders.locking import RunLocked, run_lock
    from loaders.replay import PreviewFailed, preview
    from loaders.settings import Settings

    if not args.dry_run:
        return cmd_build(argparse.Namespace(dbt_args=[]))
    settings = Settings.from_env()
    try:
        with run_lock(settings):
            changes = preview(settings)
    except RunLocked as exc:
        print(f"elt replay FAILED(locked): {exc}")
        return int(ExitCode.LOCKED)
    except PreviewFailed as exc:
        print(f"elt replay FAILED: {exc}")
        return int(ExitCode.BUILD_FAILED)
    print("elt replay --dry-run: versions whose verdict the pending rules and seeds change")
    for change in changes:
        print(change.describe(verbose=args.verbose))
    return int(ExitCode.OK)


def cmd_grants(args: argparse.Namespace) -> int:
    from loaders.grants import GrantsFailed, Roles, apply_grants
    from loaders.harness import ExitCode
    from loaders.locking import RunLocked, run_lock
    from loaders.settings import Settings

    settings = Settings.from_env()
    if settings.target != "postgres":
        print(f"elt grants: {settings.target} has no roles or privileges; nothing to grant")
        return int(ExitCode.OK)
    members = {"loader": args.loader_user, "transformer": args.transformer_user, "reader": args.reader_user}
    try:
        with run_lock(settings):
            report = apply_grants(settings, Roles.from_env(), members)
    except RunLocked as exc:
        print(f"elt grants FAILED(locked): {exc}")
        return int(ExitCode.LOCKED)
    except GrantsFailed as exc:
        print(f"elt grants FAILED: {exc}")
        return int(ExitCode.GRANTS_FAILED)
    print(report.describe())
    return int(ExitCode.OK)


def simulation_config(args: argparse.Namespace):
    from loaders.simulate import SimulationConfig

    knobs = {
        name: getattr(args, name)
        for name in (
            "orders_per_day",
            "customers",
            "update_rate",
            "late_version_rate",
            "invalid_rate",
            "damaged_rate",
            "late_dimension_rate",
            "redelivery_rate",
            "late_file_rate",
        )
        if getattr(args, name, None) is not None
    }
    return SimulationConfig(seed=args.seed, **knobs)


def cmd_simulate_generate(args: argparse.Namespace) -> int:
    from loaders.simulate import generate

    summary = generate(args.root, simulation_config(args), through_day=args.days)
    print(f"elt simulate: wrote day {args.days} into {args.root}: {summary}")
    return 0


def cmd_simulate_serve(args: argparse.Namespace) -> int:
    from loaders.simulate import FaultPlan, serve_forever

    token = os.environ.get("SOURCES__SHOP_API__TOKEN")
    if not token:
        print("elt simulate serve: set SOURCES__SHOP_API__TOKEN to the token clients must send", file=sys.stderr)
        return 2
    faults = FaultPlan(sequence=[f for f in args.faults.split(",") if f])
    serve_forever(args.root, args.host, args.port, token, faults)
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    import secrets

    from loaders.harness import elt_run
    from loaders.settings import Settings
    from loaders.simulate import ApiServer, SimulationConfig, generate

    root = args.root.resolve()
    generate(root, SimulationConfig(), through_day=args.days)
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
    where = settings.duckdb_path if settings.target == "duckdb" else f"postgresql://{settings.postgres.host}"
    print(f"tables: {where} — schemas analytics, quarantine, ops, staging, raw_*")
    return int(code)


if __name__ == "__main__":
    sys.exit(main())
