"""`elt rejudge`: what a change of the rules or the seeds does to versions already judged (`elt replay`, its
old name, stays an alias for one release).

The incremental models notice such a change by themselves (a fingerprint of the rules' text and the
seeds' codes, see macros/incremental.sql) and judge every version again on the next run, so applying is
a plain build. The dry run builds the seeds and the intermediate models from scratch into a scratch
schema, compares each version's verdict there with the current one, and drops the schema: the tables
users read are not touched.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from loaders.core.outcomes import CommandFailed, ExitCode
from loaders.core.registry import ENTITIES, Entity
from loaders.core.settings import Settings
from loaders.ops.build import build
from loaders.ops.dbt import run_dbt
from loaders.ops.runner import Result
from loaders.warehouse import connect, fetch_all
from loaders.warehouse.locks import run_lock

PREVIEW_SCHEMA = "ops_replay_preview"


@dataclass(frozen=True)
class VerdictChanges:
    """Versions of one entity whose verdict the pending change flips."""

    table: str
    released: list[str] = field(default_factory=list)  # keys of versions failing now that would pass
    quarantined: list[str] = field(default_factory=list)  # keys of versions passing now that would fail
    reasons_changed: list[str] = field(default_factory=list)  # failing either way, for other reasons

    def describe(self, verbose: bool = False) -> str:
        line = (
            f"{self.table}: released={len(self.released)} quarantined={len(self.quarantined)} "
            f"reasons_changed={len(self.reasons_changed)}"
        )
        if verbose:
            for label, keys in (("released", self.released), ("quarantined", self.quarantined)):
                if keys:
                    line += f"\n  {label}: {', '.join(keys)}"
        return line


def rejudge(settings: Settings, dry_run: bool, verbose: bool, command: str = "rejudge") -> Result:
    """Apply the pending rules and seeds (a plain build), or with `dry_run` say what they would change."""
    if not dry_run:
        return build(settings, [], command)
    with run_lock(settings):
        changes = preview(settings)
    lines = [f"elt {command} --dry-run: versions whose verdict the pending rules and seeds change"]
    lines += [change.describe(verbose=verbose) for change in changes]
    return Result(ExitCode.OK, "\n".join(lines))


def preview(settings: Settings) -> list[VerdictChanges]:
    selection = ["--select", "resource_type:seed", "path:models/intermediate"]
    outcome = run_dbt(
        settings,
        ["build", *selection, "--full-refresh", "--exclude-resource-type", "test", "unit_test"],
        dbt_vars={"replay_preview_schema": PREVIEW_SCHEMA},
    )
    try:
        if outcome.returncode != 0:
            raise CommandFailed(f"dbt could not build the preview: {outcome.failed_nodes()}", ExitCode.BUILD_FAILED)
        return [verdict_changes(settings, entity) for entity in ENTITIES]
    finally:
        drop_preview(settings)


def verdict_changes(settings: Settings, entity: Entity) -> VerdictChanges:
    rows = fetch_all(
        settings,
        f"""
        select
            current_verdict.{entity.key},
            case
                when current_verdict.failed_rules <> '' and pending.failed_rules = '' then 'released'
                when current_verdict.failed_rules = '' and pending.failed_rules <> '' then 'quarantined'
                else 'reasons_changed'
            end as change
        from staging.{entity.versions_model} as current_verdict
        inner join {PREVIEW_SCHEMA}.{entity.versions_model} as pending
            on
                current_verdict.{entity.key} = pending.{entity.key}
                and current_verdict.version_key = pending.version_key
        where current_verdict.failed_rules <> pending.failed_rules
        order by 1
        """,
    )
    changes = VerdictChanges(entity.name)
    for key, change in rows:
        getattr(changes, change).append(key)
    return changes


def drop_preview(settings: Settings) -> None:
    with connect(settings, read_only=False) as conn:
        conn.cursor().execute(f"drop schema if exists {PREVIEW_SCHEMA} cascade")
