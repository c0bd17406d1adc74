"""Where an export goes (files, links, devices, FIFOs) and the writer thread that feeds it.

The path cases run the real command (``python -m yeastar_csss_async``) against the embedded
sandbox; the writer's backpressure and failure paths run in-process against a real FIFO and
real files.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import fcntl
import json
import logging
import os
import select
import stat
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import attrs
import pytest

from yeastar_csss_async.cli._export import BackgroundWriter
from yeastar_csss_async.cli._output import OneLineLog, open_output
from yeastar_csss_async.cli._writers import CsvEncoder, JsonLinesEncoder

from tests._support.command import CLEAN_ENV, COMMAND

ORDERS = 500  # the sandbox's default order list


def export_orders(
    target: Path | str, *, umask: int | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*COMMAND, "export", "orders", "--sandbox", "-q", "-o", str(target)],
        capture_output=True,
        text=True,
        timeout=120,
        env=CLEAN_ENV,
        check=False,
        encoding="utf-8",
        umask=-1 if umask is None else umask,
        cwd=cwd,
    )


def order_ids(text: str) -> list[str]:
    return [json.loads(line)["id"] for line in text.splitlines()]


@contextlib.contextmanager
def device_kept(path: str, major: int, minor: int) -> Iterator[None]:
    """Fail if ``path`` stopped being that character device; put it back if so (as root)."""
    yield
    info = os.lstat(path)
    if stat.S_ISCHR(info.st_mode) and info.st_rdev == os.makedev(major, minor):
        return
    with contextlib.suppress(OSError):
        os.unlink(path)
        os.mknod(path, 0o666 | stat.S_IFCHR, os.makedev(major, minor))
        os.chmod(path, 0o666)
    pytest.fail(f"{path} was replaced by a {stat.filemode(info.st_mode)} file (restored)")


def test_dev_null_stays_a_character_device_and_the_export_succeeds() -> None:
    with device_kept("/dev/null", 1, 3):
        result = export_orders("/dev/null")
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""


def test_dev_full_fails_with_exit_1_in_one_line_and_stays_a_device() -> None:
    with device_kept("/dev/full", 1, 7):
        result = export_orders("/dev/full")
    assert result.returncode == 1
    assert result.stderr == "yeastar-csss: /dev/full: No space left on device\n"


def read_fifo(path: Path, chunks: list[bytes], stop: threading.Event) -> None:
    """Read ``path`` until its writer closes it, or until ``stop`` (no writer ever came).

    Opened non-blocking, so no writer is needed to open it; poll() reports POLLHUP only once
    a writer has come and gone, so "no writer yet" is not mistaken for the end.
    """
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    try:
        poller = select.poll()
        poller.register(fd, select.POLLIN)
        while not stop.is_set():
            if not poller.poll(50):
                continue
            chunk = os.read(fd, 1 << 16)
            if not chunk:
                return
            chunks.append(chunk)
    finally:
        os.close(fd)


def test_a_fifo_is_written_through_to_its_reader(tmp_path: Path) -> None:
    fifo = tmp_path / "orders.fifo"
    os.mkfifo(fifo)
    chunks: list[bytes] = []
    stop = threading.Event()
    reader = threading.Thread(target=read_fifo, args=(fifo, chunks, stop))
    reader.start()
    try:
        result = export_orders(fifo)
    finally:
        stop.set()  # only matters if the export never opened the FIFO
        reader.join()
    assert result.returncode == 0, result.stderr
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)
    assert len(order_ids(b"".join(chunks).decode())) == ORDERS
    assert [p.name for p in tmp_path.iterdir()] == ["orders.fifo"]


@pytest.mark.parametrize("target_exists", [True, False])
def test_a_symlink_is_kept_and_its_target_written(tmp_path: Path, target_exists: bool) -> None:
    (tmp_path / "links").mkdir()
    (tmp_path / "data").mkdir()
    target = tmp_path / "data" / "orders.jsonl"
    if target_exists:
        target.write_text("old\n")
    link = tmp_path / "links" / "orders.jsonl"
    link.symlink_to(Path("..") / "data" / "orders.jsonl")
    result = export_orders(link)
    assert result.returncode == 0, result.stderr
    assert link.is_symlink()
    assert os.readlink(link) == str(Path("..") / "data" / "orders.jsonl")
    assert len(order_ids(target.read_text())) == ORDERS
    assert [p.name for p in (tmp_path / "data").iterdir()] == ["orders.jsonl"]  # no temp


def test_an_existing_file_keeps_its_mode(tmp_path: Path) -> None:
    target = tmp_path / "orders.jsonl"
    target.write_text("old\n")
    target.chmod(0o640)
    result = export_orders(target, umask=0o077)  # the umask is for new files only
    assert result.returncode == 0, result.stderr
    assert stat.S_IMODE(target.stat().st_mode) == 0o640
    assert len(order_ids(target.read_text())) == ORDERS


@pytest.mark.parametrize(("umask", "mode"), [(0o022, 0o644), (0o002, 0o664), (0o077, 0o600)])
def test_a_new_file_gets_the_mode_the_umask_allows(tmp_path: Path, umask: int, mode: int) -> None:
    result = export_orders("orders.jsonl", umask=umask, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert stat.S_IMODE((tmp_path / "orders.jsonl").stat().st_mode) == mode


@pytest.mark.skipif(os.geteuid() != 0, reason="only root may give a file to another user")
def test_an_existing_file_keeps_its_owner_when_root_writes_it(tmp_path: Path) -> None:
    target = tmp_path / "orders.jsonl"
    target.write_text("old\n")
    os.chown(target, 4321, 4322)
    result = export_orders(target)
    assert result.returncode == 0, result.stderr
    assert (target.stat().st_uid, target.stat().st_gid) == (4321, 4322)
    assert len(order_ids(target.read_text())) == ORDERS


def test_a_hard_linked_file_is_replaced_and_its_other_name_keeps_the_old_content(
    tmp_path: Path,
) -> None:
    # The chosen trade-off (see _Replacement): the name given gets all of the new content
    # atomically, so the link is broken; writing in place would truncate both names first.
    target = tmp_path / "orders.jsonl"
    target.write_text("old\n")
    target.chmod(0o640)
    other = tmp_path / "backup.jsonl"
    os.link(target, other)
    result = export_orders(target)
    assert result.returncode == 0, result.stderr
    assert len(order_ids(target.read_text())) == ORDERS
    assert stat.S_IMODE(target.stat().st_mode) == 0o640
    assert other.read_text() == "old\n"
    assert other.stat().st_nlink == 1
    assert not os.path.samefile(target, other)


# --- the writer thread, in-process ------------------------------------------------------


@attrs.frozen
class Row:
    id: int
    text: str


def pipe_is_full(write_end: int) -> bool:
    """True when a pipe has no room left: its writers block (checked on a write end)."""
    return not select.select([], [write_end], [], 0)[1]


async def test_put_waits_while_the_reader_does_not_read(tmp_path: Path) -> None:
    fifo = tmp_path / "rows.fifo"
    os.mkfifo(fifo)
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
    probe = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)  # only to ask whether it is full
    received = bytearray()
    batch = [Row(i, "x" * 1000) for i in range(16)]
    batch_bytes = len(JsonLinesEncoder(Row).format(batch).encode())  # about 16 KB
    accepted = 0

    async def produce(writer: BackgroundWriter) -> None:
        nonlocal accepted
        for _ in range(40):
            await writer.put(batch)
            accepted += 1

    try:
        capacity = fcntl.fcntl(reader, fcntl.F_GETPIPE_SZ)
        async with BackgroundWriter(
            open_output(str(fifo)), JsonLinesEncoder(Row), max_batches=2
        ) as writer:
            producer = asyncio.ensure_future(produce(writer))
            for _ in range(3000):  # until the pipe is full and the writer thread stuck
                if pipe_is_full(probe):
                    break
                await asyncio.sleep(0.01)
            else:
                pytest.fail("the writer never filled the pipe")
            await asyncio.sleep(0.1)  # room for the producer to run ahead, if it could
            # Each put past the first max_batches (2) waits for a batch written out in full,
            # and only capacity // batch_bytes of them fit in the pipe. Without the bound,
            # the producer would have handed over all 40 by now.
            assert not producer.done()
            assert accepted <= 2 + capacity // batch_bytes
            loop = asyncio.get_running_loop()
            done = asyncio.Event()

            def on_readable() -> None:
                with contextlib.suppress(BlockingIOError):
                    chunk = os.read(reader, 1 << 16)
                    received.extend(chunk)
                    if not chunk:
                        done.set()

            os.close(probe)
            probe = -1
            loop.add_reader(reader, on_readable)
            await producer
        await done.wait()  # the writer closed its end: everything was written
        loop.remove_reader(reader)
    finally:
        os.close(reader)
        if probe >= 0:
            os.close(probe)
    assert accepted == 40
    assert len(received.splitlines()) == 40 * len(batch)


async def test_leaving_with_an_error_leaves_the_old_file_and_no_temporary_file(
    tmp_path: Path,
) -> None:
    target = tmp_path / "rows.jsonl"
    target.write_text("old\n")

    async def fail_midway() -> None:
        async with BackgroundWriter(open_output(str(target)), JsonLinesEncoder(Row)) as writer:
            await writer.put([Row(1, "new")])
            raise RuntimeError("the export failed")

    with pytest.raises(RuntimeError, match="the export failed"):
        await fail_midway()
    assert target.read_text() == "old\n"
    assert os.listdir(tmp_path) == ["rows.jsonl"]


async def test_a_write_error_surfaces_from_put_and_names_the_output() -> None:
    async def write_to_a_full_disk() -> None:
        async with BackgroundWriter(open_output("/dev/full"), CsvEncoder(Row)) as writer:
            for _ in range(100):  # the first write fails; a later put reports it
                await writer.put([Row(1, "x")])

    with pytest.raises(OSError, match="No space left") as caught:
        await write_to_a_full_disk()
    assert caught.value.errno == errno.ENOSPC
    assert caught.value.filename == "/dev/full"


# --- messages ------------------------------------------------------------------------------


def test_log_records_are_one_line_each_with_the_error_named(
    capfd: pytest.CaptureFixture[str],
) -> None:
    handler = OneLineLog(logging.WARNING)

    def record(name: str, message: str, error: BaseException | None) -> logging.LogRecord:
        exc_info = (type(error), error, None) if error is not None else None
        return logging.LogRecord(name, logging.ERROR, __file__, 1, message, (), exc_info)

    handler.handle(record("aiohttp.server", "Error handling request", KeyError("x")))
    handler.handle(record("yeastar_csss_async", "two\nlines", None))
    assert capfd.readouterr().err == (
        "yeastar-csss: error: Error handling request: KeyError: 'x'\n"
        "yeastar-csss: error: two lines\n"
    )


def test_an_unpaired_surrogate_is_written_as_its_json_escape_not_an_error() -> None:
    """A server may send ``"\\ud800"`` (the library decodes it, as JSON allows); UTF-8 cannot
    hold it, so JSON Lines writes the escape JSON had, and reading the line back gives the
    same text; CSV writes the escape as text."""
    from yeastar_csss_async import Order

    class Collect:
        def __init__(self) -> None:
            self.data = b""

        def write(self, data: bytes) -> None:
            self.data += data

    record = Order(id="1", order_no="a\ud800b\u00e9")
    lines = Collect()
    JsonLinesEncoder(Order).encode([record], lines)  # type: ignore[arg-type]
    assert json.loads(lines.data)["order_no"] == "a\ud800b\u00e9"
    table = Collect()
    CsvEncoder(Order).encode([record], table)  # type: ignore[arg-type]
    assert table.data.decode("utf-8").split(",")[1] == "a\\ud800b\u00e9"
