"""`elt reset SOURCE`: forget everything landed from one source and land it again from scratch.

What a reset drops: the source's raw dataset (`raw_<source>`: its tables, dead letters, dlt's `_dlt_loads`
and the cursor state dlt keeps there), dlt's local working folder for it (pending packages, the local copy
of the cursor and of the payments manifest) and the consumption records of its loads. It then loads the
source from the start and rebuilds every model downstream of it with `--full-refresh` — the versions a
source no longer serves must leave the canonical tables, which an incremental build never removes. The
ledger (`ops.elt_runs`) and the other sources are untouched. Without `--yes` it prints the plan and changes
nothing.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass

from loaders.core.outcomes import ExitCode, outcome_code
from loaders.core.registry import pipeline_name, raw_dataset
from loaders.core.settings import Settings
from loaders.ops.load import load_sources
from loaders.ops.runner import Result, dbt_build, ledgered
from loaders.warehouse import dialect
from loaders.warehouse.locks import run_lock, writer_lock


@dataclass(frozen=True)
class ResetPlan:
    source: str
    tables: list[tuple[str, int]]  # raw table, rows
    working_folder: str
    working_folder_exists: bool
    consumed_records: int

    @property
    def dbt_selection(self) -> list[str]:
        return ["--select", f"source:{self.source}+", "--full-refresh"]

    def describe(self) -> str:
        lines = [f"elt reset {self.source} would:"]
        if self.tables:
            for table, rows in self.tables:
                lines.append(f"  drop {raw_dataset(self.source)}.{table} ({rows} rows)")
        else:
            lines.append(f"  drop nothing in the warehouse ({raw_dataset(self.source)} does not exist)")
        folder = "" if self.working_folder_exists else " (absent)"
        lines.append(f"  delete dlt's working folder {self.working_folder}{folder}")
        lines.append(f"  forget {self.consumed_records} consumption records of its loads (ops.dbt_consumed)")
        lines.append(f"  load {self.source} from the start, then dbt build {' '.join(self.dbt_selection)}")
        return "\n".join(lines)


def reset(settings: Settings, source: str, yes: bool) -> Result:
    """Print the plan; with `yes`, drop, load the source from the start and rebuild what reads it."""
    with run_lock(settings) as lock:
        planned = plan(settings, source)
        if not yes:
            return Result(ExitCode.OK, f"{planned.describe()}\nnothing changed: run again with --yes to do it")
        with ledgered(settings, "reset", [source], lock) as run:
            with writer_lock(settings):
                drop(settings, planned)
            load_sources(settings, [source], run)
            outcome = dbt_build(settings, run, ["build", *planned.dbt_selection])
            loaded = "; ".join(o.describe() for o in run.sources)
            run.finish(outcome_code(run.sources, outcome, []), f"elt reset {source}: {loaded}; {outcome.describe()}")
    return Result(run.exit_code, f"{planned.describe()}\n{run.summary}")


def plan(settings: Settings, source: str) -> ResetPlan:
    warehouse = dialect(settings)
    schema = raw_dataset(source)
    with warehouse.connect() as conn:
        names = sorted(warehouse.table_names(conn.cursor(), schema))
    tables = [(name, int(warehouse.fetch_all(f'select count(*) from {schema}."{name}"')[0][0])) for name in names]
    try:
        consumed = int(warehouse.fetch_all(f"select count(*) from ops.dbt_consumed where producer = '{schema}'")[0][0])
    except Exception:  # never built
        consumed = 0
    folder = warehouse.pipelines_dir() / pipeline_name(source)
    return ResetPlan(source, tables, str(folder), folder.exists(), consumed)


def drop(settings: Settings, planned: ResetPlan) -> None:
    """Drop what the plan names: the warehouse part in one transaction, then the local folder."""
    schema = raw_dataset(planned.source)
    with dialect(settings).connect(read_only=False) as conn:
        cursor = conn.cursor()
        cursor.execute("begin")
        cursor.execute(f"drop schema if exists {schema} cascade")
        if planned.consumed_records:
            cursor.execute(f"delete from ops.dbt_consumed where producer = '{schema}'")
        cursor.execute("commit")
    shutil.rmtree(planned.working_folder, ignore_errors=True)
