"""TokenManager (``_auth``): a token requested on first use, reused, renewed after a 401 with
the refresh token (or the credentials when that fails), single flight, replayed once.

Through a client: against an aioresponses mock of the token endpoint and the order list, and
against a portal written by hand on 127.0.0.1 (tokens of odd lifetimes, failing renewals); and
the early renewal on its own, with a fake clock."""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Mapping
from types import SimpleNamespace
from typing import Any

import pytest
from aiohttp import web
from aioresponses import CallbackResult, aioresponses
from yarl import URL

from yeastar_csss_async import APIError, AuthenticationError, _auth
from yeastar_csss_async._auth import MIN_TOKEN_LIFETIME, TokenManager
from yeastar_csss_async._redaction import Redactor
from yeastar_csss_async._yeastar_protocol import TokenGrant

from tests._support.mocked import (
    BASE,
    ORDERS,
    SECRET,
    TOKEN_URL,
    client,
    envelope,
    orders_page,
    requests_to,
    token_body,
)
from tests._support.portal import FAST, GUARD, RECORDS, Portal, portal_client
from tests._support.portal import envelope as portal_envelope
from tests._support.portal import orders_page as portal_page


async def test_first_call_requests_a_token_with_client_credentials_form(
    mocked: aioresponses,
) -> None:
    mocked.post(TOKEN_URL, payload=token_body())
    mocked.get(ORDERS, payload=orders_page(["1"]))
    async with client(user_agent="MyApp/1.0") as yeastar:
        page = await yeastar.get_orders_page(1, 25)
    assert [o.id for o in page.items] == ["1"]
    (token_call,) = requests_to(mocked, "POST", TOKEN_URL)
    assert token_call.kwargs["data"] == {
        "grant_type": "pp_credentials",
        "client_id": "client-id",
        "client_secret": SECRET,
    }
    (orders_call,) = requests_to(mocked, "GET", f"{BASE}/order")
    assert orders_call.kwargs["headers"]["Authorization"] == "Bearer tok-1"
    assert orders_call.kwargs["headers"]["User-Agent"] == "MyApp/1.0"
    assert orders_call.kwargs["params"] == {"pageNo": "1", "pageSize": "25"}


async def test_token_is_reused_across_calls(mocked: aioresponses) -> None:
    mocked.post(TOKEN_URL, payload=token_body(expires=1800))  # an int works too
    mocked.get(ORDERS, payload=orders_page(["1"]), repeat=True)
    async with client() as yeastar:
        for _ in range(3):
            await yeastar.get_orders_page()
    assert len(requests_to(mocked, "POST", TOKEN_URL)) == 1


async def test_401_renews_with_refresh_token_and_replays_once(mocked: aioresponses) -> None:
    mocked.post(TOKEN_URL, payload=token_body("tok-1", refresh="ref-1"))
    mocked.get(ORDERS, status=401, payload=envelope(None, code="invalid_token", status=401))
    mocked.post(TOKEN_URL, payload=token_body("tok-2", refresh="ref-2"))
    mocked.get(ORDERS, payload=orders_page(["9"]))
    async with client() as yeastar:
        page = await yeastar.get_orders_page()
    assert [o.id for o in page.items] == ["9"]
    token_calls = requests_to(mocked, "POST", TOKEN_URL)
    assert [c.kwargs["data"]["grant_type"] for c in token_calls] == [
        "pp_credentials",
        "refresh_token",
    ]
    assert token_calls[1].kwargs["data"]["refresh_token"] == "ref-1"
    auths = [c.kwargs["headers"]["Authorization"] for c in requests_to(mocked, "GET", BASE)]
    assert auths == ["Bearer tok-1", "Bearer tok-2"]


async def test_failed_refresh_falls_back_to_the_credentials(mocked: aioresponses) -> None:
    mocked.post(TOKEN_URL, payload=token_body("tok-1"))
    mocked.get(ORDERS, status=401, payload=envelope(None, code="invalid_token", status=401))
    mocked.post(
        TOKEN_URL, status=401, payload=envelope(None, code="invalid_refresh_token", status=401)
    )
    mocked.post(TOKEN_URL, payload=token_body("tok-3"))
    mocked.get(ORDERS, payload=orders_page(["1"]))
    async with client() as yeastar:
        await yeastar.get_orders_page()
    grants = [c.kwargs["data"]["grant_type"] for c in requests_to(mocked, "POST", TOKEN_URL)]
    assert grants == ["pp_credentials", "refresh_token", "pp_credentials"]


