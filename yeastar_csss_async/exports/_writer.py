"""Writing exported records off the event loop.

Where the bytes go (a file replaced atomically, a device or pipe written through) is decided
by :mod:`._files`, and how records become bytes by an encoder (:mod:`._encoders`); this module
feeds batches of records to a writer thread that runs the encoder.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
from collections.abc import AsyncIterator, Callable, Sequence
from types import TracebackType
from typing import Any

from ._encoders import Encoder
from ._files import Output

__all__ = ["BackgroundWriter", "drain"]

_FINISH = object()
_STOP = object()


class BackgroundWriter:
    """Formats and writes batches of records on a daemon thread, off the event loop.

    ``async with BackgroundWriter(output, encoder) as writer:`` opens the output on the
    thread (a FIFO may wait there for its reader), ``await writer.put(batch)`` hands over a
    batch, and leaving the block without an error waits until everything is written and
    committed (for a file: fsynced and renamed onto its name). Leaving it with an error or a
    cancellation discards the output at once (no temporary file, nothing under the final
    name) and does not wait for the thread.

    ``put`` waits, without blocking the loop, only while ``max_batches`` batches wait
    already: a slow reader slows the export down instead of growing memory, and a reader
    that stops reading never keeps the loop from handling a signal. A write error surfaces
    from the next ``put`` or from the end of the block. The thread is never joined after a
    failure: one blocked on a stalled pipe dies with the process.
    """

    def __init__(self, output: Output, encoder: Encoder, *, max_batches: int = 4) -> None:
        self._output = output
        self._encoder = encoder
        self._loop = asyncio.get_running_loop()
        self._queue: queue.SimpleQueue[object] = queue.SimpleQueue()
        self._room = asyncio.Semaphore(max_batches)
        self._opened: asyncio.Future[None] = self._loop.create_future()
        self._finished: asyncio.Future[None] = self._loop.create_future()
        self._error: BaseException | None = None
        self._aborted = False
        self._thread = threading.Thread(target=self._run, name="yeastar-csss-writer", daemon=True)

    async def __aenter__(self) -> BackgroundWriter:
        self._thread.start()
        try:
            await self._opened
            self._raise_if_failed()
        except BaseException:
            self.abort()
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is not None:
            self.abort()
            return
        try:
            self._raise_if_failed()
            self._queue.put(_FINISH)
            await self._finished
            self._raise_if_failed()
        except BaseException:
            self.abort()
            raise

    async def put(self, records: Sequence[object]) -> None:
        """Hand ``records`` to the writer; wait while the writer is ``max_batches`` behind."""
        self._raise_if_failed()
        await self._room.acquire()
        self._raise_if_failed()
        self._queue.put(records)

    def abort(self) -> None:
        """Stop writing and discard the output; never blocks."""
        self._aborted = True
        self._queue.put(_STOP)
        self._output.discard()

    def _raise_if_failed(self) -> None:
        if self._error is not None:
            raise self._error

    # --- on the writer thread ----------------------------------------------------------------

    def _run(self) -> None:
        output = self._output
        encoder = self._encoder
        try:
            output.open()
            self._signal(_set_done, self._opened)
            if self._aborted:
                return
            encoder.begin(output)
            while True:
                item = self._queue.get()
                if item is _STOP or self._aborted:
                    return
                if item is _FINISH:
                    encoder.end(output)
                    output.commit()
                    self._signal(_set_done, self._finished)
                    return
                assert isinstance(item, Sequence)
                encoder.encode(item, output)
                self._signal(self._room.release)
        except BaseException as error:  # handed over to the loop, which raises it
            self._error = error
            self._signal(_set_done, self._opened)
            self._signal(_set_done, self._finished)
            self._signal(self._room.release)
        finally:
            try:
                encoder.close()
            finally:
                output.close()

    def _signal(self, callback: Callable[..., object], *args: object) -> None:
        # The loop may be closed already: a writer abandoned on a stalled pipe, unblocked late.
        with contextlib.suppress(RuntimeError):
            self._loop.call_soon_threadsafe(callback, *args)


def _set_done(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


async def drain(
    records: AsyncIterator[Any],
    writer: BackgroundWriter,
    on_record: Callable[[int], None],
    *,
    batch_size: int = 256,
) -> int:
    """Hand every record of ``records`` to ``writer`` in batches of ``batch_size``, calling
    ``on_record(count)`` after each record. Return the count."""
    count = 0
    batch: list[Any] = []
    async for record in records:
        batch.append(record)
        count += 1
        on_record(count)
        if len(batch) >= batch_size:
            await writer.put(batch)
            batch = []
    if batch:
        await writer.put(batch)
    return count
