"""A PostgreSQL server of the project's own on loopback, its data in one folder.

For `iotjobs cluster up` and the test suite's PostgreSQL mode: the Debian
``postgresql`` package's binaries, a cluster made with ``initdb`` on first
start, trust authentication on 127.0.0.1 only. PostgreSQL refuses to run as
root, so as root the cluster belongs to ``nobody``, and the folders above it
get search rights for others (not read rights) so that ``nobody`` can reach it.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

__all__ = ["LocalPostgres", "PostgresNotInstalled", "postgres_binaries"]

USER = "iotjobs"
_START_WITHIN = 30.0
_PORT_ATTEMPTS = 5


class _PortTaken(RuntimeError):
    """The server could not listen on the port picked for it."""


class PostgresNotInstalled(RuntimeError):
    """No PostgreSQL server binaries were found."""


def postgres_binaries() -> Path:
    """The folder of ``initdb`` and ``postgres``: on PATH, else Debian's newest."""
    on_path = shutil.which("initdb")
    if on_path:
        return Path(on_path).parent
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]))
    if not found:
        raise PostgresNotInstalled("PostgreSQL is not installed: apt-get install postgresql")
    return Path(found[-1]).parent


def _let_others_through(folder: Path) -> None:
    """Let ``nobody`` reach a folder below ``folder``: search (not read) rights on it and its parents."""
    for each in (folder, *folder.parents):
        mode = each.stat().st_mode
        if not mode & 0o001:
            os.chmod(each, mode | 0o001)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class LocalPostgres:
    """One cluster in ``data_dir``; ``durable=False`` turns fsync off (tests only)."""

    def __init__(self, data_dir: Path, *, port: int = 0, durable: bool = True) -> None:
        self.data_dir = Path(data_dir)
        # A port the OS has just had free; if another program takes it first, start() picks again.
        self._any_port = port == 0
        self.port = port or _free_port()
        self.durable = durable
        self.process: subprocess.Popen[bytes] | None = None
        self._bin = postgres_binaries()
        self._as_user: list[str] = []
        if os.geteuid() == 0:
            self._as_user = ["runuser", "-u", "nobody", "--"]

    @property
    def url(self) -> str:
        return f"postgresql://{USER}@127.0.0.1:{self.port}/postgres"

    def url_of(self, database: str) -> str:
        return f"postgresql://{USER}@127.0.0.1:{self.port}/{database}"

    def start(self) -> str:
        """Make the cluster if there is none, start the server, wait until it answers; its URL."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if self._as_user:
            nobody = pwd.getpwnam("nobody")
            os.chown(self.data_dir, nobody.pw_uid, nobody.pw_gid)
            _let_others_through(self.data_dir.resolve().parent)
        os.chmod(self.data_dir, 0o700)
        if not (self.data_dir / "PG_VERSION").exists():
            self._run(
                "initdb",
                "-D",
                str(self.data_dir),
                "-U",
                USER,
                "--auth=trust",
                "-E",
                "UTF8",
                "--locale=C.UTF-8",
                "--no-instructions",
            )
        for attempt in range(1, _PORT_ATTEMPTS + 1):
            log_start = self._launch()
            try:
                self._wait_ready(log_start)
                return self.url
            except _PortTaken:
                if not self._any_port or attempt == _PORT_ATTEMPTS:
                    raise RuntimeError(f"PostgreSQL could not listen on port {self.port}") from None
                self.port = _free_port()
        raise AssertionError("unreachable")

    def _launch(self) -> int:
        """Start the server process; returns where its log of this run begins."""
        settings = [
            "-c",
            "listen_addresses=127.0.0.1",
            "-c",
            f"port={self.port}",
            "-c",
            "unix_socket_directories=",
            "-c",
            "max_connections=200",
        ]
        if not self.durable:
            settings += ["-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off"]
        log_path = self.data_dir / "server.log"
        log_start = log_path.stat().st_size if log_path.exists() else 0
        log = open(log_path, "ab")  # noqa: SIM115 - the server keeps it
        self.process = subprocess.Popen(
            [*self._as_user, str(self._bin / "postgres"), "-D", str(self.data_dir), *settings],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # a Ctrl-C meant for iotjobs reaches the server through stop()
        )
        log.close()
        return log_start

    def create_database(self, name: str, *, template: str | None = None) -> str:
        """A new database (a copy of ``template``, if given); its URL."""
        import psycopg

        with psycopg.connect(self.url, autocommit=True) as connection:
            suffix = f" TEMPLATE {template}" if template else ""
            connection.execute(f'CREATE DATABASE "{name}"{suffix}')
        return self.url_of(name)

    def stop(self) -> None:
        """Stop the server (a fast shutdown: sessions end, what is committed stays)."""
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        # To the whole group: as root the child is runuser, which does not pass SIGINT on.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGINT)  # fast shutdown: sessions end, commits stay
        try:
            process.wait(_START_WITHIN)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def _run(self, program: str, *args: str) -> None:
        result = subprocess.run(
            [*self._as_user, str(self._bin / program), *args], capture_output=True, text=True, check=False
        )
        if result.returncode != 0:
            raise RuntimeError(f"{program} failed: {result.stderr.strip() or result.stdout.strip()}")

    def _wait_ready(self, log_start: int) -> None:
        import psycopg

        deadline = time.monotonic() + _START_WITHIN
        while True:
            assert self.process is not None
            if self.process.poll() is not None:
                log = (
                    (self.data_dir / "server.log").read_bytes()[log_start:].decode("utf-8", "replace")[-2000:]
                )
                if "Address already in use" in log:
                    raise _PortTaken(self.port)
                raise RuntimeError(f"PostgreSQL stopped while starting:\n{log}")
            with contextlib.suppress(psycopg.OperationalError):
                psycopg.connect(self.url, connect_timeout=1).close()
                return
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"PostgreSQL did not answer within {_START_WITHIN} s")
            time.sleep(0.05)
