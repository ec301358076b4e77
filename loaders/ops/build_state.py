"""Whether a run has anything to build: decided from what the models have consumed, not from clocks.

A build can be left out when nothing it would read is new — the run's loads landed no row and no dead
letter, every completed load with rows has been consumed by each model that judges its source, every
batch a model published has been consumed by each model that reads it (one query over the consumed-state
tables, `ops.dbt_consumed` and `ops.dbt_batches`) — and when nothing it would run is new: the project's
models, macros, seeds and data tests are the files the last clean build ran (its fingerprint, kept in
`ops.elt_builds`). A clean build is a full one (no dbt arguments) in which no model and no test failed, so
leaving the next one out hides no failure. What is left out stays pending for the next build whatever
happens between: nothing here decides what a build does, only whether one runs.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from loaders.core.outcomes import DbtOutcome, SourceOutcome
from loaders.core.registry import ENTITIES, LOADS_TABLE, raw_dataset
from loaders.core.settings import Settings
from loaders.warehouse import dialect, ops_tables
from loaders.warehouse.ops_tables import BUILDS

# What a build runs: a change to any of these files is a change of what the models or tests do.
PROJECT_PARTS = ("models", "macros", "seeds", "tests/dbt", "dbt_project.yml", "selectors.yml", "profiles.yml")


def project_fingerprint(project_dir: Path) -> str:
    """A digest of every file a build reads from the project (names and contents)."""
    digest = hashlib.sha256()
    for part in PROJECT_PARTS:
        root = project_dir / part
        files = sorted(root.rglob("*")) if root.is_dir() else [root]
        for path in files:
            if path.is_file() and "__pycache__" not in path.parts:
                digest.update(str(path.relative_to(project_dir)).encode())
                digest.update(b"\0")
                digest.update(path.read_bytes())
                digest.update(b"\0")
    return digest.hexdigest()


@dataclass(frozen=True)
class CleanBuild:
    run_id: str
    fingerprint: str
    models: int


def last_clean_build(settings: Settings) -> CleanBuild | None:
    warehouse = dialect(settings)
    with warehouse.connect() as conn:
        cursor = conn.cursor()
        if BUILDS.name not in warehouse.table_names(cursor, ops_tables.SCHEMA):
            return None
        cursor.execute(
            f"select run_id, fingerprint, models_built from {BUILDS.qualified} order by finished_at desc limit 1"
        )
        row = cursor.fetchone()
    return None if row is None else CleanBuild(str(row[0]), str(row[1]), int(row[2]))


def record_clean_build(settings: Settings, run_id: str, outcome: DbtOutcome, dbt_args: list[str]) -> None:
    """After a full build with no failure: the project's fingerprint as it ran."""
    if dbt_args or outcome.returncode != 0 or outcome.models_failed or outcome.tests_failed:
        return
    ops_tables.ensure(settings, (BUILDS,))
    warehouse = dialect(settings)
    with warehouse.connect(read_only=False) as conn:
        conn.cursor().execute(
            f"insert into {BUILDS.qualified} (run_id, fingerprint, models_built, finished_at)"
            f" values ({warehouse.placeholders(4)})",
            (run_id, project_fingerprint(settings.project_dir), outcome.models_built, datetime.now(UTC)),
        )


def pending_work_query() -> str:
    """Completed loads with rows that a model judging their source has not consumed, and published batches
    that a model reading them has not consumed: how many (0: nothing is pending)."""
    parts = []
    for entity in ENTITIES:
        raw = raw_dataset(entity.source)
        parts.append(
            f"select loads.load_id from {raw}.{LOADS_TABLE} as loads where loads.status = 0"
            " and not exists (select 1 from ops.dbt_consumed as consumed"
            f" where consumed.consumer = '{entity.versions_model}' and consumed.producer = '{raw}'"
            " and consumed.batch_id = loads.load_id)"
            f" and exists (select 1 from {raw}.{entity.raw_table} as landed where landed._dlt_load_id = loads.load_id)"
        )
    parts.append(
        "select batches.batch_id from ops.dbt_batches as batches"
        " join (select distinct consumer, producer from ops.dbt_consumed) as readers"
        " on readers.producer = batches.producer"
        " where not exists (select 1 from ops.dbt_consumed as consumed where consumed.consumer = readers.consumer"
        " and consumed.producer = batches.producer and consumed.batch_id = batches.batch_id)"
    )
    return "select count(*) from (" + " union all ".join(parts) + ") as pending"


def nothing_to_build(settings: Settings, outcomes: list[SourceOutcome], dbt_args: list[str]) -> CleanBuild | None:
    """The last clean build, when the build can be left out (see the module's docstring); None: build."""
    if dbt_args or any(o.error or o.landed or o.dead_lettered for o in outcomes):
        return None
    last = last_clean_build(settings)
    if last is None or last.fingerprint != project_fingerprint(settings.project_dir):
        return None
    try:
        ((pending,),) = dialect(settings).fetch_all(pending_work_query())
    except Exception:  # a table not there yet (a source never loaded): build, which creates it
        return None
    return last if int(pending) == 0 else None
