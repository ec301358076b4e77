"""The harness's SQL for Spark, which PyHive cannot parameterize for it: literals and the ledger's DDL."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from loaders.warehouse import NOT_YET
from loaders.warehouse.ops_tables import ALL
from loaders.warehouse.spark import spark_ddl, spark_literal
from tests.support.cli import elt


@pytest.mark.parametrize(
    ("value", "literal"),
    [
        (None, "null"),
        (True, "true"),
        (3, "3"),
        (0.25, "0.25"),
        ("plain", "'plain'"),
        ("it's", "'it\\'s'"),
        ("back\\slash' or '1'='1", "'back\\\\slash\\' or \\'1\\'=\\'1'"),
        # an aware instant is written in UTC, the session's zone
        (
            datetime(2024, 3, 1, 5, 30, tzinfo=timezone(timedelta(hours=5, minutes=30))),
            "timestamp'2024-03-01 00:00:00.000000'",
        ),
    ],
)
def test_values_become_spark_literals(value: object, literal: str) -> None:
    assert spark_literal(value) == literal


def test_the_ledgers_tables_in_spark_spelling() -> None:
    for table in ALL:
        statement = table.ddl
        spark = spark_ddl(statement)
        lowered = spark.lower()
        assert "primary key" not in lowered and "varchar" not in lowered and "not null" not in lowered, spark
        assert "with time zone" not in lowered
        if lowered.lstrip().startswith("create table"):
            assert lowered.rstrip().endswith("using parquet"), spark
            # every column is kept: as many as in the original, counted by their commas outside keys
            assert spark.count("\n") == statement.count("\n") - statement.lower().count("primary key (")


@pytest.mark.parametrize("command", NOT_YET["spark"])
def test_commands_not_written_for_spark_refuse_clearly(command: str) -> None:
    proc = elt(command, "--help", env={"ELT_TARGET": "spark"})
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "not available on Spark yet" in proc.stderr
