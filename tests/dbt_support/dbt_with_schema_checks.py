"""`python -m tests.dbt_support.dbt_with_schema_checks <dbt arguments>`: dbt, with its YAML schema checks on.

dbt 1.11 validates the project's YAML against its JSON schemas (where PropertyMovedToConfigDeprecation,
CustomKeyInConfigDeprecation and the like come from) only when every adapter of the invocation is one it
lists (`_JSONSCHEMA_SUPPORTED_ADAPTERS` in dbt/jsonschemas/jsonschemas.py: BigQuery, Databricks,
Redshift, Snowflake); it has no flag or variable to ask for them on DuckDB or PostgreSQL. This runs dbt's
own command line with that gate open, so the checks dbt will make on every adapter are made here now.
"""

from __future__ import annotations

import sys

import dbt.jsonschemas.jsonschemas as jsonschemas
from dbt.cli.main import cli


def main() -> None:
    jsonschemas._can_run_validations = lambda: True
    cli(args=sys.argv[1:], prog_name="dbt")


if __name__ == "__main__":
    main()
