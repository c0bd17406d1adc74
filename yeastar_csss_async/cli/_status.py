"""``yeastar-csss status``: the job queue and what each account shares through the
coordinator, read from Redis; never a token or a password.

The queue (the stream and its consumer group ``<queue>:workers``, see
:func:`~yeastar_csss_async.tasks.make_broker`): ``waiting`` is the group's lag (entries no
worker has taken; the whole stream before any worker made the group), ``running`` the
pending entries (taken, not acknowledged) except the ``dead`` ones: pending entries idle over
``--dead-after`` seconds whose consumer has been idle that long too (XINFO GROUPS, XPENDING,
XINFO CONSUMERS).

Accounts are the names in the coordinator's keys (``<namespace>:<account>:slots``, ``:pause``,
``:token``; see :mod:`yeastar_csss_async.redis`): the leases of ``:slots`` not yet expired
(Redis time), the ``:pause`` key's time to live, and of the token only its age (from the
``stored_at`` time stored beside it) and its time to live; its value is never printed.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import re
from typing import Any

from ._fleet import redis_errors, redis_failure
from ._usage import UsageError

__all__ = ["read_status", "run_status"]

_SUFFIXES = ("slots", "pause", "token")
_GLOB_SPECIAL = re.compile(r"([*?\[\]\\])")
_PAGE = 1000


async def run_status(args: argparse.Namespace) -> int:
    """Print the status lines (or one JSON object with ``--json``) on stdout."""
    try:
        import redis.asyncio as aioredis
    except ImportError:
        raise UsageError(
            "status needs the [workers] extra: pip install 'yeastar-csss-async[workers]'"
        ) from None
    client = aioredis.from_url(
        args.redis, decode_responses=True, socket_timeout=10, socket_connect_timeout=10
    )
    try:
        status = await read_status(
            client,
            queue=args.queue,
            namespace=args.namespace,
            dead_after=args.dead_after,
        )
    except (OSError, redis_errors()) as error:
        raise redis_failure(args.redis, error) from None
    finally:
        with contextlib.suppress(Exception):
            await client.aclose()
    if args.json:
        print(json.dumps(status, sort_keys=True), flush=True)
    else:
        for line in status_lines(status):
            print(line, flush=True)
    return 0


async def read_status(
    client: Any, *, queue: str, namespace: str, dead_after: float
) -> dict[str, Any]:
    """The queue, its consumers and the accounts, as plain data (seconds as floats)."""
    seconds, micros = await client.time()
    now_ms = int(seconds) * 1000 + int(micros) // 1000
    queue_info, consumers = await _queue(client, queue, dead_after)
    return {
        "queue": queue_info,
        "consumers": consumers,
        "accounts": await _accounts(client, namespace, now_ms),
    }


async def _queue(
    client: Any, queue: str, dead_after: float
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    group_name = f"{queue}:workers"
    info: dict[str, Any] = {
        "name": queue,
        "waiting": 0,
        "running": 0,
        "dead": 0,
        "dead_after": dead_after,
    }
    if not await client.exists(queue):
        return info, []
    groups = {group["name"]: group for group in await client.xinfo_groups(queue)}
    group = groups.get(group_name)
    if group is None:  # no worker ever started: every job is waiting
        info["waiting"] = await client.xlen(queue)
        return info, []
    info["waiting"] = await _lag(client, queue, group)
    pending = int(group.get("pending") or 0)
    consumers: list[dict[str, Any]] = [
        {
            "name": str(consumer["name"]),
            "pending": int(consumer.get("pending") or 0),
            "idle": int(consumer.get("idle") or 0) / 1000,
        }
        for consumer in await client.xinfo_consumers(queue, group_name)
    ]
    idle_consumers = {c["name"] for c in consumers if c["idle"] > dead_after}
    dead = 0
    if idle_consumers:
        start = "-"
        idle_ms = int(dead_after * 1000) + 1
        while True:
            entries = await client.xpending_range(
                queue, group_name, min=start, max="+", count=_PAGE, idle=idle_ms
            )
            dead += sum(str(entry["consumer"]) in idle_consumers for entry in entries)
            if len(entries) < _PAGE:
                break
            start = "(" + str(entries[-1]["message_id"])
    info["running"] = pending - dead
    info["dead"] = dead
    return info, consumers


async def _lag(client: Any, queue: str, group: dict[str, Any]) -> int:
    """Entries of the stream not yet delivered to the group."""
    lag = group.get("lag")
    if lag is not None:
        return int(lag)
    # Redis cannot tell (entries deleted or trimmed): count what follows the last delivered.
    last = str(group.get("last-delivered-id") or "0-0")
    count, start = 0, f"({last}"
    while True:
        entries = await client.xrange(queue, min=start, max="+", count=_PAGE)
        count += len(entries)
        if len(entries) < _PAGE:
            return count
        start = "(" + str(entries[-1][0])


async def _accounts(client: Any, namespace: str, now_ms: int) -> list[dict[str, Any]]:
    prefix = _GLOB_SPECIAL.sub(r"\\\1", namespace) + ":"
    names: set[str] = set()
    for suffix in _SUFFIXES:
        async for key in client.scan_iter(match=f"{prefix}*:{suffix}", count=_PAGE):
            account = str(key)[len(namespace) + 1 : -len(suffix) - 1]
            if account and ":" not in account:
                names.add(account)
    return [await _account(client, namespace, name, now_ms) for name in sorted(names)]


async def _account(client: Any, namespace: str, account: str, now_ms: int) -> dict[str, Any]:
    key = f"{namespace}:{account}:"
    slots = await client.zcount(key + "slots", f"({now_ms}", "+inf")
    pause_ms = await client.pttl(key + "pause")
    token_ms = await client.pttl(key + "token")
    found: dict[str, Any] = {
        "account": account,
        "slots": int(slots),
        "pause": max(0, int(pause_ms)) / 1000,  # -1 (no expiry) is not a pause
        "token": token_ms != -2,
        "token_age": None,
        "token_ttl": None if token_ms < 0 else token_ms / 1000,
    }
    if found["token"]:
        stored_at = _stored_at(await client.get(key + "token"))
        if stored_at is not None:
            found["token_age"] = max(0.0, round(now_ms / 1000 - stored_at, 3))
    return found


def _stored_at(raw: str | None) -> float | None:
    """The ``stored_at`` time beside the token (epoch seconds); nothing else of the value
    leaves this function."""
    try:
        value = json.loads(raw) if raw is not None else None
        return float(value["stored_at"]) if isinstance(value, dict) else None
    except (ValueError, TypeError, KeyError):
        return None


def status_lines(status: dict[str, Any]) -> list[str]:
    """One line per item: the queue, each consumer, each account."""
    queue = status["queue"]
    lines = [
        f"queue {queue['name']} waiting={queue['waiting']} running={queue['running']} "
        f"dead={queue['dead']} dead_after={queue['dead_after']:g}s"
    ]
    lines += [
        f"consumer {c['name']} pending={c['pending']} idle={c['idle']:.1f}s"
        for c in status["consumers"]
    ]
    for account in status["accounts"]:
        if not account["token"]:
            token = "token=none"
        else:
            age = account["token_age"]
            ttl = account["token_ttl"]
            token = (
                f"token_age={'?' if age is None else f'{age:.0f}s'} "
                f"token_ttl={'?' if ttl is None else f'{ttl:.0f}s'}"
            )
        lines.append(
            f"account {account['account']} slots={account['slots']} "
            f"pause={account['pause']:.1f}s {token}"
        )
    return lines
