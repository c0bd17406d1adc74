"""Where a command's records come from: the lists it names, the clients those need (with the
environment's credentials or the embedded sandbox's), configured before anything starts."""

from __future__ import annotations

import argparse
import contextlib
import os
from collections.abc import AsyncIterator, Mapping
from typing import Any

from .._apis import CSSS, YEASTAR, ApiSpec
from .._base import BaseClient, env_values
from .._csss import CSSSClient
from .._lists import LISTS, ListQuery, ListSpec
from .._yeastar import YeastarPartnerClient
from ..sandbox import (
    SANDBOX_ACCESS_CODE,
    SANDBOX_CLIENT_ID,
    SANDBOX_CLIENT_SECRET,
    SANDBOX_SECRET,
    Sandbox,
    SandboxConfig,
)
from ._parser import check_base_url
from ._usage import UsageError

__all__ = ["Clients", "list_query", "list_specs", "open_clients"]

_SANDBOX_CREDENTIALS = {
    YEASTAR.name: (SANDBOX_CLIENT_ID, SANDBOX_CLIENT_SECRET),
    CSSS.name: (SANDBOX_ACCESS_CODE, SANDBOX_SECRET),
}

Clients = Mapping[str, BaseClient]
"""The open clients of a command, by API name (``clients[spec.api.name]``)."""


def _credentials(api: ApiSpec) -> tuple[str, str]:
    (public, secret), missing = env_values(api.credential_env)
    if missing:
        raise UsageError(f"set {' and '.join(missing)} (or use --sandbox)")
    return public, secret


def _base_url_from_env(api: ApiSpec) -> str | None:
    """The base URL in the API's variable (``--base-url`` wins), checked like the option."""
    text = os.environ.get(api.base_url_env, "").strip()
    if not text:
        return None
    try:
        return check_base_url(text)
    except argparse.ArgumentTypeError as error:
        raise UsageError(f"{api.base_url_env}: {error}") from None


def _configured(api: ApiSpec) -> bool:
    return any(os.environ.get(name, "").strip() for name in api.credential_env)


def _make_client(api: ApiSpec, args: argparse.Namespace, sandbox_url: str | None) -> BaseClient:
    """The client of ``api``: the sandbox's credentials or the environment's. ``--base-url``
    applies to the Yeastar API (with ``all``) or to the one API of the list named."""
    options: dict[str, Any] = {"max_concurrency": args.concurrency}
    option_url = args.base_url if api is YEASTAR or args.kind != "all" else None
    url = sandbox_url or option_url or _base_url_from_env(api)
    if url:
        options["base_url"] = url
    public, secret = _SANDBOX_CREDENTIALS[api.name] if args.sandbox else _credentials(api)
    try:
        if api is CSSS:
            return CSSSClient(public, secret, **options)
        return YeastarPartnerClient(public, secret, **options)
    except ValueError as error:  # a credential the client refuses (not printable, ...)
        raise UsageError(str(error)) from None


def list_specs(args: argparse.Namespace) -> tuple[ListSpec[Any], ...]:
    """The lists ``args.kind`` names: one, or for ``all`` every list whose API there are
    credentials for (with ``--sandbox``: all of them). The Yeastar lists are always read."""
    if args.kind != "all":
        return (LISTS[args.kind],)
    return tuple(
        spec
        for spec in LISTS.values()
        if spec.api is YEASTAR or args.sandbox or _configured(spec.api)
    )


def skipped_lists(specs: tuple[ListSpec[Any], ...]) -> list[tuple[ListSpec[Any], ApiSpec]]:
    """The lists ``all`` left out (no credentials for their API), each with its API."""
    return [(spec, spec.api) for spec in LISTS.values() if spec not in specs]


def list_query(spec: ListSpec[Any], args: argparse.Namespace) -> ListQuery:
    """The part of list ``spec`` the options ask for: ``--product-id`` for a list scoped by
    product line, the filters for a list that takes them, the page size and order."""
    product_ids = args.product_id if "product_id" in spec.scope_names else None
    filters = {name: getattr(args, name) for name in spec.filters}
    return ListQuery(
        page_size=args.page_size,
        ordered=not getattr(args, "unordered", False),
        product_ids=product_ids,
        filters=filters,
    )


def check_scope_options(args: argparse.Namespace) -> None:
    """``--product-id`` only with a list scoped by product line (or ``all``)."""
    scoped = args.kind == "all" or "product_id" in LISTS[args.kind].scope_names
    if args.product_id and not scoped:
        raise UsageError("--product-id applies to products only")


@contextlib.asynccontextmanager
async def _sandbox(
    args: argparse.Namespace, specs: tuple[ListSpec[Any], ...]
) -> AsyncIterator[str]:
    """The embedded sandbox for ``--sandbox``, sized by ``--sandbox-size``; yields its URL."""
    config = SandboxConfig(
        latency=args.sandbox_latency,
        fault_rate=args.sandbox_fault_rate,
        revision=args.sandbox_revision,
    )
    if args.sandbox_size:
        for spec in specs:
            setattr(config, spec.sandbox_size, args.sandbox_size)
    async with Sandbox(config) as sandbox:
        yield sandbox.base_url


async def open_clients(
    stack: contextlib.AsyncExitStack, args: argparse.Namespace, specs: tuple[ListSpec[Any], ...]
) -> dict[str, BaseClient]:
    """The clients the lists ``specs`` need, by API name, entered on ``stack``, with the
    embedded sandbox first when ``--sandbox`` is given. Configuration errors come before any
    client or output is made."""
    url = await stack.enter_async_context(_sandbox(args, specs)) if args.sandbox else None
    apis = {spec.api.name: spec.api for spec in specs}
    clients = {name: _make_client(api, args, url) for name, api in apis.items()}
    for client in clients.values():
        await stack.enter_async_context(client)
    return clients
