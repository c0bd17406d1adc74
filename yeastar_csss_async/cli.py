"""The ``yeastar-csss`` command: bulk exports, and the sandbox to try them on.

::

    yeastar-csss export orders --sandbox --output orders.jsonl
    yeastar-csss export products --product-id 13 --format csv --output products.csv
    yeastar-csss export package-orders --order-status 1 --output -
    yeastar-csss sandbox --port 8080

Exit codes: 0 done; 1 API, transport or I/O error; 2 usage or configuration; 130 interrupted
(143 on SIGTERM); 141 the reader went away (``| head``). Credentials come from
``YEASTAR_CLIENT_ID``/``YEASTAR_CLIENT_SECRET`` and ``CSSS_ACCESS_CODE``/``CSSS_SECRET``, or
from the embedded sandbox with ``--sandbox``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import logging
import math
import os
import signal
import sys
import time
import urllib.parse
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Sequence
from typing import Any, NoReturn

from . import (
    CSSSClient,
    PackageOrder,
    Product,
    YeastarCSSSError,
    YeastarPartnerClient,
    __version__,
)
from ._base import BaseClient
from ._export import BackgroundWriter, Progress, RecordFormatter, drain
from ._output import OneLineLog, detach_stdout, open_output, say
from ._paging import PageIterator
from .models import Order
from .sandbox import (
    SANDBOX_ACCESS_CODE,
    SANDBOX_CLIENT_ID,
    SANDBOX_CLIENT_SECRET,
    SANDBOX_SECRET,
    Sandbox,
    SandboxConfig,
    run_sandbox,
)

__all__ = ["main"]

MODELS: dict[str, type[Any]] = {"orders": Order, "products": Product,
                                "package-orders": PackageOrder}


class UsageError(Exception):
    """A configuration problem: one line to stderr, exit 2."""


class _Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line: what is wrong, and where to look."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def _number(parse: Callable[[str], float], low: float, high: float,
            expected: str) -> Callable[[str], Any]:
    """An argparse type: ``parse(text)`` if it lies in [low, high] (never NaN or infinite)."""

    def convert(text: str) -> Any:
        try:
            value = parse(text)
        except ValueError:
            value = math.nan
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text[:80]!r}")
        return value

    return convert


_positive = _number(int, 1, sys.maxsize, "a whole number >= 1")
_seconds = _number(float, 0, sys.float_info.max, "seconds >= 0")
_share = _number(float, 0, 1, "a number from 0 to 1")
_port = _number(int, 0, 65535, "a port from 0 to 65535")


def _base_url(text: str) -> str:
    try:
        parts = urllib.parse.urlsplit(text)
        valid = parts.scheme in ("http", "https") and bool(parts.hostname)
        parts.port  # noqa: B018 - raises ValueError for a port out of range
    except ValueError:
        valid = False
    if not valid:
        raise argparse.ArgumentTypeError(
            f"expected an http:// or https:// URL with a host, got {text[:80]!r}")
    return text


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (kept separate so tests and docs can read it)."""
    parser = _Parser(prog="yeastar-csss", description=__doc__.split("::")[0],
                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)

    export = commands.add_parser("export", help="export every record of a list")
    export.add_argument("kind", choices=sorted(MODELS), help="what to export")
    export.add_argument("--format", choices=("jsonl", "csv"), default="jsonl")
    export.add_argument("--output", "-o", default="-", help="file to write, or - for stdout")
    export.add_argument("--page-size", type=_positive, default=None,
                        help="records per page (default 100; CSSS 50)")
    export.add_argument("--concurrency", type=_positive, default=8,
                        help="requests in flight at most (default 8)")
    export.add_argument("--base-url", type=_base_url, default=None,
                        help="API base URL (default: the vendor's)")
    export.add_argument("--product-id", type=_positive, action="append", default=None,
                        help="products: a product line id, repeatable (default: every line)")
    export.add_argument("--unordered", action="store_true",
                        help="write records as pages land, not in page order")
    for name in ("device-id", "order-id", "order-status", "order-type"):
        export.add_argument(f"--{name}", default=None, help="package-orders filter")
    export.add_argument("--quiet", "-q", action="store_true", help="no progress, no summary")
    export.add_argument("--sandbox", action="store_true",
                        help="export from the embedded sandbox (no credentials needed)")
    sizes = export.add_argument_group("sandbox (with --sandbox)")
    sizes.add_argument("--sandbox-size", type=_positive, default=None,
                       help="records in the exported sandbox list")
    sizes.add_argument("--sandbox-latency", type=_seconds, default=0.0,
                       help="seconds added to every sandbox request")
    sizes.add_argument("--sandbox-fault-rate", type=_share, default=0.0,
                       help="share of sandbox requests that fail transiently")

    sandbox = commands.add_parser("sandbox", help="serve the sandbox until Ctrl-C")
    sandbox.add_argument("--host", default="127.0.0.1")
    sandbox.add_argument("--port", type=_port, default=8080)
    sandbox.add_argument("--latency", type=_seconds, default=0.0)
    sandbox.add_argument("--fault-rate", type=_share, default=0.0)
    defaults = SandboxConfig()
    sandbox.add_argument("--orders", type=_positive, default=defaults.orders)
    sandbox.add_argument("--products-per-line", type=_positive,
                         default=defaults.products_per_line)
    sandbox.add_argument("--package-orders", type=_positive,
                         default=defaults.package_orders)
    return parser