async def test_second_401_after_renewal_is_an_authentication_error(
    mocked: aioresponses,
) -> None:
    mocked.post(TOKEN_URL, payload=token_body("tok-1"), repeat=True)
    mocked.get(
        ORDERS,
        status=401,
        repeat=True,
        payload=envelope(None, code="invalid_token", status=401, detail="bad token"),
    )
    async with client() as yeastar:
        with pytest.raises(AuthenticationError) as caught:
            await yeastar.get_orders_page()
    assert caught.value.status == 401
    assert caught.value.code == "invalid_token"
    assert caught.value.request_id == "a" * 32
    assert len(requests_to(mocked, "GET", BASE)) == 2  # one replay, no more


async def test_wrong_credentials_are_an_authentication_error(mocked: aioresponses) -> None:
    mocked.post(
        TOKEN_URL,
        status=401,
        payload=envelope(
            None, code="invalid_client", status=401, detail=f"client secret {SECRET} is wrong"
        ),
    )
    async with client() as yeastar:
        with pytest.raises(AuthenticationError) as caught:
            await yeastar.get_orders_page()
    assert caught.value.code == "invalid_client"
    assert SECRET not in str(caught.value)  # even when the server echoes it
    assert not requests_to(mocked, "GET", BASE)


async def test_a_task_that_reused_someone_elses_renewal_may_still_renew_once_itself(
    mocked: aioresponses,
) -> None:
    """While our request is on the wire with tok-1, another task renews to tok-2; our 401
    reuses tok-2 (no renewal of our own), and tok-2 turns out revoked too. This request never
    re-authenticated itself, so it renews once (tok-3) and succeeds."""
    mocked.post(TOKEN_URL, payload=token_body("tok-1", refresh="ref-1"))
    async with client() as yeastar:

        def other_task_renews(url: URL, **kwargs: Any) -> CallbackResult:
            yeastar._tokens._access = "tok-2"
            return CallbackResult(
                status=401, payload=envelope(None, code="invalid_token", status=401)
            )

        mocked.get(ORDERS, callback=other_task_renews)
        mocked.get(ORDERS, status=401, payload=envelope(None, code="invalid_token", status=401))
        mocked.post(TOKEN_URL, payload=token_body("tok-3", refresh="ref-3"))
        mocked.get(ORDERS, payload=orders_page(["7"]))
        page = await yeastar.get_orders_page()
    assert [o.id for o in page.items] == ["7"]
    auths = [c.kwargs["headers"]["Authorization"] for c in requests_to(mocked, "GET", BASE)]
    assert auths == ["Bearer tok-1", "Bearer tok-2", "Bearer tok-3"]
    assert len(requests_to(mocked, "POST", TOKEN_URL)) == 2  # tok-1, and our one renewal


# --- single flight and lifetimes, against a hand-written portal on 127.0.0.1 -----------------


def plenty(page_no: int, page_size: int) -> Awaitable[web.StreamResponse]:
    async def answer() -> web.StreamResponse:
        return portal_page(RECORDS, page_no, page_size, total=150)

    return answer()


async def test_concurrent_calls_with_a_wrong_secret_send_one_credential_request() -> None:
    portal = Portal(plenty)

    async def refuse() -> web.StreamResponse:
        return portal_envelope(None, code="invalid_client", status=401)

    portal.token_answer = refuse
    async with portal_client(portal) as client:
        results = await asyncio.wait_for(
            asyncio.gather(*(client.get_orders_page(1) for _ in range(20)), return_exceptions=True),
            GUARD,
        )
    assert all(isinstance(r, AuthenticationError) for r in results), results
    assert portal.calls["token"] == 1
    assert portal.calls["orders"] == 0


async def test_a_failing_token_endpoint_is_one_renewal_shared_by_every_waiting_call() -> None:
    portal = Portal(plenty)

    async def unavailable() -> web.StreamResponse:
        return web.Response(status=503, text="down")

    portal.token_answer = unavailable
    async with portal_client(portal, retry=FAST) as client:
        results = await asyncio.wait_for(
            asyncio.gather(*(client.get_orders_page(1) for _ in range(10)), return_exceptions=True),
            GUARD,
        )
    assert all(isinstance(r, APIError) and r.status == 503 for r in results), results
    assert portal.calls["token"] == FAST.max_attempts  # one renewal and its retries, not 10


@pytest.mark.parametrize("expires_in", [0, -5, "0", "-30"])
async def test_a_zero_or_negative_lifetime_does_not_mean_a_token_per_call(
    expires_in: object,
) -> None:
    portal = Portal(plenty)
    portal.expires_in = expires_in  # meaningless for a new token: read as the documented 30 min
    async with portal_client(portal) as client:
        for _ in range(20):
            await asyncio.wait_for(client.get_orders_page(1), GUARD)
    assert portal.calls["token"] == 1


