"""One module per operation of the command line (run, load, build, backfill, dead letters, rejudge, reset,
move, status, report, check, grants): plain functions that take the settings and return a `Result`; the
run pattern they share (lock, ledger, dbt) is `runner.py`'s."""
