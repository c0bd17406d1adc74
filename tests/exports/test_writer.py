"""The writer thread that feeds an export's output (``exports/_writer``), in-process
against a real FIFO and real files: it holds the producer back while the reader does not read,
leaves an old file alone on an error, and reports a write error from ``put``."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import fcntl
import os
import select
from pathlib import Path

import attrs
import pytest

from yeastar_csss_async.exports import BackgroundWriter, open_output
from yeastar_csss_async.exports._encoders import CsvEncoder, JsonLinesEncoder

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
