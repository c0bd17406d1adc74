"""The commands: ``export LIST``, ``export all``, ``sync`` (in ``_sync``) and ``sandbox``."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import os
import signal
import sys
import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from typing import Any

import attrs

from .. import CSSSClient, PackageOrder, Product, YeastarPartnerClient
from .._base import BaseClient, env_values
from .._paging import PageIterator
from ..models import Order
from ..sandbox import (
    SANDBOX_ACCESS_CODE,
    SANDBOX_CLIENT_ID,
    SANDBOX_CLIENT_SECRET,
    SANDBOX_SECRET,
    Sandbox,
    SandboxConfig,
    run_sandbox,
)
from ._export import BackgroundWriter, Progress, drain
from ._output import open_output, say
from ._parser import LISTS, check_base_url
from ._writers import make_encoder

__all__ = [
    "MODELS",
    "UsageError",
    "csss_configured",
    "list_names",
    "make_client",
    "open_clients",
    "run",
    "sandbox_url",
]

MODELS: dict[str, type[Any]] = {
    "orders": Order,
    "products": Product,
    "package-orders": PackageOrder,
}
_SANDBOX_SIZES = {
    "orders": "orders",
    "products": "products_per_line",
    "package-orders": "package_orders",
}
_CSSS_ENV = ("CSSS_ACCESS_CODE", "CSSS_SECRET")
_YEASTAR_ENV = ("YEASTAR_CLIENT_ID", "YEASTAR_CLIENT_SECRET")
_YEASTAR_BASE_URL = "YEASTAR_BASE_URL"
_CSSS_BASE_URL = "CSSS_BASE_URL"


class UsageError(Exception):
    """A configuration problem: one line to stderr, exit 2."""


async def run(args: argparse.Namespace) -> int:
    """Run the parsed command; SIGTERM cancels it and makes the exit code 143."""
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
        if args.command == "export":
            return await _export(args)
        if args.command == "sync":
            from ._sync import run_sync  # the [sync] extra is imported only for sync

            return await run_sync(args)
        if args.command in ("worker", "enqueue"):
            from ._workers import run_enqueue, run_worker  # the [workers] extra: only here

            return await (run_worker(args) if args.command == "worker" else run_enqueue(args))
        return await _serve(args)
    except asyncio.CancelledError:
        if terminated:
            return 143
        raise


# --- configuration -----------------------------------------------------------------------


def _check_options(args: argparse.Namespace) -> None:
    """Usage errors that the parser cannot see, before anything starts."""
    every = args.kind == "all"
    if args.product_id and args.kind not in ("products", "all"):
        raise UsageError("--product-id applies to products only")
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
            from . import _xlsx  # noqa: F401 - openpyxl is there
        except ImportError as error:
            raise UsageError(str(error)) from None


def _env(*names: str) -> list[str]:
    values, missing = env_values(names)
    if missing:
        raise UsageError(f"set {' and '.join(missing)} (or use --sandbox)")
    return values


def _base_url_from_env(name: str) -> str | None:
    """The base URL in variable ``name`` (``--base-url`` wins), checked like the option."""
    text = os.environ.get(name, "").strip()
    if not text:
        return None
    try:
        return check_base_url(text)
    except argparse.ArgumentTypeError as error:
        raise UsageError(f"{name}: {error}") from None


def csss_configured() -> bool:
    return any(os.environ.get(name, "").strip() for name in _CSSS_ENV)


def make_client(name: str, args: argparse.Namespace, base_url: str | None) -> BaseClient:
    """The client for list ``name``: the sandbox's credentials or the environment's."""
    options: dict[str, Any] = {"max_concurrency": args.concurrency}
    csss = name == "package-orders"
    url = (
        base_url
        or (args.base_url if not csss or args.kind != "all" else None)
        or _base_url_from_env(_CSSS_BASE_URL if csss else _YEASTAR_BASE_URL)
    )
    if url:
        options["base_url"] = url
    try:
        if name == "package-orders":
            access_code, secret = (
                (SANDBOX_ACCESS_CODE, SANDBOX_SECRET) if args.sandbox else _env(*_CSSS_ENV)
            )
            return CSSSClient(access_code, secret, **options)
        client_id, client_secret = (
            (SANDBOX_CLIENT_ID, SANDBOX_CLIENT_SECRET) if args.sandbox else _env(*_YEASTAR_ENV)
        )
        return YeastarPartnerClient(client_id, client_secret, **options)
    except ValueError as error:  # a credential the client refuses (not printable, ...)
        raise UsageError(str(error)) from None


@contextlib.asynccontextmanager
async def sandbox_url(args: argparse.Namespace, names: tuple[str, ...]) -> AsyncIterator[str]:
    """The embedded sandbox for ``export --sandbox`` and ``sync --sandbox``; yields its base
    URL."""
    config = SandboxConfig(
        latency=args.sandbox_latency,
        fault_rate=args.sandbox_fault_rate,
        revision=args.sandbox_revision,
    )
    if args.sandbox_size:
        for name in names:
            setattr(config, _SANDBOX_SIZES[name], args.sandbox_size)
    async with Sandbox(config) as sandbox:
        yield sandbox.base_url


# --- export ------------------------------------------------------------------------------


def list_names(args: argparse.Namespace) -> tuple[str, ...]:
    """The lists ``args.kind`` names: one, or for ``all`` every list there are credentials
    for (package orders only with CSSS credentials or ``--sandbox``)."""
    if args.kind != "all":
        return (args.kind,)
    return LISTS if args.sandbox or csss_configured() else ("orders", "products")


async def open_clients(
    stack: contextlib.AsyncExitStack, args: argparse.Namespace, names: tuple[str, ...]
) -> tuple[BaseClient | None, BaseClient | None]:
    """The Yeastar and CSSS clients ``names`` need (None where not needed), entered on
    ``stack``, with the embedded sandbox first when ``--sandbox`` is given. Configuration
    errors come before any client or output is made."""
    base_url = await stack.enter_async_context(sandbox_url(args, names)) if args.sandbox else None
    yeastar = make_client("orders", args, base_url) if {"orders", "products"} & set(names) else None
    csss = make_client("package-orders", args, base_url) if "package-orders" in names else None
    for client in (yeastar, csss):
        if client is not None:
            await stack.enter_async_context(client)
    return yeastar, csss


async def _export(args: argparse.Namespace) -> int:
    _check_options(args)
    names = list_names(args)
    async with contextlib.AsyncExitStack() as stack:
        yeastar, csss = await open_clients(stack, args, names)
        if args.kind != "all":
            client = csss if csss is not None else yeastar
            assert client is not None
            await _export_list(args.kind, client, args, args.output or "-")
            return 0
        return await _export_all(args, names, yeastar, csss)


async def _export_all(
    args: argparse.Namespace,
    names: tuple[str, ...],
    yeastar: BaseClient | None,
    csss: BaseClient | None,
) -> int:
    directory = args.output_dir
    os.makedirs(directory, exist_ok=True)
    done: list[str] = []
    current = names[0]
    try:
        for current in names:
            client = csss if current == "package-orders" else yeastar
            assert client is not None
            target = os.path.join(directory, f"{current}.{args.format}")
            await _export_list(current, client, args, target)
            done.append(current)
    except BaseException:
        left = [name for name in names if name not in done]
        say(
            f"export all: stopped at {current}; completed: {', '.join(done) or 'none'}; "
            f"not written: {', '.join(left)}"
        )
        raise
    if "package-orders" not in names and not args.quiet:
        say("package-orders: skipped (set CSSS_ACCESS_CODE and CSSS_SECRET to export it)")
    return 0


async def _export_list(
    name: str, client: BaseClient, args: argparse.Namespace, target: str
) -> None:
    """Write every record of list ``name`` to ``target``; a summary line unless quiet."""
    encoder = make_encoder(MODELS[name], args.format, excel=args.excel, sheet=name)
    counters = _Counters(client)
    show = not args.quiet and sys.stderr.isatty()
    progress = Progress(sys.stderr if show else None, name)
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
                contextlib.aclosing(_records(name, client, args, counters))
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
            f"{name}: {count:,} records, {counters.pages:,} pages, "
            f"{counters.retries} retries, {time.monotonic() - started:.2f}s"
            + ("" if target == "-" else f" -> {target}")
        )


async def _records(
    name: str, client: BaseClient, args: argparse.Namespace, counters: _Counters
) -> AsyncGenerator[Any, None]:
    """Every record of list ``name``. Each iterator is made only when its turn comes, and
    closed (its fetches cancelled and awaited) when it ends or this generator is closed."""
    ordered = not args.unordered
    lists: list[Callable[[], PageIterator[Any]]]
    if isinstance(client, CSSSClient):
        lists = [
            functools.partial(
                client.iter_package_orders,
                page_size=args.page_size or 50,
                ordered=ordered,
                device_id=args.device_id,
                order_id=args.order_id,
                order_status=args.order_status,
                order_type=args.order_type,
            )
        ]
    else:
        assert isinstance(client, YeastarPartnerClient)
        page_size = args.page_size or 100
        if name == "orders":
            lists = [functools.partial(client.iter_orders, page_size=page_size, ordered=ordered)]
        else:
            lines = args.product_id or [
                line.product_id
                for line in await client.list_subscription_products()
                if line.product_id is not None
            ]
            lists = [
                functools.partial(client.iter_products, line, page_size=page_size, ordered=ordered)
                for line in lines
            ]
    for make in lists:
        async with make() as iterator:
            counters.attach(iterator)
            async for record in iterator:
                yield record


class _Counters:
    """Pages, totals and retries of the iterators of one list, for the progress line."""

    def __init__(self, client: BaseClient) -> None:
        self._client = client
        self._retries_before = client.stats.retries
        self._done_pages = 0
        self._done_total = 0
        self._current: Any = None

    def attach(self, iterator: Any) -> None:
        if self._current is not None:
            self._done_pages += self._current.pages_read
            self._done_total += self._current.total or 0
        self._current = iterator

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


# --- sandbox -----------------------------------------------------------------------------


async def _serve(args: argparse.Namespace) -> int:
    config = SandboxConfig(
        latency=args.latency,
        fault_rate=args.fault_rate,
        orders=args.orders,
        products_per_line=args.products_per_line,
        package_orders=args.package_orders,
        revision=args.revision,
    )
    serving: list[Sandbox] = []

    def ready(sandbox: Sandbox) -> None:
        serving.append(sandbox)
        print(
            f"sandbox serving on {sandbox.base_url} (Ctrl-C stops it)\n"
            f"  export YEASTAR_CLIENT_ID={SANDBOX_CLIENT_ID} "
            f"YEASTAR_CLIENT_SECRET={SANDBOX_CLIENT_SECRET} "
            f"YEASTAR_BASE_URL={sandbox.base_url}\n"
            f"  export CSSS_ACCESS_CODE={SANDBOX_ACCESS_CODE} CSSS_SECRET={SANDBOX_SECRET} "
            f"CSSS_BASE_URL={sandbox.base_url}\n"
            f"  yeastar-csss export all --output-dir exports",
            flush=True,
        )

    try:
        await run_sandbox(config, host=args.host, port=args.port, on_ready=ready)
    finally:
        if args.stats and serving:
            with contextlib.suppress(OSError, ValueError):  # stdout gone: nothing to say
                print(format_stats(serving[0].stats), flush=True)
    return 0


def format_stats(stats: attrs.AttrsInstance) -> str:
    """The sandbox's counters (any attrs instance), one ``name: value`` line each; clock
    readings (``*_at``) are left out."""
    lines = ["sandbox stats:"]
    for field in attrs.fields(type(stats)):
        if field.name.endswith("_at"):
            continue
        value = getattr(stats, field.name)
        if isinstance(value, dict):
            text = ", ".join(f"{key} {count}" for key, count in sorted(value.items())) or "-"
        elif isinstance(value, set | frozenset):
            text = ", ".join(sorted(map(str, value))) or "-"
        else:
            text = str(value)
        lines.append(f"  {field.name}: {text}")
    return "\n".join(lines)
