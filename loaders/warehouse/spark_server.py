"""A Spark Thrift server in local mode, from the jars of the `pyspark` wheel: the embedded Spark warehouse.

On a cluster the Thrift server (or Databricks' SQL endpoint) is already there; on a laptop and in the tests
this one stands in for it: `local[2]`, bound to 127.0.0.1, its Hive metastore (Derby) and its managed tables
in one folder, Delta Lake in its catalog (the jars `make install-spark` puts in `.spark-jars/`, see
DELTA_CONF). It listens until stopped:

    python -m loaders.warehouse.spark_server --folder spark --port 10000     # then ELT_TARGET=spark elt run

The same settings as a cluster's session (UTC, ANSI off) are also set by profiles.yml and by the harness's
connection, so the server's defaults decide nothing.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

START_PATIENCE_SECONDS = 180
SESSION_CONF = {
    "spark.sql.session.timeZone": "UTC",
    # dbt-spark's session mode turns ANSI off; the Thrift server's sessions are made to agree
    "spark.sql.ansi.enabled": "false",
}
# Delta Lake in Spark's own catalog, so `using delta` tables, MERGE and DELETE work: static settings, read
# when the session starts (a cluster's Thrift server or job sets the same, as Delta's documentation says)
DELTA_CONF = {
    "spark.sql.extensions": "io.delta.sql.DeltaSparkSessionExtension",
    "spark.sql.catalog.spark_catalog": "org.apache.spark.sql.delta.catalog.DeltaCatalog",
}
# where `make install-spark` puts the Delta jars (Maven Central, at the versions the Makefile pins)
JARS_FOLDER = Path(__file__).resolve().parents[2] / ".spark-jars"


def spark_home() -> Path:
    import pyspark

    return Path(pyspark.__file__).parent


def delta_jars() -> list[Path]:
    """The Delta Lake jars for the local Spark: those in ELT_SPARK_JARS (a folder), by default the project's
    `.spark-jars/`. None there is a broken install, said at once rather than as a missing class later."""
    folder = Path(os.environ.get("ELT_SPARK_JARS") or JARS_FOLDER)
    jars = sorted(folder.glob("*.jar"))
    if not jars:
        raise RuntimeError(f"no Delta Lake jars in {folder}: `make install-spark` fetches them")
    return jars


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def server_command(folder: Path, port: int) -> list[str]:
    conf = {
        "spark.driver.bindAddress": "127.0.0.1",
        "spark.driver.host": "127.0.0.1",
        "spark.ui.enabled": "false",
        "spark.sql.warehouse.dir": str(folder / "warehouse"),
        "spark.hadoop.javax.jdo.option.ConnectionURL": f"jdbc:derby:;databaseName={folder}/metastore_db;create=true",
        "spark.driver.extraJavaOptions": f"-Dderby.system.home={folder}",
        # small local data: a few shuffle partitions, not Spark's 200 (adaptive execution coalesces the rest)
        "spark.sql.shuffle.partitions": "4",
        # on the driver's own classpath, not `spark.jars`: a Thrift session's class loader may not see those
        "spark.driver.extraClassPath": os.pathsep.join(str(jar) for jar in delta_jars()),
        **DELTA_CONF,
        **SESSION_CONF,
    }
    command = [str(spark_home() / "bin" / "spark-submit"), "--master", "local[2]", "--name", "elt-thrift-server"]
    for name, value in conf.items():
        command += ["--conf", f"{name}={value}"]
    command += ["--class", "org.apache.spark.sql.hive.thriftserver.HiveThriftServer2", "spark-internal"]
    command += [
        "--hiveconf",
        f"hive.server2.thrift.port={port}",
        "--hiveconf",
        "hive.server2.thrift.bind.host=127.0.0.1",
    ]
    return command


def _listening(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(1)
        return probe.connect_ex(("127.0.0.1", port)) == 0


@contextlib.contextmanager
def local_thrift_server(folder: Path, port: int | None = None) -> Iterator[dict[str, str]]:
    """Start the server with its metastore and tables in `folder`; yields the ELT_SPARK_* variables that
    point at it. Stopped (its whole process group) when the block ends."""
    folder = folder.resolve()
    folder.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    env = {**os.environ, "SPARK_HOME": str(spark_home()), "SPARK_LOCAL_IP": "127.0.0.1"}
    log_path = folder / "thrift-server.log"
    with open(log_path, "w") as log:
        server = subprocess.Popen(
            server_command(folder, port),
            cwd=folder,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + START_PATIENCE_SECONDS
        while not _listening(port):
            if server.poll() is not None or time.monotonic() > deadline:
                tail = "\n".join(log_path.read_text(errors="replace").splitlines()[-20:])
                raise RuntimeError(f"the Spark Thrift server did not start (log {log_path}):\n{tail}")
            time.sleep(1)
        yield {"ELT_SPARK_HOST": "127.0.0.1", "ELT_SPARK_PORT": str(port), "ELT_SPARK_METHOD": "thrift"}
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folder", type=Path, default=Path("spark"), help="metastore and managed tables")
    parser.add_argument("--port", type=int, default=10000)
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, _interrupt)  # stopped by a service manager: stop the server too
    with contextlib.suppress(KeyboardInterrupt), local_thrift_server(args.folder, args.port) as env:
        print(" ".join(f"{name}={value}" for name, value in env.items()), "ELT_TARGET=spark", flush=True)
        while True:
            time.sleep(3600)
    return 0


def _interrupt(*_: object) -> None:
    raise KeyboardInterrupt


if __name__ == "__main__":
    raise SystemExit(main())
