"""The redactor, the error tree (status-specific errors, the kept body, transport errors)
and pickling; end to end against the sandbox or small servers on 127.0.0.1."""

from __future__ import annotations

import json
import pickle
import socket
from typing import Any
from urllib.parse import quote

import pytest
from aiohttp import web

from yeastar_csss_async import (
    APIError,
    AuthenticationError,
    BadRequestError,
    ConfigurationError,
    CSSSClient,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    RetryPolicy,
    TransportConnectionError,
    TransportError,
    TransportTimeoutError,
    YeastarCSSSError,
    YeastarPartnerClient,
)
from yeastar_csss_async._errors import api_error_class
from yeastar_csss_async._redaction import BODY_KEPT, ROTATING_KEPT, Redactor, _encodings, kept_body
from yeastar_csss_async._yeastar_protocol import ORDER_LIST_PATH, TOKEN_PATH
from yeastar_csss_async.sandbox import SANDBOX_CLIENT_ID, Sandbox

from tests._support.clients import FAST_RETRY, client_side_tasks
from tests._support.servers import serve_app, serve_raw


@pytest.mark.slow
def test_fixed_secrets_are_masked_for_good_and_rotating_ones_while_recent() -> None:
    redact = Redactor(["client/secret+1"])
    tokens = [f"token{n:04d}xyz" for n in range(ROTATING_KEPT + 40)]
    for token in tokens:
        redact.rotate(token)
    assert redact(f"a {quote('client/secret+1', safe='')} b") == "a *** b"
    assert redact(f"{tokens[-1]} {tokens[-ROTATING_KEPT]}") == "*** ***"
    # A long-running client does not keep every token it was ever issued.
    assert redact(tokens[0]) == tokens[0]


def test_an_empty_redactor_changes_nothing() -> None:
    assert Redactor()("nothing to hide") == "nothing to hide"


# --- status-specific errors and the kept body (end to end, sandbox on 127.0.0.1) ---------------

STATUS_ERRORS = [
    (400, BadRequestError),
    (401, AuthenticationError),
    (403, PermissionDeniedError),
    (404, NotFoundError),
    (429, RateLimitError),
    (422, APIError),
    (500, APIError),
]
NOT_RETRIED = {400, 403, 404, 422}


class Answers:
    """Answers every business request of the sandbox (not the token endpoint) with
    ``status`` and ``body``, counting them."""

    def __init__(self, sandbox: Sandbox, status: int, body: bytes) -> None:
        self.status, self.body, self.count = status, body, 0
        sandbox.intercept = self._intercept

    async def _intercept(self, request: web.Request) -> web.StreamResponse | None:
        if "token" in request.path:
            return None
        self.count += 1
        headers = {"Retry-After": "0"} if self.status == 429 else {}
        return web.Response(
            status=self.status, body=self.body, headers=headers, content_type="application/json"
        )


def envelope(code: str, detail: str, request_id: str = "req-1", **extra: Any) -> bytes:
    return json.dumps(
        {"code": code, "detailMessage": detail, "requestId": request_id, **extra}
    ).encode()


@pytest.mark.parametrize(("status", "cls"), STATUS_ERRORS)
async def test_yeastar_status_errors_are_typed_api_errors_keeping_the_body(
    sandbox: Sandbox,
    yeastar: YeastarPartnerClient,
    status: int,
    cls: type[APIError],
) -> None:
    body = envelope("some_code", "it went wrong", "req-9")
    answers = Answers(sandbox, status, body)
    with pytest.raises(APIError) as caught:
        await yeastar.get_orders_page()
    error = caught.value
    assert type(error) is cls
    assert (error.status, error.code, error.request_id) == (status, "some_code", "req-9")
    assert json.loads(error.body or "") == json.loads(body)
    if status in NOT_RETRIED:
        assert answers.count == 1  # not retried
    elif status != 401:
        assert answers.count == FAST_RETRY.max_attempts


@pytest.mark.parametrize(("status", "cls"), STATUS_ERRORS)
async def test_csss_status_errors_are_typed_api_errors_keeping_the_body(
    sandbox: Sandbox,
    csss: CSSSClient,
    status: int,
    cls: type[APIError],
) -> None:
    body = b"<html>nope</html>"
    answers = Answers(sandbox, status, body)
    with pytest.raises(APIError) as caught:
        await csss.get_package_orders_page()
    assert type(caught.value) is cls
    assert caught.value.status == status
    assert caught.value.body == "<html>nope</html>"
    assert answers.count == (1 if status in NOT_RETRIED | {401} else FAST_RETRY.max_attempts)


@pytest.mark.parametrize("status", [None, 200, 403])
async def test_yeastar_permission_denied_code_is_a_permission_denied_error(
    sandbox: Sandbox,
    yeastar: YeastarPartnerClient,
    status: int | None,
) -> None:
    extra: dict[str, Any] = {} if status is None else {"status": status}
    Answers(sandbox, 200, envelope("permission_denied", "not your product line", **extra))
    with pytest.raises(PermissionDeniedError) as caught:
        await yeastar.get_products_page(13)
    assert caught.value.code == "permission_denied"
    assert "permission_denied" in (caught.value.body or "")


