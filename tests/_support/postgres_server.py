"""A throwaway PostgreSQL cluster for the tests (stdlib only; no driver needed to start it).

``PostgresServer.start()`` runs ``initdb`` into a fresh temp dir and ``pg_ctl start`` on a free
port of 127.0.0.1, with durability switched off (fsync, synchronous_commit, full_page_writes) so
it starts and runs quickly. Authentication is real: over TCP (127.0.0.1 only) every role must
give its password (scram-sha-256); the bootstrap superuser ``postgres`` has no password and is
reachable only through the Unix socket in the temp dir, which the helpers use to create and drop
databases (with ``psql``). ``stop()`` shuts the server down (``pg_ctl stop -m immediate``, then
signals if that fails) and removes the directory; it is idempotent and also registered with
``atexit`` in case a session ends without running its finalizers.

As root (locally and in CI) the binaries run as the ``postgres`` system user through
``runuser -u postgres --`` (``initdb`` refuses to run as root); as any other user they run as
that user. ``find_binaries()`` says why the server cannot be started, and
``skip_or_fail(reason)`` turns that into a skip locally and a failure under ``CI=true``.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import pwd
import re
import shlex
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import NoReturn
from urllib.parse import quote

import pytest

SERVICE_USER = "postgres"
"""The system user that runs the server when the tests run as root."""

ROLE = "yeastar"
PASSWORD = "yeastar-test"
DATABASE = "yeastar"

START_TIMEOUT = int(os.environ.get("PGCTLTIMEOUT", "60"))
"""Seconds ``pg_ctl start -w`` may wait for the server to accept connections: pg_ctl's own
default and environment variable (``PGCTLTIMEOUT``), generous for a busy 2-core CI machine; a
healthy start takes well under a second of it."""

_REQUIRED = ("initdb", "pg_ctl", "postgres", "psql")
_LOG_TAIL_LINES = 40
_PORT_ATTEMPTS = 3


def log_tail(logfile: Path, lines: int = _LOG_TAIL_LINES) -> str:
    """The last ``lines`` lines of a server's log file (for error messages)."""
    try:
        text = logfile.read_text(errors="replace").splitlines()
    except OSError as exc:
        return f"(no server log: {exc})"
    return "\n".join(text[-lines:])


def in_ci() -> bool:
    """Whether the run is in CI, where a missing service is a failure rather than a skip."""
    return os.environ.get("CI", "").strip().lower() in {"true", "1", "yes"}


def skip_or_fail(reason: str) -> NoReturn:
    """Skip the test with ``reason`` locally; fail it under ``CI=true``. Never returns."""
    if in_ci():
        pytest.fail(f"{reason} (CI=true: a missing service fails the run)", pytrace=False)
    pytest.skip(reason)


def _has_binaries(bindir: Path) -> bool:
    return all(os.access(bindir / name, os.X_OK) for name in _REQUIRED)


def _version_key(path: Path) -> tuple[int, ...]:
    # /usr/lib/postgresql/<version>/bin -> numeric version, so 15 sorts above 9.6.
    return tuple(int(part) for part in re.findall(r"\d+", path.parent.name)) or (0,)


def find_bindir() -> tuple[Path | None, str]:
    """The directory with initdb, pg_ctl, postgres and psql, or None and why not.

    Tried in order: ``$PG_BINDIR``, ``pg_config --bindir``, the newest
    ``/usr/lib/postgresql/*/bin``, then ``initdb`` on ``PATH``.
    """
    candidates: list[Path] = []
    if os.environ.get("PG_BINDIR"):
        candidates.append(Path(os.environ["PG_BINDIR"]))
    pg_config = shutil.which("pg_config")
    if pg_config:
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            out = subprocess.run(
                [pg_config, "--bindir"], capture_output=True, text=True, timeout=10, check=True
            ).stdout.strip()
            if out:
                candidates.append(Path(out))
    candidates += sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=_version_key, reverse=True)
    initdb = shutil.which("initdb")
    if initdb:
        candidates.append(Path(initdb).parent)
    for bindir in candidates:
        if _has_binaries(bindir):
            return bindir, ""
    tried = ", ".join(str(c) for c in candidates) or "nothing found"
    return None, (
        f"PostgreSQL server binaries ({', '.join(_REQUIRED)}) not found "
        f"(tried: {tried}; set PG_BINDIR)"
    )


def runner_prefix() -> tuple[list[str] | None, str]:
    """The command prefix that runs a server binary as a non-root user, or None and why not.

    Empty when the tests do not run as root; ``runuser -u postgres --`` when they do.
    """
    if os.geteuid() != 0:
        return [], ""
    runuser = shutil.which("runuser")
    if runuser is None:
        return None, "running as root, but runuser is not installed (util-linux)"
    try:
        pwd.getpwnam(SERVICE_USER)
    except KeyError:
        return None, f"running as root, but there is no {SERVICE_USER!r} system user"
    prefix = [runuser, "-u", SERVICE_USER, "--"]
    probe = subprocess.run(
        [*prefix, "true"], capture_output=True, text=True, timeout=30, check=False
    )
    if probe.returncode != 0:
        return None, (
            f"running as root, but `runuser -u {SERVICE_USER} -- true` failed: "
            f"{(probe.stderr or probe.stdout).strip()[:200]}"
        )
    return prefix, ""


