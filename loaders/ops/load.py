"""Loading sources: each through its pipeline, one after another, each failure its own."""

from __future__ import annotations

import time
from functools import partial
from typing import Any

from loaders.core.events import load_progress, log_event
from loaders.core.outcomes import SourceOutcome, outcome_code, root_cause
from loaders.core.settings import Settings
from loaders.landing.batch import Progress, Tally
from loaders.landing.pipelines import cursor_positions, load_source
from loaders.ops.runner import Result, writing
from loaders.sources import spec
from loaders.warehouse.locks import writer_lock


def load_sources(settings: Settings, sources: list[str]) -> list[SourceOutcome]:
    """Load each source; a source that fails does not stop the others (its outcome carries the error)."""
    with load_progress() as progress:
        return [load_one(settings, source, progress) for source in sources]


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
        message = root_cause(exc)
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
    )
    log_event(
        "load_finished",
        source=source,
        extracted=outcome.extracted,
        landed=outcome.landed,
        dead_lettered=outcome.dead_lettered,
        collapsed=outcome.collapsed,
        load_ids=list(report.load_ids),
        resumed_packages=report.resumed_packages,
        resumed_load_ids=list(report.resumed_load_ids),
        retries=outcome.retries,
        cursor_after=after,
        seconds=round(time.monotonic() - started, 2),
    )
    return outcome


def files_taken(before: dict[str, Any], after: dict[str, Any]) -> int | None:
    """Files a run took, from the file manifests' sizes before and after (None: the source reads no files)."""
    manifests = [name for name, position in after.items() if isinstance(position, dict) and "files" in position]
    if not manifests:
        return None
    return sum(after[name]["files"] - (before.get(name) or {}).get("files", 0) for name in manifests)


def load(settings: Settings, sources: list[str]) -> Result:
    """`elt load`: the loaders only, ledgered."""
    with writing(settings, "load", sources) as run:
        run.sources = load_sources(settings, sources)
        errors = "; ".join(f"{o.source}: {o.error}" for o in run.sources if o.error) or None
        summary = "elt load: " + "; ".join(outcome.describe() for outcome in run.sources)
        run.finish(outcome_code(run.sources, None, []), summary, errors)
    return Result(run.exit_code, run.summary)
