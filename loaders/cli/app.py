"""`elt`: the command a scheduler and an engineer on call use. Typer only: parse, call an operation
(loaders/ops/), print what it returns, and map what it raised to an exit code — here, once.

Every command returns its exit code; `main` runs the Typer app without letting it exit, so a usage error is
always 2 (click's) and never an outcome. The operations (and dlt, dbt, the drivers) are imported inside
the commands, so `elt --help` answers at once.
"""

from __future__ import annotations

import os
import sys

import typer

from loaders.core.events import log_event
from loaders.core.outcomes import USAGE_ERROR, CommandFailed, ExitCode, RunLocked, UsageError, WarehouseUnreachable
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
dead_letters_app = typer.Typer(
    help="The records no loader could land: list them (the default), replay them.",
    invoke_without_command=True,
    no_args_is_help=False,
    add_completion=False,
)
app.add_typer(dead_letters_app, name="dead-letters")

GROUPS = ("dead-letters", "simulate")  # commands with subcommands: their name is two words


def command_name(args: list[str]) -> str:
    """The command's name as the user typed it: `run`, `dead-letters replay`."""
    two = args[:1] and args[0] in GROUPS and args[1:2] and not args[1].startswith("-")
    return " ".join(args[:2] if two else args[:1])


def settings() -> Settings:
    """The settings from the environment (InvalidSetting names the variable)."""
    return Settings.from_env()


def emit(result: tuple[int, str]) -> int:
    """Print an operation's text on stdout; its exit code."""
    code, text = result
    if text:
        print(text, flush=True)
    return int(code)


def main(argv: list[str] | None = None) -> int:
    # dlt reads .dlt/config.toml and .dlt/secrets.toml from the project, wherever elt is called from.
    os.environ.setdefault("DLT_PROJECT_DIR", str(PROJECT_DIR))
    os.environ.setdefault("RUNTIME__LOG_LEVEL", "ERROR")
    command = typer.main.get_command(app)
    args = sys.argv[1:] if argv is None else argv
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
        print("elt: interrupted", file=sys.stderr)
        return 130
    except (InvalidSetting, UsageError) as exc:
        print(f"elt {name}: {exc}", file=sys.stderr)
        return USAGE_ERROR
    except RunLocked as exc:  # every command that writes takes the run lock first
        log_event("run_locked", command=name, error=str(exc))
        print(f"elt {name} FAILED(locked): {exc}", flush=True)
        return int(ExitCode.LOCKED)
    except WarehouseUnreachable as exc:
        print(f"elt {name} FAILED(warehouse): {exc}", file=sys.stderr)
        return int(ExitCode.WAREHOUSE_UNREACHABLE)
    except CommandFailed as exc:
        print(f"elt {name} FAILED: {exc}", flush=True)
        return int(exc.exit_code)
