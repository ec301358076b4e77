# The README's two commands: `make run` and `make test`. Everything installs from this folder's files.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml requirements.lock | cksum | cut -d' ' -f1)
SPARK_STAMP := $(VENV)/.spark-$(shell cat pyproject.toml requirements.lock | cksum | cut -d' ' -f1)

.PHONY: install install-spark browser run test test-spark spark-server lint sql-lint proof soak clean

$(STAMP): pyproject.toml requirements.lock
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c requirements.lock -e '.[dev]'
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

install: $(STAMP)

## make install-spark: the `spark` extra too (dbt-spark, PyHive, pyspark with the jars of a local Spark), and
## Delta Lake's jars for that Spark from Maven Central into .spark-jars/ (git-ignored): Delta 4.4.0 is built
## for Spark 4.2 (its release notes; no Delta release supports Spark 4.3 yet, hence pyspark 4.2.1). Maven's
## local repository caches them; once in .spark-jars/ they are not fetched again.
$(SPARK_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c requirements.lock -e '.[dev,spark]'
	rm -f $(VENV)/.spark-*
	touch $(SPARK_STAMP)

DELTA_VERSION := 4.4.0
DELTA_SPARK := 4.2
SPARK_JARS := .spark-jars
DELTA_ARTIFACTS := io.delta:delta-spark_$(DELTA_SPARK)_2.13:$(DELTA_VERSION) io.delta:delta-storage:$(DELTA_VERSION)
DELTA_STAMP := $(SPARK_JARS)/.delta-$(DELTA_SPARK)-$(DELTA_VERSION)
$(DELTA_STAMP):
	rm -rf $(SPARK_JARS) && mkdir -p $(SPARK_JARS)
	for artifact in $(DELTA_ARTIFACTS); do \
		mvn --batch-mode --quiet dependency:copy -Dartifact=$$artifact -DoutputDirectory=$(SPARK_JARS) || exit 1; \
	done
	touch $@

install-spark: $(SPARK_STAMP) $(DELTA_STAMP)


## make browser: the Debian packages the tests use besides Python's — headless Chromium, which
## tests/contract/test_report.py opens `elt report`'s page with, and jq, which reads the event stream as the
## runbook's examples do; installed (as root, from Debian's packages) only when the machine has none.
browser:
	command -v chromium >/dev/null && command -v jq >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium jq; }

## make run: sample sources (simulated), the whole ELT on the embedded DuckDB, a one-line summary
run: install
	$(BIN)/elt demo

## make test: lint (ruff; sqlfluff on DuckDB and PostgreSQL inside pytest) and every test, each warehouse test on
## the warehouses its marker names (tests/conftest.py: the dialect-sensitive stories on both, the rest shared
## between DuckDB and PostgreSQL), spread over WORKERS pytest processes (default: one per CPU); each has its own
## PostgreSQL server and folders. The long proofs (`on_demand`: the convergence property, the random kills) are
## `make proof` and `make soak`; every warehouse test on every warehouse is `make test-matrix`.
test: install browser lint
	$(BIN)/pytest -n $(or $(WORKERS),auto) --dist worksteal -m "not on_demand and not long" --durations=30

## make test-matrix: every warehouse test on DuckDB and on PostgreSQL (ELT_TEST_MATRIX=full), and the `long`
## stories make test leaves out (the same days on both warehouses, the server's refusals). Long: about 100 min
## here; its last result is tests/results/matrix.txt.
.PHONY: test-matrix
test-matrix: install browser lint
	mkdir -p tests/results
	ELT_TEST_MATRIX=full $(BIN)/pytest -n $(or $(WORKERS),auto) --dist worksteal -m "not on_demand" --durations=40 \
		> tests/results/matrix.txt 2>&1; status=$$?; tail -n 3 tests/results/matrix.txt; exit $$status

## make test-spark: the Spark suite CI runs (local mode: each pytest worker starts a Thrift server from
## pyspark's jars and Delta Lake's, Java 17 on the PATH): Delta's MERGE and DELETE, every validation rule, the
## canonical columns, the lake (re-deliveries, incomplete loads), elt check, and dbt's conformance class for
## the delete+insert strategy the project adds on Spark.
SPARK_TESTS := tests/contract/test_validation_rules.py tests/contract/test_canonical_columns.py \
	tests/loaders/test_spark_lake.py tests/loaders/test_spark_delta.py tests/loaders/test_check.py \
	tests/adapter/test_spark_conformance.py
