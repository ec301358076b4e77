"""The sources, one folder each (dlt's verified-sources shape): `__init__.py` holds the `@dlt.source`,
`helpers.py` its client, `settings.py` its constants, `records.py` its record models, and `spec.py` the
`SPEC` the rest of the project reads (loaders/landing/spec.py). `spec(name)` finds a registered one."""

from __future__ import annotations

import importlib

from loaders.core.registry import SOURCE_NAMES, require_source
from loaders.landing.spec import SourceSpec


def spec(name: str) -> SourceSpec:
    """The spec of a registered source (imports its dlt source)."""
    found: SourceSpec = importlib.import_module(f"loaders.sources.{require_source(name)}.spec").SPEC
    return found


def specs() -> dict[str, SourceSpec]:
    """Every registered source's spec, in the registry's order."""
    return {name: spec(name) for name in SOURCE_NAMES}