@pytest.mark.parametrize("expires_in", ["0.001", 0.001, "0.5"])
async def test_a_tiny_lifetime_does_not_mean_a_token_per_call(expires_in: object) -> None:
    """A tiny lifetime is trusted for MIN_TOKEN_LIFETIME (1 s), renewed in its last 10%: so at
    most one token per 0.9 s of the run, derived from the elapsed time, not per call."""
    portal = Portal(plenty)
    portal.expires_in = expires_in
    started = time.monotonic()
    async with portal_client(portal) as client:
        for _ in range(20):
            await asyncio.wait_for(client.get_orders_page(1), GUARD)
    elapsed = time.monotonic() - started
    assert portal.calls["token"] <= 1 + math.floor(elapsed / (0.9 * MIN_TOKEN_LIFETIME))


async def test_an_error_code_that_merely_contains_token_is_not_a_token_rejection() -> None:
    async def pages(page_no: int, page_size: int) -> web.StreamResponse:
        return portal_envelope(None, code="token_quota_exceeded", status=200)

    portal = Portal(pages)
    async with portal_client(portal) as client:
        with pytest.raises(APIError) as caught:
            await client.get_orders_page(1)
    assert type(caught.value) is APIError
    assert caught.value.code == "token_quota_exceeded"
    assert portal.calls["token"] == 1
    assert portal.calls["orders"] == 1


# --- early renewal, TokenManager on its own with a fake clock ---------------------------------


class Grants:
    """A token endpoint for a TokenManager: each request is answered by the next of
    ``answers`` (a grant, an error to raise, or an event to wait for first)."""

    def __init__(self, *answers: TokenGrant | Exception | asyncio.Event) -> None:
        self.answers = list(answers)
        self.grant_types: list[str] = []
        self.holding = asyncio.Event()  # set while a request waits for its event

    async def __call__(self, form: Mapping[str, str]) -> TokenGrant:
        self.grant_types.append(form["grant_type"])
        answer = self.answers.pop(0)
        if isinstance(answer, asyncio.Event):
            self.holding.set()
            await answer.wait()
            answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        assert isinstance(answer, TokenGrant), "an event is followed by an answer"
        return answer


def manager_on_a_fake_clock(
    monkeypatch: pytest.MonkeyPatch, grants: Grants
) -> tuple[TokenManager, list[float]]:
    """A TokenManager whose clock (``time.monotonic`` in ``_auth``) reads ``now[0]``."""
    now = [1000.0]
    monkeypatch.setattr(_auth, "time", SimpleNamespace(monotonic=lambda: now[0]))
    return TokenManager(grants, "client-id", "client-secret", Redactor()), now


async def test_an_early_renewal_that_fails_keeps_the_valid_token_and_tries_again_later(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A token of 100 s is renewed from 90 s on. At 95 s the renewal fails (the refresh and
    the credentials both answer 503): the token, valid until 100 s, is still used, and the
    renewal is tried again halfway to the expiry (97.5 s), not on every call before it."""
    down = APIError("unavailable", status=503)
    grants = Grants(TokenGrant("tok-1", "ref-1", 100.0), down, down, TokenGrant("tok-2", None, 100))
    manager, now = manager_on_a_fake_clock(monkeypatch, grants)
    try:
        assert await manager.token() == "tok-1"
        now[0] = 1095.0
        assert await manager.token() == "tok-1"  # the renewal failed; the token is valid
        assert grants.grant_types == ["pp_credentials", "refresh_token", "pp_credentials"]
        now[0] = 1097.0
        assert await manager.token() == "tok-1"
        assert len(grants.grant_types) == 3  # not tried again yet
        now[0] = 1098.0
        assert await manager.token() == "tok-2"
        assert grants.grant_types[3:] == ["pp_credentials"]  # the refused refresh token is gone
    finally:
        await manager.aclose()


async def test_while_an_early_renewal_runs_every_caller_keeps_the_current_token(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    answer = asyncio.Event()
    grants = Grants(TokenGrant("tok-1", "ref-1", 100.0), answer, TokenGrant("tok-2", "ref-2", 100))
    manager, now = manager_on_a_fake_clock(monkeypatch, grants)
    try:
        assert await manager.token() == "tok-1"
        now[0] = 1095.0
        renewing = asyncio.ensure_future(manager.token())  # starts the renewal, and waits
        await asyncio.wait_for(grants.holding.wait(), GUARD)  # the refresh is under way
        other = manager.token()
        with pytest.raises(StopIteration) as returned:
            other.send(None)  # returns without waiting for the renewal
        assert returned.value.value == "tok-1"
        answer.set()
        assert await asyncio.wait_for(renewing, GUARD) == "tok-2"
        assert await manager.token() == "tok-2"
    finally:
        await manager.aclose()
