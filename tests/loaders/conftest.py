"""The loaders' tests. Spark's own (test_spark_delta.py) run in `make test-spark`, which installs Spark."""

from __future__ import annotations

import os

collect_ignore = (
    [] if "spark" in os.environ.get("ELT_TEST_WAREHOUSES", "duckdb,postgres").split(",") else ["test_spark_delta.py"]
)
