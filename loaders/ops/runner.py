"""The run pattern, written once: every command that writes goes through `writing`.

    with writing(settings, "load", sources) as run:     # the run lock, then a ledger row `running`
        run.sources = load_sources(settings, sources)   # the work
        dbt_build(settings, run, [...])                 # dbt, recorded on the run
        run.finish(code, summary)                       # what the ledger row and the command end with

The row is completed when the block ends — with the exit code and summary the block set, or, when the
block raised, exit 1 and the error — and every event meanwhile carries the run id. An orchestrator that
calls these operations directly gets the same lock and ledger as the command line.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import NamedTuple

from loaders.core.events import bound_run, log_event
from loaders.core.outcomes import DbtOutcome, root_cause
from loaders.core.settings import Settings
from loaders.ops.dbt import run_dbt
from loaders.warehouse.ledger import RunEntry, new_run_id, record_finish, record_start
from loaders.warehouse.locks import run_lock


class Result(NamedTuple):
    """What a command exits with and prints on stdout (its summary, maybe more lines)."""

    exit_code: int
    text: str


@contextlib.contextmanager
def ledgered(settings: Settings, command: str, arguments: list[str]) -> Iterator[RunEntry]:
    """One run in the ledger (call it holding the run lock): its row is written `running` now and completed
    when the block ends."""
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


@contextlib.contextmanager
def writing(settings: Settings, command: str, arguments: list[str]) -> Iterator[RunEntry]:
    """The run lock, and one ledgered run inside it."""
    with run_lock(settings), ledgered(settings, command, arguments) as run:
        yield run


def dbt_build(settings: Settings, run: RunEntry, dbt_args: list[str]) -> DbtOutcome:
    """dbt with these arguments, its outcome recorded on the run."""
    outcome = run_dbt(settings, dbt_args)
    run.dbt_invocation_id = outcome.invocation_id
    run.models_built, run.models_failed = outcome.models_built, outcome.models_failed
    run.tests_passed, run.tests_failed = outcome.tests_passed, outcome.tests_failed
    return outcome
