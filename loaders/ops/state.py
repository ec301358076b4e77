"""`elt state get|set|clear SOURCE [RESOURCE]`: a source's cursors and manifests, read, pinned or cleared.

The state is dlt's (`_dlt_pipeline_state`, committed with each load): `get` reads the state the warehouse
last committed; `set` pins a resource's cursor (e.g. to start later than the beginning), `clear` forgets
what a resource has taken (its cursor, its file manifest, its versionless records) so the next run reads
the source from the start — raw is kept, and what is read again merges onto itself. Either change is
committed to the warehouse as a load of its own, under the run lock, and ledgered; without `--yes` it says
what it would change and changes nothing.
"""

from __future__ import annotations

import json
from copy import deepcopy
from typing import Any

from loaders.core.events import json_default
from loaders.core.outcomes import ExitCode, UsageError
from loaders.core.registry import pipeline_name
from loaders.core.settings import Settings
from loaders.core.timestamps import parse_timestamp
from loaders.landing.pipelines import pipeline
from loaders.ops.runner import Result, ledgered
from loaders.warehouse import dialect
from loaders.warehouse.locks import run_lock, writer_lock


def resources_state(state: dict[str, Any], source: str) -> dict[str, Any]:
    return state.get("sources", {}).get(source, {}).get("resources", {})


def chosen(resources: dict[str, Any], source: str, resource: str | None) -> dict[str, Any]:
    """The resources a command is about: one (UsageError when the source has no state for it), or all."""
    if resource is None:
        return resources
    if resource not in resources:
        known = ", ".join(resources) or "none yet"
        raise UsageError(f"{source} has no state for resource {resource!r} (resources with state: {known})")
    return {resource: resources[resource]}


def committed_state(settings: Settings, source: str) -> dict[str, Any]:
    """The source's pipeline state as the warehouse last committed it (the local copy brought up to date)."""
    pipe = pipeline(settings, source)
    pipe.sync_destination()
    return dict(pipe.state)


def get(settings: Settings, source: str, resource: str | None) -> Result:
    resources = chosen(resources_state(committed_state(settings, source), source), source, resource)
    document = {
        "source": source,
        "pipeline": pipeline_name(source),
        "pipelines_dir": str(dialect(settings).pipelines_dir()),
        "resources": resources,
    }
    return Result(ExitCode.OK, json.dumps(document, indent=2, default=json_default, sort_keys=True))


def change(
    settings: Settings, source: str, resource: str | None, cursor: str | None, yes: bool, command: str
) -> Result:
    """`set` (a cursor given) or `clear` (none) the resources' state, committed as a load of its own."""
    pinned = None
    if cursor is not None:
        pinned = parse_timestamp(cursor)
        if pinned is None:
            raise UsageError(f"--cursor {cursor!r} is not a date or UTC timestamp (e.g. 2024-03-01T06:00:00Z)")
    with run_lock(settings) as lock:
        pipe = pipeline(settings, source)
        pipe.sync_destination()
        targets = chosen(resources_state(dict(pipe.state), source), source, resource)
        plan = describe_change(source, targets, cursor if pinned else None)
        if not yes:
            return Result(ExitCode.OK, f"{plan}\nnothing changed: run again with --yes to do it")
        arguments = [source, *([resource] if resource else []), *(["--cursor", cursor] if cursor else [])]
        with ledgered(settings, command, arguments, lock) as run, writer_lock(settings):
            run.phase = f"committing {source}'s state"
            with pipe.managed_state(extract_state=True) as state:
                resources = resources_state(state, source)
                for name in targets:
                    if pinned is None:
                        del resources[name]
                    else:
                        for incremental in resources[name].get("incremental", {}).values():
                            incremental["last_value"] = pinned
            pipe.normalize()
            loaded = pipe.load()
            load_ids = list(loaded.loads_ids) if loaded is not None else []
            run.finish(ExitCode.OK, f"elt {command} {source}: {plan.splitlines()[0]} (load {', '.join(load_ids)})")
    return Result(run.exit_code, run.summary)


def describe_change(source: str, targets: dict[str, Any], cursor: str | None) -> str:
    names = ", ".join(targets) or "none"
    if cursor is None:
        lines = [f"clear the state of {source}'s resources {names}: the next run reads them from the start"]
        for name, state in targets.items():
            lines.append(f"  {name}: {json.dumps(deepcopy(state), default=json_default, sort_keys=True)[:300]}")
        return "\n".join(lines)
    pinned = [name for name, state in targets.items() if state.get("incremental")]
    if not pinned:
        raise UsageError(f"{source}'s resources {names} have no cursor to set (a file manifest can only be cleared)")
    return f"set the cursor of {source}'s resources {', '.join(pinned)} to {cursor}"
