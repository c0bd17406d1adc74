"""``yeastar-csss export LIST`` and ``export all``: every record of a list to a file."""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import time
from collections.abc import AsyncGenerator
from typing import Any

from .._base import BaseClient
from .._lists import ListSpec
from .._paging import PageStream
from ..exports import BackgroundWriter, drain, make_encoder, open_output
from ._messages import say
from ._progress import Progress
from ._sources import check_scope_options, list_query, list_specs, open_clients, skipped_lists
from ._usage import UsageError

__all__ = ["run_export"]


def _check_options(args: argparse.Namespace) -> None:
    """Usage errors that the parser cannot see, before anything starts."""
    every = args.kind == "all"
    check_scope_options(args)
    if args.excel and args.format != "csv":
        raise UsageError("--excel applies to --format csv only")
    if every and args.output is not None:
        raise UsageError("export all writes one file per list: use --output-dir DIR")
    if every and args.output_dir is None:
        raise UsageError("export all needs --output-dir DIR")
    if not every and args.output_dir is not None:
        raise UsageError("--output-dir applies to export all only (use --output)")
    if args.format == "xlsx":
        if not every and (args.output or "-") == "-" and sys.stdout.isatty():
            raise UsageError("--format xlsx writes a binary file: use --output FILE")
        try:
            from ..exports import _xlsx  # noqa: F401 - openpyxl is there
        except ImportError as error:
            raise UsageError(str(error)) from None


async def run_export(args: argparse.Namespace) -> int:
    """Export the list ``args.kind`` (or every list, for ``all``)."""
    _check_options(args)
    specs = list_specs(args)
    async with contextlib.AsyncExitStack() as stack:
        clients = await open_clients(stack, args, specs)
        if args.kind != "all":
            spec = specs[0]
            await _export_list(spec, clients[spec.api.name], args, args.output or "-")
            return 0
        return await _export_all(args, specs, clients)


async def _export_all(
    args: argparse.Namespace, specs: tuple[ListSpec[Any], ...], clients: dict[str, BaseClient]
) -> int:
    directory = args.output_dir
    os.makedirs(directory, exist_ok=True)
    done: list[str] = []
    current = specs[0].name
    try:
        for spec in specs:
            current = spec.name
            target = os.path.join(directory, f"{spec.name}.{args.format}")
            await _export_list(spec, clients[spec.api.name], args, target)
            done.append(spec.name)
    except BaseException:
        left = [spec.name for spec in specs if spec.name not in done]
        say(
            f"export all: stopped at {current}; completed: {', '.join(done) or 'none'}; "
            f"not written: {', '.join(left)}"
        )
        raise
    if not args.quiet:
        for spec, api in skipped_lists(specs):
            say(f"{spec.name}: skipped (set {' and '.join(api.credential_env)} to export it)")
    return 0


async def _export_list(
    spec: ListSpec[Any], client: BaseClient, args: argparse.Namespace, target: str
) -> None:
    """Write every record of list ``spec`` to ``target``; a summary line unless quiet."""
    encoder = make_encoder(spec.model, args.format, excel=args.excel, sheet=spec.name)
    counters = _Counters(client)
    show = not args.quiet and sys.stderr.isatty()
    progress = Progress(sys.stderr if show else None, spec.name)
    started = time.monotonic()
    try:
        # Left in reverse order: the records (their fetches cancelled and awaited), then the
        # output (committed, or discarded on any error).
        async with contextlib.AsyncExitStack() as stack:
            # No await between making the output and handing it to the writer, which
            # commits or discards it whatever happens.
            output = open_output(target)
            writer = await stack.enter_async_context(BackgroundWriter(output, encoder))
            records = await stack.enter_async_context(
                contextlib.aclosing(_records(spec, client, args, counters))
            )
            count = await drain(
                records,
                writer,
                lambda n: progress.tick(n, counters.pages, counters.total, counters.retries),
            )
    finally:
        progress.done()
    if not args.quiet:
        say(
            f"{spec.name}: {count:,} records, {counters.pages:,} pages, "
            f"{counters.retries} retries, {time.monotonic() - started:.2f}s"
            + ("" if target == "-" else f" -> {target}")
        )


async def _records(
    spec: ListSpec[Any], client: BaseClient, args: argparse.Namespace, counters: _Counters
) -> AsyncGenerator[Any, None]:
    """Every record of list ``spec``. Each part's page stream is opened only when its turn
    comes, and closed (its fetches cancelled and awaited) when it ends or this generator is
    closed."""
    async with contextlib.aclosing(spec.segments(client, list_query(spec, args))) as segments:
        async for segment in segments:
            counters.attach(segment.pages)
            async for page in segment.pages:
                for record in page.items:
                    yield record


class _Counters:
    """Pages, totals and retries of the page streams of one list, for the progress line."""

    def __init__(self, client: BaseClient) -> None:
        self._client = client
        self._retries_before = client.stats.retries
        self._done_pages = 0
        self._done_total = 0
        self._current: PageStream[Any] | None = None

    def attach(self, stream: PageStream[Any]) -> None:
        if self._current is not None:
            self._done_pages += self._current.pages_read
            self._done_total += self._current.total or 0
        self._current = stream

    @property
    def pages(self) -> int:
        current = self._current.pages_read if self._current is not None else 0
        return self._done_pages + current

    @property
    def total(self) -> int | None:
        current = self._current.total if self._current is not None else None
        return None if current is None else self._done_total + current

    @property
    def retries(self) -> int:
        """Retries of this list's requests (the client may have served others before)."""
        return self._client.stats.retries - self._retries_before
