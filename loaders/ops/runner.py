"""The run pattern, written once: every command that writes goes through `writing`.

    with writing(settings, "load", sources) as run:     # the run lock, then a ledger row `running`
        load_sources(settings, sources, run)            # the work
        dbt_build(settings, run, [...])                 # dbt, recorded on the run
        run.finish(code, summary)                       # what the ledger row and the command end with

The row is completed when the block ends — with the exit code and summary the block set, or, when the
block raised, exit 1 and the error — and every event meanwhile carries the run id. An orchestrator that
calls these operations directly gets the same lock and ledger as the command line.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator
from typing import NamedTuple

from loaders.core.events import bound_run, log_event
from loaders.core.outcomes import DbtOutcome, ExitCode, WarehouseLost, interruption, root_cause
from loaders.core.registry import RUN_LOCK_SESSION
from loaders.core.settings import Settings
from loaders.ops.dbt import run_dbt
from loaders.warehouse import dialect
from loaders.warehouse.ledger import RunEntry, new_run_id, record_finish, record_start
from loaders.warehouse.locks import HeldLock, run_lock


class Result(NamedTuple):
    """What a command exits with and prints on stdout (its summary, maybe more lines)."""

    exit_code: int
    text: str


@contextlib.contextmanager
def ledgered(
    settings: Settings, command: str, arguments: list[str], lock: HeldLock | None = None
) -> Iterator[RunEntry]:
    """One run in the ledger (call it holding the run lock, `lock`): its row is written `running` now and
    completed when the block ends. An interruption or a lost warehouse is ledgered as such and goes on with
    the run's summary line."""
    run = RunEntry(new_run_id(), command, arguments, lock=lock or HeldLock())
    started = time.monotonic()
    with bound_run(run.run_id), naming_the_lock(run.lock):
        record_start(settings, run)
        log_event("run_started", command=command, arguments=arguments)
        try:
            yield run
        except BaseException as exc:
            stopped = interruption(exc)
            lost = None if stopped is not None else warehouse_lost(settings, exc)
            if stopped is not None:
                why = f"interrupted by {stopped.signal_name} during {run.phase}"
                stopped.summary = stopped_summary(run, "interrupted", why, time.monotonic() - started)
                log_event("run_interrupted", signal=stopped.signal_name, phase=run.phase, exit_code=stopped.exit_code)
                record_finish(settings, run, stopped.exit_code, why, stopped.summary, status="interrupted")
                raise stopped from None
            if lost is not None:
                why = f"lost the warehouse during {run.phase}: {lost.reason}"
                lost.summary = stopped_summary(run, "warehouse", why, time.monotonic() - started)
                log_event("warehouse_lost", phase=run.phase, reason=lost.reason)
                record_finish(settings, run, ExitCode.WAREHOUSE_UNREACHABLE, why, lost.summary)
                raise lost from None
            record_finish(settings, run, exit_code=1, error=root_cause(exc), summary="")
            raise
        if not record_finish(settings, run, exit_code=int(run.exit_code), error=run.error, summary=run.summary):
            lost = WarehouseLost("the ledger could not be written")
            lost.summary = f"{run.summary} (its work was done; the warehouse went away before the ledger was written)"
            raise lost


def warehouse_lost(settings: Settings, exc: BaseException) -> WarehouseLost | None:
    """The lost warehouse an error stands for, or None (a statement the warehouse refused is not one)."""
    if isinstance(exc, WarehouseLost):
        return exc
    if dialect(settings).connection_lost(exc):
        return WarehouseLost(root_cause(exc))
    return None


def stopped_summary(run: RunEntry, kind: str, why: str, seconds: float) -> str:
    """The one line of a run stopped on the way: why, what it had done, and what is safe."""
    done = "; ".join(outcome.describe() for outcome in run.sources)
    parts = [f"elt {run.command} FAILED({kind}): {why};", *([done + ";"] if done else [])]
    if run.models_built is not None and run.models_failed == 0 and kind == "warehouse":
        parts.append("its build had finished;")
    parts.append("what committed before is kept, the next run resumes the rest;")
    parts.append(f"{seconds:.1f}s")
    return " ".join(parts)


@contextlib.contextmanager
def writing(settings: Settings, command: str, arguments: list[str]) -> Iterator[RunEntry]:
    """The run lock, and one ledgered run inside it."""
    with run_lock(settings) as lock, ledgered(settings, command, arguments, lock) as run:
        yield run


@contextlib.contextmanager
def naming_the_lock(lock: HeldLock) -> Iterator[None]:
    """While the block runs, the process's warehouse connections (dlt's) can check the run still holds its
    lock: ELT_RUN_LOCK_SESSION names the session holding it (PostgreSQL)."""
    saved = os.environ.get(RUN_LOCK_SESSION)
    if lock.session:
        os.environ[RUN_LOCK_SESSION] = lock.session
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop(RUN_LOCK_SESSION, None)
        else:
            os.environ[RUN_LOCK_SESSION] = saved


def dbt_build(settings: Settings, run: RunEntry, dbt_args: list[str]) -> DbtOutcome:
    """dbt with these arguments, its outcome recorded on the run. Its models check that the run still holds
    its lock (`serialize_writers()`), so none is written once the session holding it is gone."""
    run.phase = f"dbt {dbt_args[0] if dbt_args else ''}".strip()
    run.lock.check()
    outcome = run_dbt(settings, dbt_args, run_lock_session=run.lock.session)
    if outcome.returncode != 0:
        run.lock.check()  # a build that failed because the warehouse went away stops the run
    run.dbt_invocation_id = outcome.invocation_id
    run.models_built, run.models_failed = outcome.models_built, outcome.models_failed
    run.tests_passed, run.tests_failed = outcome.tests_passed, outcome.tests_failed
    return outcome
