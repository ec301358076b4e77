"""A throwaway PostgreSQL server for the test suite, started from the machine's server binaries.

Used when no PG* variable points at a server. PostgreSQL refuses to run as root, so as root the server
runs as the `postgres` system user, with its data in a temporary folder it owns. Its default time zone is
deliberately not UTC (SERVER_TIME_ZONE): every session the project opens must pin UTC or not depend on it.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

SERVER_TIME_ZONE = "America/New_York"


def server_binaries() -> Path:
    found = shutil.which("pg_ctl")
    if found:
        return Path(found).parent
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    if not candidates:
        raise RuntimeError("PostgreSQL server binaries (initdb, pg_ctl) not found: install postgresql-15")
    return Path(candidates[-1]).parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _as_server_user(args: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *args] if os.geteuid() == 0 else args


class LocalServer:
    """A PostgreSQL server of the machine's binaries, data in a temporary folder: started, stopped the way a
    crash stops one (`pg_ctl stop -m immediate`), started again on the same port and data."""

    def __init__(self) -> None:
        self.bin_dir = server_binaries()
        self.root = Path(tempfile.mkdtemp(prefix="elt-pg-"))
        self.data, self.log = self.root / "data", self.root / "server.log"
        if os.geteuid() == 0:
            shutil.chown(self.root, "postgres", "postgres")
            self.root.chmod(0o700)
        self.port = free_port()
        initdb = [str(self.bin_dir / "initdb"), "-D", str(self.data), "-U", "postgres", "--auth=trust"]
        subprocess.run(_as_server_user([*initdb, "-E", "UTF8", "--locale=C"]), check=True, capture_output=True)

    @property
    def env(self) -> dict[str, str]:
        return {
            "PGHOST": "127.0.0.1",
            "PGPORT": str(self.port),
            "PGUSER": "postgres",
            "PGPASSWORD": "",
            "PGDATABASE": "postgres",
        }

    def start(self) -> None:
        options = (
            f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off "
            "-c synchronous_commit=off -c full_page_writes=off -c max_connections=50 "
            f"-c timezone={SERVER_TIME_ZONE}"
        )
        subprocess.run(
            _as_server_user(
                [str(self.bin_dir / "pg_ctl"), "-D", str(self.data), "-o", options, "-l", str(self.log), "-w", "start"]
            ),
            check=True,
            capture_output=True,
        )

    def crash(self) -> None:
        """Stop at once, as a crashed server does: every session ends, nothing is shut down cleanly."""
        subprocess.run(
            _as_server_user([str(self.bin_dir / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "stop"]),
            capture_output=True,
        )

    def remove(self) -> None:
        self.crash()
        shutil.rmtree(self.root, ignore_errors=True)


@contextlib.contextmanager
def throwaway_postgres() -> Iterator[dict[str, str]]:
    """Start a server on a free loopback port; yield the libpq variables that reach it; stop it."""
    server = LocalServer()
    server.start()
    try:
        yield server.env
    finally:
        server.remove()