def free_port() -> int:
    """A TCP port of 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _clean_env() -> dict[str, str]:
    # PG* variables of the caller (PGHOST, PGSSLMODE, PGPASSWORD...) must not steer our tools.
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env["LC_ALL"] = "C"
    return env


class PostgresServer:
    """A running throwaway cluster: where it listens, who may log in, and URLs to reach it.

    ``host``, ``port``, ``user``, ``password`` and ``database`` describe the password-protected
    test role and its own database; ``sqlalchemy_url`` and ``dsn`` are URLs for them.
    ``temporary_database()`` makes a fresh empty database owned by that role.
    """

    host = "127.0.0.1"
    user = ROLE
    password = PASSWORD
    database = DATABASE

    def __init__(self, bindir: Path, prefix: Sequence[str]) -> None:
        self.bindir = bindir
        self.prefix = list(prefix)
        self.port = 0
        self.startup_seconds = 0.0
        """Wall time of initdb, server start and role setup."""
        self.version = ""
        """``postgres --version`` of the binaries, e.g. ``postgres (PostgreSQL) 15.18``."""
        self.root = Path(tempfile.mkdtemp(prefix="yca-pg-"))
        self.datadir = self.root / "data"
        self.socketdir = self.root / "sock"
        self.logfile = self.root / "server.log"

    # -- URLs -----------------------------------------------------------------------------------

    def sqlalchemy_url_for(self, database: str) -> str:
        """SQLAlchemy URL (asyncpg driver) of ``database`` on this server, as the test role."""
        return self._url("postgresql+asyncpg", database)

    def dsn_for(self, database: str) -> str:
        """libpq/asyncpg URL (``postgresql://``) of ``database``, as the test role."""
        return self._url("postgresql", database)

    @property
    def sqlalchemy_url(self) -> str:
        """``postgresql+asyncpg://yeastar:yeastar-test@127.0.0.1:PORT/yeastar``."""
        return self.sqlalchemy_url_for(self.database)

    @property
    def dsn(self) -> str:
        """``postgresql://yeastar:yeastar-test@127.0.0.1:PORT/yeastar``."""
        return self.dsn_for(self.database)

    def _url(self, scheme: str, database: str) -> str:
        return (
            f"{scheme}://{quote(self.user, safe='')}:{quote(self.password, safe='')}"
            f"@{self.host}:{self.port}/{quote(database, safe='')}"
        )

    # -- databases ------------------------------------------------------------------------------

    def create_database(self, name: str | None = None) -> str:
        """Create an empty database owned by the test role (``test_<uuid>`` unless named);
        return its name."""
        name = name or f"test_{uuid.uuid4().hex}"
        self.psql(f'CREATE DATABASE "{name}" OWNER "{self.user}"')
        return name

    def drop_database(self, name: str) -> None:
        """Drop ``name``, ending any connection a test left open to it."""
        self.psql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    @contextlib.contextmanager
    def temporary_database(self) -> Iterator[str]:
        """A fresh empty database for the ``with`` block; yields its name, drops it after."""
        name = self.create_database()
        try:
            yield name
        finally:
            self.drop_database(name)

    def psql(self, sql: str, database: str = "postgres") -> str:
        """Run ``sql`` as the superuser over the Unix socket; return psql's unaligned output."""
        cmd = [
            str(self.bindir / "psql"),
            "-X",
            "-q",
            "-A",
            "-t",
            "-v",
            "ON_ERROR_STOP=1",
            "-h",
            str(self.socketdir),
            "-p",
            str(self.port),
            "-U",
            SERVICE_USER,
            "-d",
            database,
            "-c",
            sql,
        ]
        done = subprocess.run(
            cmd, capture_output=True, text=True, env=_clean_env(), timeout=60, check=False
        )
        if done.returncode != 0:
            raise RuntimeError(
                f"psql failed ({done.returncode}) for {sql!r}: {done.stderr.strip()}"
            )
        return done.stdout

    # -- lifecycle ------------------------------------------------------------------------------

    def _run(self, args: Sequence[str], *, timeout: float) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*self.prefix, *args],
            capture_output=True,
            text=True,
            env=_clean_env(),
            cwd=self.root,
            timeout=timeout,
            check=False,
        )

    def log_tail(self) -> str:
        """The last lines of the server log (for error messages)."""
        return log_tail(self.logfile)

    def start(self) -> None:
        """initdb, start on a free port, create the test role and its database.

        Raises RuntimeError with the tool's output and the server log tail if any step fails;
        whatever was started is stopped and removed again in that case.
        """
        began = time.perf_counter()
        try:
            self._init_cluster()
            self._start_server()
            self.psql(f"CREATE ROLE \"{ROLE}\" LOGIN CREATEDB PASSWORD '{PASSWORD}'")
            self.psql(f'CREATE DATABASE "{DATABASE}" OWNER "{ROLE}"')
        except BaseException:
            self.stop()
            raise
        self.startup_seconds = time.perf_counter() - began
        atexit.register(self.stop)

    def _init_cluster(self) -> None:
        version = subprocess.run(
            [str(self.bindir / "postgres"), "--version"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        self.version = version.stdout.strip()
        if self.prefix:  # root: hand the directory to the service user
            entry = pwd.getpwnam(SERVICE_USER)
            os.chown(self.root, entry.pw_uid, entry.pw_gid)
        self.socketdir.mkdir()
        if self.prefix:
            os.chown(self.socketdir, entry.pw_uid, entry.pw_gid)
        done = self._run(
            [
                str(self.bindir / "initdb"),
                "-D",
                str(self.datadir),
                "-U",
                SERVICE_USER,
                "-E",
                "UTF8",
                "--no-locale",
                "--no-sync",
                "--no-instructions",
                "--auth-local=trust",
                "--auth-host=scram-sha-256",
            ],
            timeout=120,
        )
        if done.returncode != 0:
            raise RuntimeError(
                f"initdb failed ({done.returncode}) in {self.datadir}:\n{done.stdout}{done.stderr}"
            )
        # Exactly two ways in: the superuser over our private socket, roles with a password
        # over 127.0.0.1. Nothing else (no ::1, no other hosts).
        (self.datadir / "pg_hba.conf").write_text(
            "# written by tests/_support/postgres_server.py\n"
            "local all all trust\n"
            "host  all all 127.0.0.1/32 scram-sha-256\n"
        )

    def _start_server(self) -> None:
        for attempt in range(1, _PORT_ATTEMPTS + 1):
            self.port = free_port()
            options = " ".join(
                [
                    "-p",
                    str(self.port),
                    "-k",
                    shlex.quote(str(self.socketdir)),
                    "-c",
                    "listen_addresses=127.0.0.1",
                    "-c",
                    "fsync=off",
                    "-c",
                    "synchronous_commit=off",
                    "-c",
                    "full_page_writes=off",
                ]
            )
            done = self._run(
                [
                    str(self.bindir / "pg_ctl"),
                    "-D",
                    str(self.datadir),
                    "-l",
                    str(self.logfile),
                    "-o",
                    options,
                    "-w",
                    "-t",
                    str(START_TIMEOUT),
                    "start",
                ],
                timeout=START_TIMEOUT + 30,
            )
            if done.returncode == 0:
                return
            tail = self.log_tail()
            # Another process took the port between free_port() and the bind: try another.
            port_taken = "could not bind" in tail or "Address already in use" in tail
            if port_taken and attempt < _PORT_ATTEMPTS:
                self._kill_postmaster()
                continue
            raise RuntimeError(
                f"PostgreSQL did not start on 127.0.0.1:{self.port} (pg_ctl start -w waits up "
                f"to {START_TIMEOUT}s, PGCTLTIMEOUT; exit {done.returncode}: "
                f"{(done.stderr or done.stdout).strip()})\n"
                f"--- last lines of the server log ---\n{tail}"
            )

    def _postmaster_pid(self) -> int | None:
        try:
            return int((self.datadir / "postmaster.pid").read_text().split("\n", 1)[0])
        except (OSError, ValueError):
            return None

    def _kill_postmaster(self) -> None:
        # SIGQUIT is PostgreSQL's immediate shutdown; SIGKILL if it does not go within 10 s
        # (the backends notice their postmaster died and exit on their own).
        pid = self._postmaster_pid()
        if pid is None:
            return
        for sig, wait in ((signal.SIGQUIT, 10.0), (signal.SIGKILL, 5.0)):
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                return
            deadline = time.monotonic() + wait
            while time.monotonic() < deadline:
                try:
                    os.kill(pid, 0)
                except ProcessLookupError:
                    return
                time.sleep(0.05)

    def stop(self) -> None:
        """Stop the server (immediate mode) and remove its directory. Idempotent."""
        if self.datadir.exists() and self._postmaster_pid() is not None:
            done = self._run(
                [
                    str(self.bindir / "pg_ctl"),
                    "-D",
                    str(self.datadir),
                    "-m",
                    "immediate",
                    "-w",
                    "-t",
                    "30",
                    "stop",
                ],
                timeout=60,
            )
            if done.returncode != 0:
                self._kill_postmaster()
        shutil.rmtree(self.root, ignore_errors=True)
        atexit.unregister(self.stop)


def start_server() -> PostgresServer:
    """A started throwaway cluster, or a skip (locally) / failure (CI) saying why not."""
    bindir, why = find_bindir()
    if bindir is None:
        skip_or_fail(why)
    prefix, why = runner_prefix()
    if prefix is None:
        skip_or_fail(why)
    server = PostgresServer(bindir, prefix)
    server.start()
    return server
