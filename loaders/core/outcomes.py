"""What a command did and what it exits with: the outcomes every layer reports in, and the errors the command
line maps to exit codes (in one place, `loaders.cli.app.main`)."""

from __future__ import annotations

import signal
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any


class ExitCode(IntEnum):
    """What an `elt` command exits with. When several apply, the smallest non-zero one. No outcome is 2:
    that is the command line's exit for a command called wrong (USAGE_ERROR)."""

    OK = 0
    LOAD_FAILED = 1
    BUILD_FAILED = 3
    TESTS_FAILED = 4
    LOCKED = 5
    DEAD_LETTER_THRESHOLD = 6
    QUARANTINE_THRESHOLD = 7
    GRANTS_FAILED = 8
    WAREHOUSE_UNREACHABLE = 9
    CHECK_FAILED = 10
    BOOKS_UNBALANCED = 11


USAGE_ERROR = 2  # click's exit on bad arguments; elt also uses it for a setting that cannot be used


class RunLocked(RuntimeError):
    """Another `elt` run, or another process writing the DuckDB file, holds the warehouse."""


class WarehouseUnreachable(RuntimeError):
    """The warehouse refused or never answered the connection: the driver's reason, never a password."""


class Interrupted(BaseException):
    """SIGINT or SIGTERM: the command stops at once (its ledger row says so) and exits 128 + the signal's
    number, as a shell reports it: 130 for SIGINT (Ctrl-C), 143 for SIGTERM (a scheduler's stop). A
    BaseException, like KeyboardInterrupt, so no `except Exception` of a library swallows it."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum
        self.signal_name = signal.Signals(signum).name
        self.summary: str | None = None  # the command's summary line, written by the runner

    @property
    def exit_code(self) -> int:
        return 128 + self.signum


def interruption(exc: BaseException) -> Interrupted | None:
    """The interruption an exception stands for: itself, or one a library wrapped (its cause)."""
    cause = innermost_cause(exc)
    if isinstance(cause, Interrupted):
        return cause
    if isinstance(cause, KeyboardInterrupt):  # dlt's SignalReceivedException is one, with its signal
        return Interrupted(getattr(cause, "signal_code", signal.SIGINT))
    return None


class WarehouseLost(WarehouseUnreachable):
    """The warehouse went away during a run (the server, or the session holding the run lock): the run
    stops there (exit 9). `summary` says in which phase and what is safe."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
        self.summary: str | None = None


class UsageError(ValueError):
    """The command was called wrong (exit 2); the message says how."""


class CommandFailed(RuntimeError):
    """A command could not do its work; `exit_code` says what kind of failure, the message why."""

    def __init__(self, message: str, exit_code: ExitCode = ExitCode.LOAD_FAILED) -> None:
        super().__init__(message)
        self.exit_code = exit_code


@dataclass(frozen=True)
class Check:
    """One connection check's verdict (`elt check`): the warehouse's, or a source's."""

    name: str
    ok: bool
    detail: str

    def describe(self) -> str:
        return f"{self.name}: {'ok' if self.ok else 'FAILED'} — {self.detail}"


@dataclass
class SourceOutcome:
    """What loading one source did, as the ledger keeps it and the summary prints it."""

    source: str
    extracted: int = 0
    landed: int = 0
    dead_lettered: int = 0
    collapsed: int = 0  # rows of one extraction that a later row with the same (key, version) replaced
    error: str | None = None
    resumed_packages: int = 0
    load_ids: tuple[str, ...] = ()
    retries: int = 0
    files_read: int | None = None  # sources that read files: files taken in this run
    cursor_before: dict[str, Any] = field(default_factory=dict)
    cursor_after: dict[str, Any] = field(default_factory=dict)
    # rows read again exactly as raw holds them (a cursor's lag re-reads them), not landed again (None: not
    # compared, Spark's lake)
    unchanged: int | None = None

    def describe(self) -> str:
        """`extracted=… landed=… unchanged=… dead_lettered=…`: what the source handed over, and of it what
        landed (new or changed versions), what was read again exactly as raw holds it, what could not land."""
        if self.error:
            return f"{self.source} FAILED ({self.error})"
        resumed = f" resumed={self.resumed_packages}" if self.resumed_packages else ""
        unchanged = "" if self.unchanged is None else f" unchanged={self.unchanged}"
        return (
            f"{self.source} extracted={self.extracted} landed={self.landed}{unchanged}"
            f" dead_lettered={self.dead_lettered}{resumed}"
        )


@dataclass
class DbtOutcome:
    """What one dbt invocation did, from its own run results."""

    returncode: int
    invocation_id: str | None = None
    models_built: int = 0
    models_failed: int = 0
    tests_passed: int = 0
    tests_failed: int = 0
    statuses: dict[str, str] = field(default_factory=dict)
    # a build left out because nothing it would read or run is new: the models it would have built
    models_skipped: int = 0
    skipped_because: str = ""

    def describe(self) -> str:
        skipped = f" skipped={self.models_skipped} ({self.skipped_because})" if self.models_skipped else ""
        return (
            f"models built={self.models_built} failed={self.models_failed}{skipped}; "
            f"tests passed={self.tests_passed} failed={self.tests_failed}"
        )

    def failed_nodes(self) -> str:
        failed = [uid for uid, status in self.statuses.items() if status in ("error", "fail", "skipped")]
        return ", ".join(failed) or f"dbt exited {self.returncode}"


@dataclass(frozen=True)
class Breach:
    """One threshold the run exceeded, and by how much."""

    code: ExitCode
    text: str


def outcome_code(outcomes: list[SourceOutcome], dbt: DbtOutcome | None, breaches: list[Breach]) -> ExitCode:
    """The smallest code that applies: a failed load, then a failed model, a failed test, a threshold."""
    codes = [breach.code for breach in breaches]
    if any(outcome.error for outcome in outcomes):
        codes.append(ExitCode.LOAD_FAILED)
    if dbt is not None and (dbt.models_failed or (dbt.returncode != 0 and not dbt.tests_failed)):
        codes.append(ExitCode.BUILD_FAILED)
    if dbt is not None and dbt.tests_failed:
        codes.append(ExitCode.TESTS_FAILED)
    return min(codes, default=ExitCode.OK)


def innermost_cause(exc: BaseException) -> BaseException:
    """dlt wraps a source's or a storage's own error in several layers; this is the one that says why."""
    while exc.__cause__ is not None:
        exc = exc.__cause__
    return exc


def root_cause(exc: BaseException) -> str:
    """The innermost cause as one line: `Kind: message`."""
    cause = innermost_cause(exc)
    return f"{type(cause).__name__}: {cause}".splitlines()[0]
