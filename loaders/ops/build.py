"""`elt build [dbt args]`: dbt under the run lock, ledgered; `elt rejudge` applies a rule change this way."""

from __future__ import annotations

from loaders.core.outcomes import outcome_code
from loaders.core.settings import Settings
from loaders.ops.build_state import record_clean_build
from loaders.ops.runner import Result, dbt_build, writing


def build(settings: Settings, dbt_args: list[str], command: str = "build") -> Result:
    with writing(settings, command, dbt_args) as run:
        outcome = dbt_build(settings, run, ["build", *dbt_args])
        record_clean_build(settings, run.run_id, outcome, dbt_args)
        run.finish(outcome_code([], outcome, []), f"elt {command}: {outcome.describe()}")
    return Result(run.exit_code, run.summary)
