"""A throwaway redis-server for the tests (stdlib only: no client library needed to run it).

``RedisServer.start()`` runs ``redis-server`` on a free port of 127.0.0.1 with persistence off
(``--save '' --appendonly no``), in a temp dir, and waits until it answers PING.
``stop()``/``kill()``/``start()`` (same port again) let a test take Redis away mid-run and
bring it back; ``ensure_running()`` restarts it for the next test. ``command()`` speaks just
enough RESP for the fixtures (SELECT, FLUSHDB, PING). Stopped at the end of the session and,
as a backstop, at exit.

A missing ``redis-server`` skips the tests locally and fails them under ``CI=true``
(``postgres_server.skip_or_fail``). Install it with ``apt-get install -y redis-server``.
"""

from __future__ import annotations

import atexit
import contextlib
import io
import os
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from tests._support.postgres_server import free_port, log_tail, skip_or_fail

START_TIMEOUT = float(os.environ.get("REDIS_START_TIMEOUT", "30"))
"""Seconds to wait for a started redis-server to answer PING: generous for a busy 2-core
machine (a healthy start answers within ~50 ms)."""
DATABASES = 256
"""Logical databases of the server: each test gets its own (``redis_url``), cycling."""
_PORT_ATTEMPTS = 3
_LOG_TAIL_LINES = 30


class RedisError(RuntimeError):
    """An error answer (``-ERR ...``) from :meth:`RedisServer.command`."""


def _encode(*args: str | int) -> bytes:
    out = [f"*{len(args)}\r\n".encode()]
    for arg in args:
        data = str(arg).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(out)


def _read_reply(stream: io.BufferedIOBase) -> object:
    line = stream.readline()
    if not line.endswith(b"\r\n"):
        raise ConnectionError("connection closed by redis-server")
    kind, body = line[:1], line[1:-2]
    if kind == b"+":
        return body.decode()
    if kind == b"-":
        raise RedisError(body.decode(errors="replace"))
    if kind == b":":
        return int(body)
    if kind == b"$":
        size = int(body)
        if size < 0:
            return None
        data = stream.read(size + 2)
        return data[:-2].decode(errors="replace")
    if kind == b"*":
        count = int(body)
        return None if count < 0 else [_read_reply(stream) for _ in range(count)]
    raise ConnectionError(f"unexpected reply from redis-server: {line[:40]!r}")


class RedisServer:
    """A redis-server process: ``host``, ``port``, ``url(db)``; start, stop, kill, restart."""

    host = "127.0.0.1"

    def __init__(self, binary: str) -> None:
        self.binary = binary
        self.port = 0
        self.version = ""
        self.root = Path(tempfile.mkdtemp(prefix="yca-redis-"))
        self.logfile = self.root / "redis.log"
        self._process: subprocess.Popen[bytes] | None = None

    def url(self, db: int = 0) -> str:
        """``redis://127.0.0.1:PORT/DB``."""
        return f"redis://{self.host}:{self.port}/{db}"

    @property
    def running(self) -> bool:
        """Whether the server process is alive."""
        return self._process is not None and self._process.poll() is None

    def command(self, *args: str | int, db: int | None = None, timeout: float = 10.0) -> object:
        """Send one command (after ``SELECT db`` if given) on a fresh connection; the reply."""
        with (
            socket.create_connection((self.host, self.port), timeout=timeout) as sock,
            sock.makefile("rwb") as stream,
        ):
            if db is not None:
                stream.write(_encode("SELECT", db))
            stream.write(_encode(*args))
            stream.flush()
            if db is not None:
                _read_reply(stream)
            return _read_reply(stream)

    def log_tail(self) -> str:
        """The last lines of the server log (for error messages)."""
        return log_tail(self.logfile, _LOG_TAIL_LINES)

    def start(self) -> None:
        """Start the server (on a free port the first time, on the same port afterwards) and
        wait until it answers PING. Raises RuntimeError with the log tail if it does not."""
        if self.running:
            return
        if not self.version:
            done = subprocess.run(
                [self.binary, "--version"], capture_output=True, text=True, timeout=30, check=False
            )
            self.version = done.stdout.strip()
        attempts = _PORT_ATTEMPTS if self.port == 0 else 1
        for attempt in range(1, attempts + 1):
            if self.port == 0 or attempt > 1:
                self.port = free_port()
            if self._launch():
                atexit.register(self.stop)
                return
            tail = self.log_tail()
            if "Address already in use" in tail and attempt < attempts:
                continue
            raise RuntimeError(
                f"redis-server did not answer PING on {self.host}:{self.port} "
                f"within {START_TIMEOUT:g}s (REDIS_START_TIMEOUT)\n"
                f"--- last lines of its log ---\n{tail}"
            )

    def _launch(self) -> bool:
        with contextlib.suppress(OSError):
            self.logfile.unlink()
        self._process = subprocess.Popen(
            [
                self.binary,
                "--port",
                str(self.port),
                "--bind",
                self.host,
                "--save",
                "",
                "--appendonly",
                "no",
                "--databases",
                str(DATABASES),
                "--dir",
                str(self.root),
                "--logfile",
                str(self.logfile),
                "--daemonize",
                "no",
                "--protected-mode",
                "yes",
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            cwd=self.root,
        )
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                return False
            with contextlib.suppress(OSError, RedisError):
                if self.command("PING", timeout=1.0) == "PONG":
                    return True
            time.sleep(0.02)
        self._terminate(signal.SIGKILL)
        return False

    def _terminate(self, sig: signal.Signals) -> None:
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(sig)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)

    def stop(self) -> None:
        """Shut the server down (SIGTERM; SIGKILL after 10 s). Idempotent; restartable."""
        self._terminate(signal.SIGTERM)

    def kill(self) -> None:
        """Kill the server at once (SIGKILL), as a crash would. Restartable with start()."""
        self._terminate(signal.SIGKILL)

    def restart(self) -> None:
        """Stop and start again on the same port (all data gone: nothing is persisted)."""
        self.stop()
        self.start()

    def ensure_running(self) -> None:
        """Start the server again if a test stopped or killed it."""
        if not self.running:
            self.start()

    def close(self) -> None:
        """Stop for good and remove the temp dir."""
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)
        atexit.unregister(self.stop)


def start_redis() -> RedisServer:
    """A started redis-server, or a skip (locally) / failure (CI) saying why not."""
    binary = shutil.which("redis-server")
    if binary is None:
        skip_or_fail("redis-server is not installed (apt-get install -y redis-server)")
    server = RedisServer(binary)
    try:
        server.start()
    except BaseException:
        server.close()
        raise
    return server


@contextlib.contextmanager
def password_url(server: RedisServer, url: str) -> Iterator[str]:
    """``url`` (a database of ``server``) as a new ACL user with a real password, removed on
    exit; the default user stays open for the other tests of the session."""
    user, password = f"u-{secrets.token_hex(4)}", f"pw-{secrets.token_hex(12)}"
    server.command("ACL", "SETUSER", user, "on", f">{password}", "~*", "&*", "+@all")
    try:
        yield f"redis://{user}:{password}@{url.split('://', 1)[1]}"
    finally:
        server.command("ACL", "DELUSER", user)