def _env(*names: str) -> list[str]:
    values = [os.environ.get(name, "").strip() for name in names]
    missing = [name for name, value in zip(names, values, strict=True) if not value]
    if missing:
        raise UsageError(f"set {' and '.join(missing)} (or use --sandbox)")
    return values


def _make_client(args: argparse.Namespace, base_url: str | None) -> BaseClient:
    try:
        return _new_client(args, base_url)
    except ValueError as error:  # a credential the client refuses (not printable, ...)
        raise UsageError(str(error)) from None


def _new_client(args: argparse.Namespace, base_url: str | None) -> BaseClient:
    options: dict[str, Any] = {"max_concurrency": args.concurrency}
    url = base_url or args.base_url
    if url:
        options["base_url"] = url
    if args.kind == "package-orders":
        if args.sandbox:
            return CSSSClient(SANDBOX_ACCESS_CODE, SANDBOX_SECRET, **options)
        access_code, secret = _env("CSSS_ACCESS_CODE", "CSSS_SECRET")
        return CSSSClient(access_code, secret, **options)
    if args.sandbox:
        return YeastarPartnerClient(SANDBOX_CLIENT_ID, SANDBOX_CLIENT_SECRET, **options)
    client_id, client_secret = _env("YEASTAR_CLIENT_ID", "YEASTAR_CLIENT_SECRET")
    return YeastarPartnerClient(client_id, client_secret, **options)


async def _records(client: BaseClient, args: argparse.Namespace,
                   progress: _Counters) -> AsyncGenerator[Any, None]:
    """Every record of the export. Each list's iterator is made only when its turn comes, and
    closed (its fetches cancelled and awaited) when it ends or this generator is closed."""
    ordered = not args.unordered
    lists: list[Callable[[], PageIterator[Any]]]
    if isinstance(client, CSSSClient):
        lists = [functools.partial(
            client.iter_package_orders, page_size=args.page_size or 50, ordered=ordered,
            device_id=args.device_id, order_id=args.order_id,
            order_status=args.order_status, order_type=args.order_type)]
    else:
        assert isinstance(client, YeastarPartnerClient)
        page_size = args.page_size or 100
        if args.kind == "orders":
            lists = [functools.partial(client.iter_orders, page_size=page_size,
                                       ordered=ordered)]
        else:
            lines = args.product_id or [line.product_id for line in
                                        await client.list_subscription_products()
                                        if line.product_id is not None]
            lists = [functools.partial(client.iter_products, line, page_size=page_size,
                                       ordered=ordered) for line in lines]
    for make in lists:
        async with make() as iterator:
            progress.attach(iterator)
            async for record in iterator:
                yield record


class _Counters:
    """Pages and totals of the iterators of one export, for the progress line."""

    def __init__(self) -> None:
        self._done_pages = 0
        self._current: Any = None

    def attach(self, iterator: Any) -> None:
        if self._current is not None:
            self._done_pages += self._current.pages_read
        self._current = iterator

    @property
    def pages(self) -> int:
        current = self._current.pages_read if self._current is not None else 0
        return self._done_pages + current

    @property
    def total(self) -> int | None:
        return self._current.total if self._current is not None else None


