"""A sandbox intercept that answers one 429, and records who waited out its pause."""

from __future__ import annotations

import time

from aiohttp import web


class OneRateLimit:
    """A sandbox ``intercept`` that answers one orders page with 429 and ``Retry-After:
    pause``, and records when every other orders request reached the handler (``time.
    monotonic()``), to check who waited out the pause."""

    def __init__(self, pause: float, page_no: int) -> None:
        self.pause = pause
        self.page_no = str(page_no)
        self.limited: list[float] = []  # when the 429 was answered (once)
        self.arrivals: list[float] = []

    async def __call__(self, request: web.Request) -> web.StreamResponse | None:
        from yeastar_csss_async.sandbox._app import ORDERS_PATH

        if request.path != ORDERS_PATH:
            return None
        now = time.monotonic()
        if not self.limited and request.query.get("pageNo") == self.page_no:
            self.limited.append(now)
            return web.json_response(
                {"code": "too_many_requests"}, status=429, headers={"Retry-After": str(self.pause)}
            )
        self.arrivals.append(now)
        return None

    def during(self, margin: float) -> list[float]:
        """Arrivals after the 429 and before the pause's end, less ``margin`` seconds."""
        start = self.limited[0]
        return [t for t in self.arrivals if start < t < start + self.pause - margin]
