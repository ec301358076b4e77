"""The options several commands share, declared once (as dbt-core's `params.py`)."""

from __future__ import annotations

import enum
from pathlib import Path
from typing import Annotated

import typer

from loaders.core.registry import PROJECT_DIR, SOURCE_NAMES

# the registry's names are the choices (dbt_project.yml); a StrEnum member is its name as a str
SourceName = enum.StrEnum("SourceName", {name: name for name in SOURCE_NAMES})

Source = Annotated[SourceName, typer.Argument(metavar="SOURCE", show_default=False)]
Sources = Annotated[list[SourceName] | None, typer.Argument(metavar="[SOURCE]...", show_default=False)]
OnlySource = Annotated[
    SourceName | None,
    typer.Option("--source", metavar="SOURCE", help=f"only this source: {', '.join(SOURCE_NAMES)}", show_default=False),
]
Json = Annotated[bool, typer.Option("--json", help="one JSON document on stdout, for machines")]
Yes = Annotated[bool, typer.Option("--yes", help="do it; without it, print what it would do and stop")]
DryRun = Annotated[bool, typer.Option("--dry-run", help="say what would happen; write nothing")]
FullRefresh = Annotated[bool, typer.Option("--full-refresh", help="rebuild dbt's incremental models from raw")]

SAMPLE = PROJECT_DIR / "sample"
Root = Annotated[Path, typer.Option(help="the folder of the sample sources")]
