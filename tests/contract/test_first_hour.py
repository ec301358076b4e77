"""The first hour: what a new user meets after `make run`, as they run it (subprocesses, the README's commands).

- `elt run` with no source configured fails within seconds, one line per source naming the variables to
  set and the command that runs the sample instead, and runs no dbt build (nothing was loaded);
- `elt simulate generate --root DIR --days 2` writes a world; `elt demo`, then `elt demo --next-day` (the
  README's next step: the sample world's next day, as a daily schedule meets it) exits 0;
- with stderr in a file, every line of it is one JSON object (dbt's own messages included) — `jq` reads it;
- SIGINT (Ctrl-C) during `elt demo`'s run exits 130 with a summary line and a ledger row `interrupted`,
  SIGTERM during dbt exits 143; the next run exits 0 with its books balanced;
- `elt status | cat` cuts no value short;
- `elt state get|set|clear`: read, pin and clear a source's cursor, keeping raw, ledgered;
- dlt's own CLI reads the project's pipelines in the folder `elt status` names.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

from loaders.core.outcomes import ExitCode
from loaders.simulate import generated_day
from tests.support.cli import PROJECT_DIR, elt

NO_SOURCES = {name: "" for name in os.environ if name.startswith("SOURCES__")}


def deployment(tmp_path: Path) -> dict[str, str]:
    """A DuckDB deployment of its own: warehouse file, dlt folder, dbt artifacts, sample folder."""
    return {
        **NO_SOURCES,
        "ELT_TARGET": "duckdb",
        "ELT_DUCKDB_PATH": str(tmp_path / "warehouse.duckdb"),
        "ELT_STATE_DIR": str(tmp_path / "state"),
        "DBT_TARGET_PATH": str(tmp_path / "target"),
        "ELT_MAX_DEAD_LETTER_RATE": "1",
    }


def events(stderr: str) -> list[dict]:
    return [json.loads(line) for line in stderr.splitlines()]


def test_a_run_with_no_source_configured_says_what_to_set_and_builds_nothing(tmp_path: Path) -> None:
    """No dbt is started (how long the refusal takes is the bench's business, not a test's)."""
    proc = elt("run", env=deployment(tmp_path))
    assert proc.returncode == ExitCode.LOAD_FAILED, proc.stdout + proc.stderr[-3000:]
    line = proc.stdout.strip()
    assert line.count("\n") == 0 and "nothing loaded, so no dbt build" in line, line
    for variable in (
        "SOURCES__SHOP_API__BASE_URL",
        "SOURCES__SHOP_API__TOKEN",
        "SOURCES__APP_DB__CREDENTIALS",
        "SOURCES__PAYMENTS_FILES__BUCKET_URL",
    ):
        assert variable in line, variable
    assert "elt demo --next-day" in line
    failed = [event for event in events(proc.stderr) if event["event"] == "load_failed"]
    assert [event["source"] for event in failed] == ["shop_api", "app_db", "payments_files"]
    assert not [event for event in events(proc.stderr) if event["event"].startswith("dbt_")]


def test_simulate_generate_writes_a_world(tmp_path: Path) -> None:
    proc = elt("simulate", "generate", "--root", str(tmp_path / "world"), "--days", "2")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "wrote day 2" in proc.stdout
    assert (tmp_path / "world" / "app.db").is_file() and (tmp_path / "world" / "api.db").is_file()
    assert list((tmp_path / "world" / "payments").glob("payments_*.csv"))
    assert generated_day(tmp_path / "world") == 2


def test_the_next_step_after_make_run_and_its_event_stream(tmp_path: Path) -> None:
    env, sample = deployment(tmp_path), str(tmp_path / "sample")
    first = elt("demo", "--root", sample, env=env)
    assert first.returncode == 0, first.stdout + first.stderr[-3000:]
    assert first.stdout.startswith("elt run ok:") and "elt demo --next-day" in first.stdout
    (tmp_path / "events.jsonl").write_text(first.stderr)
    # every line of stderr is one JSON object: jq reads the whole stream, dbt's messages among it
    jq = subprocess.run(["jq", "-c", ".", str(tmp_path / "events.jsonl")], capture_output=True, text=True)
    assert jq.returncode == 0, jq.stderr
    kinds = {event["event"] for event in events(first.stderr)}
    assert {"run_started", "load_finished", "dbt_log", "book", "run_finished"} <= kinds, kinds

    nxt = elt("demo", "--root", sample, "--next-day", env=env)
    assert nxt.returncode == 0, nxt.stdout + nxt.stderr[-3000:]
    assert nxt.stdout.startswith("elt run ok:") and "day 4" in nxt.stdout
    assert generated_day(Path(sample)) == 4


def signalled_demo(env: dict[str, str], sample: str, signum: int, when: str) -> tuple[int, str, list[dict]]:
    """`elt demo --next-day`, sent `signum` once its events show `when` (as a terminal's Ctrl-C or a
    scheduler's stop reaches the process): its exit code, stdout and events."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "loaders.cli", "demo", "--root", sample, "--next-day"],
        cwd=PROJECT_DIR,
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stderr is not None
    seen: list[str] = []
    for line in proc.stderr:
        seen.append(line)
        if f'"event": "{when}"' in line:
            proc.send_signal(signum)
            break
    rest = proc.stderr.read()
    code = proc.wait(timeout=600)
    out = proc.stdout.read() if proc.stdout else ""
    return code, out, events("".join(seen) + rest)


def test_ctrl_c_and_sigterm_stop_a_run_ledgered_and_the_next_run_resumes(tmp_path: Path) -> None:
    env, sample = deployment(tmp_path), str(tmp_path / "sample")
    assert elt("demo", "--root", sample, "--days", "1", env=env).returncode == 0

    code, out, stream = signalled_demo(env, sample, signal.SIGINT, "load_started")
    assert code == 130, out
    assert out.startswith("elt run FAILED(interrupted): interrupted by SIGINT during the load of"), out
    assert [e for e in stream if e["event"] == "run_interrupted"]

    code, out, stream = signalled_demo(env, sample, signal.SIGTERM, "dbt_started")
    assert code == 143, out
    assert out.startswith("elt run FAILED(interrupted): interrupted by SIGTERM during dbt build"), out
    assert [e for e in stream if e["event"] == "dbt_interrupted"]

    status = json.loads(elt("status", "--json", env=env).stdout)
    assert [(run["status"], run["exit_code"]) for run in status["runs"][:2]] == [
        ("interrupted", 143),
        ("interrupted", 130),
    ]
    assert status["runs"][0]["error"] == "interrupted by SIGTERM during dbt build"

    resumed = elt("demo", "--root", sample, "--next-day", env=env)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr[-3000:]
    books = [e for e in events(resumed.stderr) if e["event"] == "book"]
    assert books and all(book["balanced"] for book in books), books


def test_status_in_a_pipe_cuts_no_value_short(tmp_path: Path) -> None:
    env = deployment(tmp_path)
    assert elt("demo", "--root", str(tmp_path / "sample"), "--days", "1", env=env).returncode == 0
    assert elt("run", env=env).returncode != 0  # no source configured: a failed run, with its error
    document = json.loads(elt("status", "--json", env=env).stdout)
    piped = elt("status", env=env).stdout
    assert "…" not in piped
    for run in document["runs"]:
        assert run["run_id"] in piped and run["started_at"].endswith("Z"), run
        for word in (run["error"] or "").split():
            assert word in piped, word
    for source in document["sources"]:
        # the cursor's JSON, whatever the table's line breaks and padding did to it
        compact = json.dumps(source["cursor"], separators=(",", ":"))
        assert compact in piped.replace("\n", "").replace("│", "").replace(" ", ""), (source, piped)


def test_state_get_set_clear_and_dlts_own_cli(tmp_path: Path) -> None:
    env, sample = deployment(tmp_path), str(tmp_path / "sample")
    assert elt("demo", "--root", sample, "--days", "2", env=env).returncode == 0
    state = json.loads(elt("state", "get", "shop_api", env=env).stdout)
    cursor = state["resources"]["orders"]["incremental"]["_cursor_at"]["last_value"]
    assert cursor.startswith("2024-03-02"), state

    dry = elt("state", "set", "shop_api", "orders", "--cursor", "2024-03-01", env=env)
    assert dry.returncode == 0 and "nothing changed" in dry.stdout, dry.stdout
    assert json.loads(elt("state", "get", "shop_api", "orders", env=env).stdout) == {
        **state,
        "resources": {"orders": state["resources"]["orders"]},
    }
    pinned = elt("state", "set", "shop_api", "orders", "--cursor", "2024-03-01", "--yes", env=env)
    assert pinned.returncode == 0, pinned.stdout + pinned.stderr[-3000:]
    now = json.loads(elt("state", "get", "shop_api", "orders", env=env).stdout)
    assert now["resources"]["orders"]["incremental"]["_cursor_at"]["last_value"] == "2024-03-01T00:00:00Z"

    cleared = elt("state", "clear", "payments_files", "--yes", env=env)
    assert cleared.returncode == 0, cleared.stdout + cleared.stderr[-3000:]
    assert json.loads(elt("state", "get", "payments_files", env=env).stdout)["resources"] == {}
    ledger = json.loads(elt("status", "--json", env=env).stdout)["runs"]
    assert [run["command"] for run in ledger[:2]] == ["state clear", "state set"]

    # the next run reads every settlement file again and the API from the pinned cursor, keeping raw: what it
    # reads again merges onto itself, as re-read versions
    again = elt("demo", "--root", sample, "--next-day", env=env)
    assert again.returncode == 0, again.stdout + again.stderr[-3000:]
    finished = {e["source"]: e for e in events(again.stderr) if e["event"] == "load_finished"}
    assert finished["payments_files"]["unchanged"] > 0 and finished["shop_api"]["unchanged"] > 0, finished

    # dlt's own CLI, on the folder `elt status` names
    folder = json.loads(elt("status", "--json", env=env).stdout)["pipelines_dir"]
    dlt = subprocess.run(
        [str(Path(sys.executable).with_name("dlt")), "pipeline", "--pipelines-dir", folder, "elt_shop_api", "info"],
        capture_output=True,
        text=True,
    )
    assert dlt.returncode == 0 and "raw_shop_api" in dlt.stdout, dlt.stdout + dlt.stderr


def test_status_shows_dbts_own_freshness_verdicts(tmp_path: Path) -> None:
    env = deployment(tmp_path)
    assert elt("demo", "--root", str(tmp_path / "sample"), "--days", "1", env=env).returncode == 0
    unchecked = json.loads(elt("status", "--json", env=env).stdout)["sources"]
    assert all(source["dbt_freshness"] is None for source in unchecked), unchecked
    checked = json.loads(elt("status", "--freshness", "--json", env=env).stdout)["sources"]
    # the sample's loads are minutes old: dbt's own verdict, per source, from its `dbt source freshness`
    assert {source["source"]: source["dbt_freshness"] for source in checked} == {
        "shop_api": "pass",
        "app_db": "pass",
        "payments_files": "pass",
    }
    assert all(source["dbt_freshness_checked_at"].endswith("Z") for source in checked), checked
