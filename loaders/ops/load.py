"""Loading sources: each through its pipeline, one after another, each failure its own."""

from __future__ import annotations

import time
from functools import partial
from typing import Any

from dlt.common.configuration.exceptions import ConfigFieldMissingException

from loaders.core.events import load_progress, log_event
from loaders.core.outcomes import SourceOutcome, innermost_cause, interruption, outcome_code, root_cause
from loaders.core.settings import Settings
from loaders.landing.batch import Progress, Tally
from loaders.landing.pipelines import cursor_positions, load_source
from loaders.ops.runner import Result, writing
from loaders.sources import spec
from loaders.warehouse.ledger import RunEntry
from loaders.warehouse.locks import writer_lock


def load_sources(settings: Settings, sources: list[str], run: RunEntry | None = None) -> list[SourceOutcome]:
    """Load each source; a source that fails does not stop the others (its outcome carries the error).
    With a run, each outcome joins its sources as it ends, and its phase says which source loads."""
    outcomes = run.sources if run is not None else []
    with load_progress() as progress:
        for source in sources:
            if run is not None:
                run.phase = f"the load of {source}"
                run.guard()
            outcomes.append(load_one(settings, source, progress.advance if progress else None))
            if run is not None and outcomes[-1].error:
                run.guard()  # a load that failed because the warehouse went away stops the run
            if progress is not None:
                progress.source_done(source)
    return outcomes


def load_one(settings: Settings, source: str, progress: Progress | None = None) -> SourceOutcome:
    started = time.monotonic()
    log_event("load_started", source=source)
    before = cursor_positions(settings, source)
    tally = Tally(progress=progress)
    try:
        with writer_lock(settings):
            report = load_source(
                settings, spec(source), tally, on_reset=partial(log_event, "local_state_reset", source=source)
            )
    except Exception as exc:  # one source's failure must not hide the others'
        stopped = interruption(exc)
        if stopped is not None:  # a library wrapped the interruption: it stops the run all the same
            raise stopped from None
        message = not_configured(source, exc) or root_cause(exc)
        log_event("load_failed", source=source, error=message)
        return SourceOutcome(source, error=message, retries=tally.retries, cursor_before=before, cursor_after=before)
    after = cursor_positions(settings, source)
    outcome = SourceOutcome(
        source,
        report.extracted,
        report.landed,
        report.dead_lettered,
        report.collapsed,
        resumed_packages=report.resumed_packages,
        load_ids=tuple(report.load_ids),
        retries=tally.retries,
        files_read=files_taken(before, after),
        cursor_before=before,
        cursor_after=after,
        unchanged=report.unchanged,
    )
    log_event(
        "load_finished",
        source=source,
        extracted=outcome.extracted,
        landed=outcome.landed,
        dead_lettered=outcome.dead_lettered,
        collapsed=outcome.collapsed,
        unchanged=outcome.unchanged,
        load_ids=list(report.load_ids),
        resumed_packages=report.resumed_packages,
        resumed_load_ids=list(report.resumed_load_ids),
        retries=outcome.retries,
        cursor_after=after,
        seconds=round(time.monotonic() - started, 2),
    )
    return outcome


NOT_CONFIGURED = "not configured"
THE_SAMPLE = "elt demo --next-day"


def not_configured(source: str, exc: BaseException) -> str | None:
    """A source whose settings are missing, as one line naming the variables to set (dlt names fields)."""
    cause = innermost_cause(exc)
    if not isinstance(cause, ConfigFieldMissingException):
        return None
    variables = ", ".join(f"SOURCES__{source.upper()}__{field.upper()}" for field in cause.fields)
    return f"{NOT_CONFIGURED}: set {variables} (or run the sample sources: {THE_SAMPLE})"


def files_taken(before: dict[str, Any], after: dict[str, Any]) -> int | None:
    """Files a run took, from the file manifests' sizes before and after (None: the source reads no files)."""
    manifests = [name for name, position in after.items() if isinstance(position, dict) and "files" in position]
    if not manifests:
        return None
    return sum(after[name]["files"] - (before.get(name) or {}).get("files", 0) for name in manifests)


def load(settings: Settings, sources: list[str]) -> Result:
    """`elt load`: the loaders only, ledgered."""
    with writing(settings, "load", sources) as run:
        load_sources(settings, sources, run)
        errors = "; ".join(f"{o.source}: {o.error}" for o in run.sources if o.error) or None
        summary = "elt load: " + "; ".join(outcome.describe() for outcome in run.sources)
        run.finish(outcome_code(run.sources, None, []), summary, errors)
    return Result(run.exit_code, run.summary)
