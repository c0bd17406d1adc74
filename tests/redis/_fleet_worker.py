"""One process of a fleet, run by tests/redis/test_fleet.py: read every order of the sandbox
account through a RedisCoordinator and print what it saw as one JSON line.

Usage: python _fleet_worker.py BASE_URL REDIS_URL MAX_CONCURRENCY [TIMEOUT [USER_AGENT]]
"""

from __future__ import annotations

import asyncio
import json
import sys

from yeastar_csss_async import CoordinatorError, RetryPolicy, YeastarPartnerClient
from yeastar_csss_async.redis import RedisCoordinator
from yeastar_csss_async.sandbox import SANDBOX_CLIENT_ID, SANDBOX_CLIENT_SECRET


async def main(
    base_url: str,
    redis_url: str,
    limit: int,
    attempt_timeout: float = 10.0,
    user_agent: str | None = None,
) -> int:
    async with RedisCoordinator.from_url(
        redis_url, socket_timeout=3, socket_connect_timeout=3
    ) as coordinator:
        try:
            async with YeastarPartnerClient(
                SANDBOX_CLIENT_ID,
                SANDBOX_CLIENT_SECRET,
                base_url=base_url,
                max_concurrency=limit,
                coordinator=coordinator,
                timeout=attempt_timeout,
                user_agent=user_agent,
                retry=RetryPolicy(initial_backoff=0.02, max_backoff=0.2),
            ) as client:
                ids = [order.id async for order in client.iter_orders(page_size=10)]
                token_requests = client.token_requests
        except CoordinatorError as error:
            print(json.dumps({"error": str(error)}), flush=True)
            return 3
    print(json.dumps({"ids": ids, "token_requests": token_requests}), flush=True)
    return 0


if __name__ == "__main__":
    extra = sys.argv[4:]
    sys.exit(
        asyncio.run(
            main(
                sys.argv[1],
                sys.argv[2],
                int(sys.argv[3]),
                float(extra[0]) if extra else 10.0,
                extra[1] if len(extra) > 1 else None,
            )
        )
    )