def test_api_error_class_maps_status_then_the_permission_code() -> None:
    assert api_error_class(None) is APIError
    assert api_error_class(418) is APIError
    assert api_error_class(None, "permission_denied") is PermissionDeniedError
    assert api_error_class(400, "permission_denied") is BadRequestError  # the status first
    assert all(issubclass(cls, APIError) for _, cls in STATUS_ERRORS)


SECRET = "p@ss/wörd+1 x<y>"


def every_form(secret: str) -> list[str]:
    return sorted(_encodings(secret), key=len, reverse=True)


async def test_an_error_body_echoing_the_secret_or_token_in_any_encoding_keeps_neither(
    sandbox: Sandbox,
) -> None:
    async def token(request: web.Request) -> web.Response:
        return web.json_response(
            {
                "code": "success",
                "result": {
                    "token": "Tok.en/Value+42",
                    "refreshToken": "Ref.resh/Value+43",
                    "expiresIn": 1800,
                },
            }
        )

    forms = every_form(SECRET) + every_form("Tok.en/Value+42")
    nested = json.dumps({"inner": json.dumps({"s": SECRET, "t": "Tok.en/Value+42"})})
    bodies = [
        json.dumps(
            {
                "code": "bad",
                "detailMessage": " ".join(forms),
                "echo": forms,
                "nested": nested,
                forms[0]: 1,
            }
        ).encode(),  # JSON, secrets in keys too
        " | ".join(forms).encode(),  # not JSON
        (" ".join(forms) + " " + "x" * (BODY_KEPT * 2)).encode(),  # long: cut after masking
    ]
    for body in bodies:
        app = web.Application()
        app.router.add_post(TOKEN_PATH, token)

        async def orders(request: web.Request, body: bytes = body) -> web.Response:
            return web.Response(status=400, body=body)

        app.router.add_get(ORDER_LIST_PATH, orders)
        async with (
            serve_app(app) as url,
            YeastarPartnerClient(
                SANDBOX_CLIENT_ID, SECRET, base_url=url, retry=FAST_RETRY
            ) as client,
        ):
            with pytest.raises(BadRequestError) as caught:
                await client.get_orders_page()
        error = caught.value
        kept = error.body or ""
        assert "***" in kept
        assert len(kept) <= BODY_KEPT
        texts = [
            kept,
            str(error),
            repr(error.args),
            repr(vars(error)),
            repr(vars(pickle.loads(pickle.dumps(error)))),
        ]
        for text in texts:
            for form in [*forms, "p@ss", "wörd", "Tok.en", "Value+4"]:  # and in any nesting
                assert form not in text, (form, text[:200])


def test_kept_body_is_bounded_whatever_the_body() -> None:
    huge_json = json.dumps({"a": "é" * (4 * BODY_KEPT)}).encode()
    huge_text = b"\xff\xfe" * (8 * BODY_KEPT)
    deep = b"[" * 100_000 + b"]" * 100_000
    for body in (huge_json, huge_text, deep, b""):
        assert len(kept_body(body, None)) <= BODY_KEPT
    assert kept_body(b'{"a":  "b"}', None) == '{"a":  "b"}'  # without a redactor: as sent
    assert kept_body(b'{"a":  "b"}', Redactor()) == '{"a":"b"}'


def test_new_errors_pickle_with_every_attribute() -> None:
    errors: list[YeastarCSSSError] = [
        BadRequestError("bad", status=400, code="c", request_id="r", body='{"x":1}'),
        PermissionDeniedError("no", status=403, code="permission_denied", body="b"),
        NotFoundError("gone", status=404, body=None),
        RateLimitError("slow", status=429, retry_after=2.0, body="{}"),
        TransportTimeoutError("GET /x timed out after 1 attempt(s)"),
        TransportConnectionError("GET /x failed after 5 attempt(s)"),
        ConfigurationError("set YEASTAR_CLIENT_ID in the environment"),
    ]
    for error in errors:
        copy = pickle.loads(pickle.dumps(error))
        assert type(copy) is type(error)
        assert str(copy) == str(error)
        assert vars(copy) == vars(error)
    assert pickle.loads(pickle.dumps(errors[0])).body == '{"x":1}'
    assert isinstance(pickle.loads(pickle.dumps(errors[4])), TimeoutError)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_a_refused_connection_is_a_transport_connection_error() -> None:
    async with CSSSClient(
        "code",
        "secret",
        base_url=f"http://127.0.0.1:{free_port()}",
        retry=RetryPolicy(max_attempts=2, initial_backoff=0.001),
    ) as client:
        with pytest.raises(TransportConnectionError) as caught:
            await client.get_package_orders_page()
    error = caught.value
    assert isinstance(error, ConnectionError)
    assert isinstance(error, TransportError)
    assert not isinstance(error, TimeoutError)
    assert "2 attempt(s)" in str(error)
    assert client_side_tasks() == set()


async def test_a_server_that_never_answers_is_a_transport_timeout_error() -> None:
    async with (
        serve_raw(b"", hold=True) as url,
        CSSSClient(
            "code", "secret", base_url=url, timeout=0.2, retry=RetryPolicy(max_attempts=1)
        ) as client,
    ):
        with pytest.raises(TransportTimeoutError) as caught:
            await client.get_package_orders_page()
    error = caught.value
    assert isinstance(error, TimeoutError)
    assert isinstance(error, TransportError)
    assert not isinstance(error, ConnectionError)
