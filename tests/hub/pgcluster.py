"""A throwaway PostgreSQL cluster for tests and benchmarks: initdb, pg_ctl, a free port.

The cluster lives in a fresh temporary directory and listens on 127.0.0.1 at a free port
(and a Unix socket in that directory), with trust authentication for the ``postgres``
superuser; ``stop()`` shuts it down and deletes everything. PostgreSQL refuses to run as
root, so as root the server programs run as the unprivileged ``postgres`` OS user (which the
Debian ``postgresql`` package creates) through ``runuser``.

If the server programs are missing or the cluster does not start, ``PgUnavailable`` says
exactly why; the test suite turns that into a failure, never a skip (issue 5: the suite runs
against both databases for real; ``scripts/test`` installs ``postgresql``).
"""

from __future__ import annotations

import atexit
import contextlib
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

BINDIR_ENV = "HCP_PG_BINDIR"  # where initdb and pg_ctl are, if not found by themselves
SERVICE_USER = "postgres"
START_TIMEOUT_S = 60


class PgUnavailable(RuntimeError):
    pass


def find_bindir() -> Path:
    candidates: list[str] = []
    if os.environ.get(BINDIR_ENV):
        candidates.append(os.environ[BINDIR_ENV])
    # Debian: /usr/lib/postgresql/<major>/bin, newest first.
    versions = glob.glob("/usr/lib/postgresql/*/bin")
    candidates += sorted(versions, key=lambda p: int(Path(p).parent.name), reverse=True)
    on_path = shutil.which("initdb")
    if on_path:
        candidates.append(str(Path(on_path).parent))
    for candidate in candidates:
        if (Path(candidate) / "initdb").exists() and (Path(candidate) / "pg_ctl").exists():
            return Path(candidate)
    raise PgUnavailable(
        "PostgreSQL server programs (initdb, pg_ctl) not found: install the Debian package "
        f"`postgresql` (scripts/test does so as root) or set {BINDIR_ENV}"
    )


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class PgCluster:
    def __init__(self, bindir: Path, root: Path, port: int, run_as: str | None) -> None:
        self.bindir = bindir
        self.root = root
        self.data = root / "data"
        self.sockets = root / "sockets"
        self.log = root / "server.log"
        self.port = port
        self.run_as = run_as
        self._counter = 0
        self._version: int | None = None

    @classmethod
    def start(cls, *, durable: bool = False) -> PgCluster:
        """Create and start a cluster. `durable=False` turns fsync off: fine for tests,
        not for benchmarks that claim commit rates."""
        bindir = find_bindir()
        run_as = None
        if os.geteuid() == 0:
            try:
                pwd.getpwnam(SERVICE_USER)
            except KeyError:
                raise PgUnavailable(
                    f"running as root, and there is no `{SERVICE_USER}` OS user to run "
                    "PostgreSQL as (the Debian `postgresql` package creates it)"
                ) from None
            run_as = SERVICE_USER
        root = Path(tempfile.mkdtemp(prefix="hcp-pg-"))
        cluster = cls(bindir, root, free_port(), run_as)
        atexit.register(cluster.stop)  # also when the run is interrupted
        try:
            cluster._init(durable)
        except BaseException:
            cluster.stop()
            raise
        return cluster

    def _cmd(self, *args: str) -> list[str]:
        return ["runuser", "-u", self.run_as, "--", *args] if self.run_as else list(args)

    def _run(self, *args: str) -> None:
        result = subprocess.run(
            self._cmd(*args), capture_output=True, text=True, timeout=START_TIMEOUT_S, check=False
        )
        if result.returncode != 0:
            log = self.log.read_text(errors="replace")[-2000:] if self.log.exists() else ""
            raise PgUnavailable(
                f"{' '.join(args[:2])} failed ({result.returncode}): "
                f"{result.stderr.strip() or result.stdout.strip()}\n{log}"
            )

    def _init(self, durable: bool) -> None:
        self.sockets.mkdir()
        if self.run_as:
            user = pwd.getpwnam(self.run_as)
            for path in (self.root, self.sockets):
                os.chown(path, user.pw_uid, user.pw_gid)
        self._run(
            str(self.bindir / "initdb"),
            "-D",
            str(self.data),
            "-U",
            "postgres",
            "--auth=trust",
            "-E",
            "UTF8",
            "--locale=C",
            "--no-sync",
        )
        options = [
            f"-p {self.port}",
            f"-k {self.sockets}",
            "-c listen_addresses=127.0.0.1",
            "-c max_connections=200",
        ]
        if not durable:
            options += ["-c fsync=off", "-c synchronous_commit=off", "-c full_page_writes=off"]
        self._run(
            str(self.bindir / "pg_ctl"),
            "start",
            "-w",
            "-t",
            str(START_TIMEOUT_S),
            "-D",
            str(self.data),
            "-l",
            str(self.log),
            "-o",
            " ".join(options),
        )

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def admin(self, sql: str) -> None:
        """Run one statement outside a transaction (CREATE/DROP DATABASE)."""
        import psycopg

        conninfo = f"host=127.0.0.1 port={self.port} user=postgres dbname=postgres"
        with psycopg.connect(conninfo, autocommit=True) as connection:
            connection.execute(sql.encode())

    def create_database(self, template: str | None = None, name: str | None = None) -> str:
        if name is None:
            self._counter += 1
            name = f"t{os.getpid()}_{self._counter}_{int(time.time() * 1000) % 100000}"
        # FILE_COPY (PostgreSQL 15+) copies the template's files instead of writing them
        # through the WAL: about 3x faster for a small schema.
        clause = f" TEMPLATE {template}" if template else ""
        if template and self.server_version() >= 150000:
            clause += " STRATEGY FILE_COPY"
        self.admin(f"CREATE DATABASE {name}{clause}")
        return name

    def server_version(self) -> int:
        if self._version is None:
            import psycopg

            conninfo = f"host=127.0.0.1 port={self.port} user=postgres dbname=postgres"
            with psycopg.connect(conninfo, autocommit=True) as connection:
                row = connection.execute("SHOW server_version_num").fetchone()
            assert row is not None
            self._version = int(row[0])
        return self._version

    def drop_database(self, name: str) -> None:
        self.admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")

    def stop(self) -> None:
        """Stop the server and delete the cluster; safe to call more than once."""
        if self.data.exists():
            with contextlib.suppress(Exception):
                subprocess.run(
                    self._cmd(
                        str(self.bindir / "pg_ctl"), "stop", "-m", "immediate", "-D", str(self.data)
                    ),
                    capture_output=True,
                    timeout=START_TIMEOUT_S,
                    check=False,
                )
        shutil.rmtree(self.root, ignore_errors=True)
