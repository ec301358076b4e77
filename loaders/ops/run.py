"""`elt run`: every loader, then `dbt build`, then the thresholds, the books and a one-line summary.

A loader that fails does not stop the others or dbt (what landed is still worth building); it makes the
run's exit code non-zero. After dbt the run checks two thresholds (`Settings.max_dead_letter_rate`,
`max_new_quarantine`) and balances its books: a source that dead-lettered too large a share of what it
extracted, a build that opened too many quarantine rows, or a book that does not balance gives the run
its own exit code — with everything loaded and built kept, since the checks come last.
"""

from __future__ import annotations

import time

from loaders.core.events import log_event
from loaders.core.outcomes import Breach, DbtOutcome, ExitCode, SourceOutcome, outcome_code
from loaders.core.settings import Settings
from loaders.ops.build_state import nothing_to_build, record_clean_build
from loaders.ops.load import NOT_CONFIGURED, load_sources
from loaders.ops.quarantine import NewQuarantine, open_counts, open_quarantine_rows, resolved_between
from loaders.ops.runner import Result, dbt_build, writing
from loaders.warehouse.books import Book, entity_books, source_books


def elt_run(settings: Settings, sources: list[str], dbt_args: list[str]) -> Result:
    started = time.monotonic()
    with writing(settings, "run", [*sources, *dbt_args]) as run:
        outcomes = load_sources(settings, sources, run)
        if all(o.error and o.error.startswith(NOT_CONFIGURED) for o in outcomes):
            line = nothing_configured(outcomes, time.monotonic() - started)
            run.finish(ExitCode.LOAD_FAILED, line, "; ".join(f"{o.source}: {o.error}" for o in outcomes))
            return Result(run.exit_code, line)
        # quarantine changes only in dbt: what is open now is what was open before the build
        before = open_quarantine_rows(settings, missing_is_empty=True)
        run.phase = "deciding whether anything is new"
        clean = nothing_to_build(settings, outcomes, dbt_args)
        if clean is None:
            dbt = dbt_build(settings, run, ["build", *dbt_args])
            record_clean_build(settings, run.run_id, dbt, dbt_args)
        else:  # nothing new to read, nothing new to run: the last clean build stands
            dbt = DbtOutcome(0, models_skipped=clean.models, skipped_because=f"nothing new since run {clean.run_id}")
            run.models_built, run.models_failed, run.tests_passed, run.tests_failed = 0, 0, 0, 0
            log_event("build_skipped", since_run=clean.run_id, models=clean.models)
        after = open_quarantine_rows(settings)
        new = NewQuarantine.between(before, after)
        run.quarantine_opened, run.quarantine_resolved = new.total, resolved_between(before, after)
        run.phase = "the books, after a finished build"
        run.books = balance_books(settings, outcomes, dbt)
        breaches = check_thresholds(settings, outcomes, new) + [
            Breach(ExitCode.BOOKS_UNBALANCED, f"books do not balance: {book.describe()}")
            for book in run.books
            if not book.balanced
        ]
        code = outcome_code(outcomes, dbt, breaches)
        line = summary_line(outcomes, dbt, open_counts(after), time.monotonic() - started, code, breaches)
        errors = [*(f"{o.source}: {o.error}" for o in outcomes if o.error), *(b.text for b in breaches)]
        run.finish(code, line, "; ".join(errors) or None)
        log_event(
            "run_finished",
            exit_code=int(code),
            new_quarantine=new.by_table,
            max_dead_letter_rate=settings.max_dead_letter_rate,
            max_new_quarantine=settings.max_new_quarantine,
            thresholds_exceeded=[breach.text for breach in breaches],
        )
    return Result(code, line)


def nothing_configured(outcomes: list[SourceOutcome], seconds: float) -> str:
    """No source could be loaded for want of settings: nothing to build."""
    loads = "; ".join(outcome.describe() for outcome in outcomes)
    return f"elt run FAILED(load_failed): {loads}; nothing loaded, so no dbt build; {seconds:.1f}s"


def balance_books(settings: Settings, outcomes: list[SourceOutcome], dbt: DbtOutcome) -> list[Book]:
    """The run's books (loaders/warehouse/books.py): each loaded source's, and each entity's when no model
    failed (a failed model leaves its tables behind the raw data until the next build). A skipped build
    (nothing new) has its entity books too: they are what sees a row changed behind dbt's back, which the
    data tests, reading only what a build writes, do not."""
    books = source_books(outcomes)
    if outcome_code([], dbt, []) in (ExitCode.OK, ExitCode.TESTS_FAILED):
        books += entity_books(settings)
    for book in books:
        log_event("book", name=book.name, balanced=book.balanced, difference=book.difference, text=book.describe())
    return books


def check_thresholds(settings: Settings, outcomes: list[SourceOutcome], new: NewQuarantine) -> list[Breach]:
    breaches = []
    limit = settings.max_dead_letter_rate
    for outcome in outcomes:
        if outcome.error or outcome.extracted == 0:
            continue
        rate = outcome.dead_lettered / outcome.extracted
        if rate > limit:
            breaches.append(
                Breach(
                    ExitCode.DEAD_LETTER_THRESHOLD,
                    f"{outcome.source} dead-letter rate {rate:.2%} ({outcome.dead_lettered}/{outcome.extracted})"
                    f" > max {limit:.2%} by {(rate - limit) * 100:.2f} points",
                )
            )
    cap = settings.max_new_quarantine
    if cap is not None and new.total > cap:
        tables = " ".join(f"{table}={n}" for table, n in new.by_table.items() if n)
        breaches.append(
            Breach(
                ExitCode.QUARANTINE_THRESHOLD,
                f"new quarantine rows {new.total} ({tables}) > max {cap} by {new.total - cap}",
            )
        )
    return breaches


def summary_line(
    outcomes: list[SourceOutcome],
    dbt: DbtOutcome | None,
    quarantine: dict[str, int | None],
    seconds: float,
    code: ExitCode,
    breaches: list[Breach] | None = None,
) -> str:
    parts = [f"elt run {'ok' if code == ExitCode.OK else 'FAILED(' + code.name.lower() + ')'}:"]
    parts.append("; ".join(outcome.describe() for outcome in outcomes) + ";")
    if dbt is not None:
        parts.append(dbt.describe() + ";")
    open_rows = " ".join(f"{table}={'?' if n is None else n}" for table, n in quarantine.items())
    parts.append(f"quarantine open {open_rows};")
    if breaches:
        parts.append("thresholds exceeded: " + "; ".join(breach.text for breach in breaches) + ";")
    parts.append(f"{seconds:.1f}s")
    return " ".join(parts)