async def _export(args: argparse.Namespace) -> int:
    if args.kind != "products" and args.product_id:
        raise UsageError("--product-id applies to products only")
    formatter = RecordFormatter(MODELS[args.kind], args.format)
    counters = _Counters()
    show = not args.quiet and sys.stderr.isatty()
    progress = Progress(sys.stderr if show else None, args.kind)
    started = time.monotonic()
    try:
        # Left in reverse order: the records (their fetches cancelled and awaited), the
        # client, the output (committed, or discarded on any error), the sandbox.
        async with contextlib.AsyncExitStack() as stack:
            base_url = None
            if args.sandbox:
                base_url = await stack.enter_async_context(_sandbox(args))
            client = _make_client(args, base_url)  # configuration errors come first
            # No await between making the output and handing it to the writer, which
            # commits or discards it whatever happens.
            output = open_output(args.output)
            writer = await stack.enter_async_context(BackgroundWriter(output, formatter))
            await stack.enter_async_context(client)
            records = await stack.enter_async_context(
                contextlib.aclosing(_records(client, args, counters)))
            count = await drain(records, writer,
                                lambda n: progress.tick(n, counters.pages, counters.total))
    finally:
        progress.done()
    if not args.quiet:
        say(f"{args.kind}: {count:,} records, {counters.pages:,} pages, "
            f"{client.stats.retries} retries, {time.monotonic() - started:.2f}s"
            + ("" if args.output == "-" else f" -> {args.output}"))
    return 0


@contextlib.asynccontextmanager
async def _sandbox(args: argparse.Namespace) -> AsyncIterator[str]:
    """The embedded sandbox for ``export --sandbox``; yields its base URL."""
    kind_size = {"orders": "orders", "products": "products_per_line",
                 "package-orders": "package_orders"}[args.kind]
    config = SandboxConfig(latency=args.sandbox_latency, fault_rate=args.sandbox_fault_rate)
    if args.sandbox_size:
        setattr(config, kind_size, args.sandbox_size)
    async with Sandbox(config) as sandbox:
        yield sandbox.base_url


async def _serve(args: argparse.Namespace) -> int:
    config = SandboxConfig(latency=args.latency, fault_rate=args.fault_rate,
                           orders=args.orders, products_per_line=args.products_per_line,
                           package_orders=args.package_orders)

    def ready(sandbox: Sandbox) -> None:
        print(f"sandbox serving on {sandbox.base_url} (Ctrl-C stops it)\n"
              f"  export YEASTAR_CLIENT_ID={SANDBOX_CLIENT_ID} "
              f"YEASTAR_CLIENT_SECRET={SANDBOX_CLIENT_SECRET}\n"
              f"  export CSSS_ACCESS_CODE={SANDBOX_ACCESS_CODE} CSSS_SECRET={SANDBOX_SECRET}\n"
              f"  yeastar-csss export orders --base-url {sandbox.base_url}", flush=True)

    await run_sandbox(config, host=args.host, port=args.port, on_ready=ready)
    return 0


async def _run(args: argparse.Namespace) -> int:
    main_task = asyncio.current_task()
    loop = asyncio.get_running_loop()
    terminated: list[bool] = []

    def on_sigterm() -> None:
        terminated.append(True)
        if main_task is not None:
            main_task.cancel()

    with contextlib.suppress(NotImplementedError, RuntimeError):
        loop.add_signal_handler(signal.SIGTERM, on_sigterm)
    try:
        return await (_export(args) if args.command == "export" else _serve(args))
    except asyncio.CancelledError:
        if terminated:
            return 143
        raise


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command; return its exit code (the console script exits with it).

    Whatever happens, stderr gets one line per problem, never a traceback.
    """
    handler = OneLineLog(logging.WARNING)
    logging.getLogger().addHandler(handler)
    try:
        return _main(argv)
    finally:
        logging.getLogger().removeHandler(handler)


def _main(argv: Sequence[str] | None) -> int:
    try:
        args = build_parser().parse_args(argv)
        code = asyncio.run(_run(args))
    except KeyboardInterrupt:
        code = 130
    except UsageError as error:
        say(f"yeastar-csss: {error}")
        code = 2
    except YeastarCSSSError as error:
        details = [f"{key}={value}" for key, value in (
            ("status", getattr(error, "status", None)), ("code", getattr(error, "code", None)),
            ("request_id", getattr(error, "request_id", None))) if value is not None]
        suffix = f" ({', '.join(details)})" if details else ""
        say(f"error: {type(error).__name__}: {getattr(error, 'message', error)}{suffix}")
        code = 1
    except BrokenPipeError:  # the reader went away (`| head`): stop quietly, as Unix tools do
        code = 141
    except OSError as error:  # disk full, I/O error, an output that cannot be written
        reason = error.strerror or str(error) or type(error).__name__
        say(f"yeastar-csss: {error.filename}: {reason}" if error.filename is not None
            else f"yeastar-csss: {reason}")
        code = 1
    except Exception as error:  # a bug: still one line, with what a report needs
        say(f"yeastar-csss: unexpected {type(error).__name__}: {error}")
        code = 1
    if code == 130:
        say("interrupted")
    elif code == 143:
        say("terminated")
    if code in (130, 141, 143):
        detach_stdout()
    return code