test-spark: install-spark
	ELT_TEST_WAREHOUSES=spark $(BIN)/pytest -n $(or $(WORKERS),auto) --dist worksteal $(SPARK_TESTS)

## make test-spark-long: the multi-day contract stories on Spark (last good, late versions and files, late
## dimensions, the story against a full refresh, crash and resume): 4-14 min each in local mode, about 45 min
## in all; its last result is tests/results/spark-long.txt.
SPARK_LONG_TESTS := tests/contract/test_last_good.py tests/contract/test_late_arrivals.py \
	tests/contract/test_late_dimensions.py tests/contract/test_story.py tests/contract/test_crash_resume.py
.PHONY: test-spark-long
test-spark-long: install-spark
	mkdir -p tests/results
	ELT_TEST_WAREHOUSES=spark $(BIN)/pytest -n $(or $(WORKERS),auto) --dist worksteal --durations=20 \
		$(SPARK_LONG_TESTS) > tests/results/spark-long.txt 2>&1; status=$$?; tail -n 3 tests/results/spark-long.txt; exit $$status

## make spark-server: a Spark Thrift server in local mode on 127.0.0.1:10000 (metastore and tables in
## ./spark), for `ELT_TARGET=spark elt run` on a laptop; Ctrl-C stops it.
spark-server: install-spark
	$(BIN)/python -m loaders.warehouse.spark_server --folder spark --port 10000

## make proof: the convergence property (any sequence of invocations = a full refresh) with a large,
## random budget on both warehouses; EXAMPLES=N per warehouse (default 50). Long: about 1 min an example.
proof: install
	PROOF_EXAMPLES=$(or $(EXAMPLES),50) PROOF_RANDOM=1 $(BIN)/pytest tests/contract/test_convergence_property.py

## make soak: hundreds of random SIGKILLs of elt run (SOAK_KILLS, default 300) on both warehouses; prints
## kills tried by phase, API faults injected and rows lost (must be 0); then PostgreSQL lost under runs
## (CRASHES, default 8: backends terminated or the server crashed at random moments). Long: hours.
soak: install
	SOAK_KILLS=$(or $(KILLS),300) $(BIN)/pytest -s tests/contract/test_random_kills.py
	LOST_WAREHOUSE_CRASHES=$(or $(CRASHES),8) $(BIN)/pytest -s tests/contract/test_losing_the_warehouse.py

## make bench-explain: the cost of an incremental run after a 1 % change vs a full refresh, at ORDERS orders
## (default 1000000) on TARGET (duckdb, postgres or both, the default), with EXPLAIN ANALYZE of the
## incremental int_orders/int_payments/order_items; writes bench/results/. BENCH_ARGS: more options (--help).
## Long: about an hour at 1 M on both.
.PHONY: bench-explain
bench-explain: install
	$(BIN)/python -m bench.explain --orders $(or $(ORDERS),1000000) --target $(or $(TARGET),both) $(BENCH_ARGS)

## make bench: each loader's rows/s beside the raw limit of its path, and the cost of `elt run` (first, after a
## 1 % change against a full refresh, with no change; wall, CPU, peak RSS per process, dlt's folder) on the
## simulator's sources at ORDERS orders (default 1000000; SCALE=10M for 10,000,000, or 1M, 100k) and at a
## tenth of them, on TARGET (duckdb, postgres or both, the default); writes bench/results.json and
## bench/results.md. BENCH_ARGS: more options (--help).
.PHONY: bench
bench: install
	$(BIN)/python -m bench.bench $(if $(SCALE),--scale $(SCALE),--orders $(or $(ORDERS),1000000)) --target $(or $(TARGET),both) $(BENCH_ARGS)

## make lint: ruff, and import-linter's contracts (pyproject.toml): the package's layers, no cycles
lint: install
	$(BIN)/ruff check loaders tests bench docs/examples
	$(BIN)/ruff format --check loaders tests bench docs/examples
	$(BIN)/lint-imports

clean:
	rm -rf target logs .elt sample lake spark warehouse.duckdb warehouse.duckdb.wal warehouse.duckdb.lock
