"""Indexes on the raw tables, for the incremental models' look-ups (PostgreSQL; DuckDB needs none).

The intermediate models read raw rows by load id (the loads they have not consumed) and then every
version of the affected keys. dlt creates no index, so after each load the harness makes sure each raw
table has one on its natural key and one on `_dlt_load_id`, and refreshes the planner's statistics of
the tables that load changed (a plan chosen on the statistics of an empty table would scan for ever).
The natural key is read from the dlt schema's primary-key hint, so a new source needs no entry here.
"""

from __future__ import annotations

from loaders.settings import Settings
from loaders.warehouse import connect


def ensure_raw_indexes(settings: Settings, source: str) -> None:
    if settings.target != "postgres":
        return
    from loaders.pipelines import pipeline, raw_dataset

    schema = pipeline(settings, source).default_schema
    dataset = raw_dataset(source)
    statements = []
    for table in schema.data_tables():
        name = table["name"]
        keys = [column for column, hints in table["columns"].items() if hints.get("primary_key")]
        for column in [*keys[:1], "_dlt_load_id"]:
            statements.append(f'create index if not exists "{name}__{column}" on {dataset}."{name}" ("{column}")')
        statements.append(f'analyze {dataset}."{name}"')
    with connect(settings, read_only=False) as conn:
        cursor = conn.cursor()
        for statement in statements:
            cursor.execute(statement)
