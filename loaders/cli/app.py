"""`elt`: the command a scheduler and an engineer on call use. Typer only: parse, call an operation
(loaders/ops/), print what it returns, and map what it raised to an exit code — here, once.

Every command returns its exit code; `main` runs the Typer app without letting it exit, so a usage error is
always 2 (click's) and never an outcome. The operations (and dlt, dbt, the drivers) are imported inside
the commands, so `elt --help` answers at once.
"""

from __future__ import annotations

import os
import signal
import sys
import traceback

import typer

from loaders.core.events import interactive, log_event, route_logging
from loaders.core.outcomes import (
    USAGE_ERROR,
    CommandFailed,
    ExitCode,
    Interrupted,
    RunLocked,
    UsageError,
    WarehouseLost,
    WarehouseUnreachable,
    root_cause,
)
from loaders.core.registry import PROJECT_DIR
from loaders.core.settings import InvalidSetting, Settings
from loaders.warehouse import refused

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
 11  elt run: the books do not balance — a record or a version is unaccounted for (which book, by how much);
130  interrupted by SIGINT (Ctrl-C; a second one stops at once), 143 by SIGTERM: stopped, ledgered `interrupted`,
     what landed and was built is kept and the next run resumes the rest"""
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
dead_letters_app = typer.Typer(
    help="The records no loader could land: list them (the default), replay them.",
    invoke_without_command=True,
    no_args_is_help=False,
    add_completion=False,
)
app.add_typer(dead_letters_app, name="dead-letters")
state_app = typer.Typer(
    help="A source's cursors and manifests (dlt's state): read them, pin a cursor, or clear them.",
    no_args_is_help=True,
)
app.add_typer(state_app, name="state")

GROUPS = ("dead-letters", "simulate", "state")  # commands with subcommands: their name is two words


def command_name(args: list[str]) -> str:
    """The command's name as the user typed it: `run`, `dead-letters replay`."""
    two = args[:1] and args[0] in GROUPS and args[1:2] and not args[1].startswith("-")
    return " ".join(args[:2] if two else args[:1])


def settings() -> Settings:
    """The settings from the environment (InvalidSetting names the variable)."""
    return Settings.from_env()


def complain(line: str) -> None:
    """A command's one line of why it could not run: as text to a person at a terminal, as an event (one JSON
    object, like every line of stderr) to a machine."""
    if interactive():
        print(line, file=sys.stderr, flush=True)
    else:
        log_event("command_failed", message=line)


def emit(result: tuple[int, str]) -> int:
    """Print an operation's text on stdout; its exit code."""
    code, text = result
    if text:
        print(text, flush=True)
    return int(code)


def stop_on_signals() -> None:
    """SIGINT and SIGTERM stop the command at once, as an Interrupted the runner ledgers; a second signal
    while it winds down (a second Ctrl-C) ends the process there and then."""

    def first(signum: int, _frame: object) -> None:
        signal.signal(signal.SIGINT, again)
        signal.signal(signal.SIGTERM, again)
        raise Interrupted(signum)

    def again(signum: int, _frame: object) -> None:
        os._exit(128 + signum)

    signal.signal(signal.SIGINT, first)
    signal.signal(signal.SIGTERM, first)


def main(argv: list[str] | None = None) -> int:
    # dlt reads .dlt/config.toml and .dlt/secrets.toml from the project, wherever elt is called from.
    os.environ.setdefault("DLT_PROJECT_DIR", str(PROJECT_DIR))
    os.environ.setdefault("RUNTIME__LOG_LEVEL", "ERROR")
    # dlt's own signal handling defers a signal to its next check and forgets it when a step ends first:
    # elt stops on it at once instead (stop_on_signals), which the loads' crash safety allows
    os.environ.setdefault("RUNTIME__INTERCEPT_SIGNALS", "false")
    route_logging()
    handlers = {signum: signal.getsignal(signum) for signum in (signal.SIGINT, signal.SIGTERM)}
    stop_on_signals()
    try:
        return run_command(sys.argv[1:] if argv is None else argv)
    finally:  # main called in-process (a test) leaves the process's handlers as they were
        for signum, handler in handlers.items():
            signal.signal(signum, handler)


def run_command(args: list[str]) -> int:
    command = typer.main.get_command(app)
    name = command_name(args)
    try:
        if name and not name.startswith("-"):
            reason = refused(settings(), name.split(" ")[0])
            if reason is not None:
                raise UsageError(reason)
        return int(command.main(args=args, prog_name="elt", standalone_mode=False) or 0)
    except typer.BadParameter as exc:  # usage errors (click's UsageError): its message, exit 2
        exc.show()
        return USAGE_ERROR
    except typer.TyperException as exc:  # click's other errors (no such option, missing argument, ...)
        exc.show()
        return int(getattr(exc, "exit_code", USAGE_ERROR))
    except typer.Abort:
        complain("elt: interrupted")
        return 130
    except (InvalidSetting, UsageError) as exc:
        complain(f"elt {name}: {exc}")
        return USAGE_ERROR
    except RunLocked as exc:  # every command that writes takes the run lock first
        log_event("run_locked", command=name, error=str(exc))
        print(f"elt {name} FAILED(locked): {exc}", flush=True)
        return int(ExitCode.LOCKED)
    except WarehouseLost as exc:  # during a run: its summary line says in which phase, and what is safe
        print(exc.summary or f"elt {name} FAILED(warehouse): {exc}", flush=True)
        return int(ExitCode.WAREHOUSE_UNREACHABLE)
    except WarehouseUnreachable as exc:
        complain(f"elt {name} FAILED(warehouse): {exc}")
        return int(ExitCode.WAREHOUSE_UNREACHABLE)
    except CommandFailed as exc:
        print(f"elt {name} FAILED: {exc}", flush=True)
        return int(exc.exit_code)
    except Interrupted as exc:
        print(exc.summary or f"elt {name} FAILED(interrupted): interrupted by {exc.signal_name}", flush=True)
        return exc.exit_code
    except Exception as exc:  # a bug: one line for people, the traceback for machines (an event)
        log_event("crashed", command=name, error=root_cause(exc), traceback=traceback.format_exc())
        complain(f"elt {name} FAILED: {root_cause(exc)}")
        return int(ExitCode.LOAD_FAILED)
