"""The programs in ``examples/`` work against the sandbox, and type-check as a user's code.

Each example is run twice over: imported and driven in-process against the
``yeastar_sandbox`` fixture (to check real outcomes: the JSON a route answers, the records in
the export files, the orders the worker reports), and run as ``python examples/X.py
--sandbox`` in a subprocess (to check that the script as documented starts, works and stops
cleanly on a signal). Everything talks to 127.0.0.1 only.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from types import ModuleType
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from yeastar_csss_async import (
    CSSSClient,
    Order,
    RetryPolicy,
    YeastarPartnerClient,
)
from yeastar_csss_async.sandbox import (
    PRODUCT_LINES,
    SANDBOX_ACCESS_CODE,
    SANDBOX_CLIENT_ID,
    SANDBOX_CLIENT_SECRET,
    SANDBOX_SECRET,
    Sandbox,
    SandboxConfig,
)

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
ORDERS_PATH = "/order/openapi/order/v1/page"
NO_RETRY = RetryPolicy(max_attempts=1)
WAIT = 60.0
"""Seconds to wait for a subprocess to reach a state: a bound against hanging, not a timing
assertion."""


def load_example(name: str) -> ModuleType:
    """``examples/<name>.py`` imported as a module (examples/ is not a package)."""
    module_name = f"example_{name}"
    if module_name in sys.modules:
        return sys.modules[module_name]
    spec = importlib.util.spec_from_file_location(module_name, EXAMPLES / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    spec.loader.exec_module(module)
    return module


def sandbox_client(sandbox: Sandbox, **options: Any) -> YeastarPartnerClient:
    return YeastarPartnerClient(
        SANDBOX_CLIENT_ID, SANDBOX_CLIENT_SECRET, base_url=sandbox.base_url, **options
    )


def error_envelope(status: int, code: str, request_id: str) -> web.Response:
    return web.json_response(
        {
            "code": code,
            "detailMessage": f"{code} (injected)",
            "requestId": request_id,
            "result": None,
            "status": status,
        },
        status=status,
    )


def run_example(name: str, *args: str, **options: Any) -> subprocess.Popen[str]:
    """``python examples/<name>.py ARGS`` with this venv's interpreter, unbuffered."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    for variable in (
        "YEASTAR_CLIENT_ID",
        "YEASTAR_CLIENT_SECRET",
        "CSSS_ACCESS_CODE",
        "CSSS_SECRET",
    ):
        env.pop(variable, None)
    return subprocess.Popen(
        [sys.executable, "-W", "default", str(EXAMPLES / f"{name}.py"), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        **options,
    )


def read_line_until(process: subprocess.Popen[str], pattern: str) -> re.Match[str]:
    """Read the process's stdout until a line matches ``pattern``."""
    assert process.stdout is not None
    for line in process.stdout:
        match = re.search(pattern, line)
        if match:
            return match
    _, stderr = process.communicate(timeout=WAIT)
    raise AssertionError(f"stdout ended without a line matching {pattern!r}; stderr: {stderr}")


@contextlib.contextmanager
def running(process: subprocess.Popen[str]) -> Iterator[subprocess.Popen[str]]:
    """Make sure the process is gone when the test ends, however it ends."""
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
        process.communicate(timeout=WAIT)


def assert_clean_stderr(stderr: str) -> None:
    """Nothing leaked: no traceback, no unclosed session or unawaited task, no warning."""
    for sign in (
        "Traceback",
        "Unclosed",
        "Task was destroyed",
        "Exception ignored",
        "Warning",
        "never awaited",
    ):
        assert sign not in stderr, stderr


# --- examples/web_app.py --------------------------------------------------------------------


@contextlib.asynccontextmanager
async def web_app(
    make_client: Callable[[], YeastarPartnerClient],
) -> AsyncIterator[TestClient[web.Request, web.Application]]:
    app = load_example("web_app").create_app(make_client)
    async with TestClient(TestServer(app, host="127.0.0.1")) as http:
        yield http


async def test_web_app_answers_a_page_of_orders_as_json(yeastar_sandbox: Sandbox) -> None:
    orders = yeastar_sandbox.orders
    fourth = orders[3]["id"]
    orders.change(fourth, total_amount=Decimal("130.00"))  # trailing zeros must survive
    async with web_app(lambda: sandbox_client(yeastar_sandbox)) as http:
        answer = await http.get("/orders", params={"page": "2", "page_size": "3"})
        assert answer.status == 200
        assert answer.content_type == "application/json"
        page = json.loads(await answer.text(), parse_float=Decimal)

    assert (page["page_no"], page["page_size"], page["total"], page["total_pages"]) == (
        2,
        3,
        30,
        10,
    )
    assert isinstance(page["request_id"], str)
    assert page["request_id"]
    assert [item["id"] for item in page["items"]] == [orders[i]["id"] for i in (3, 4, 5)]
    first, record = page["items"][0], orders[3]
    assert first["total_amount"] == "130.00"  # a string with its digits, not 130.0
    assert (
        first["create_time"] == datetime.fromtimestamp(record["createTime"] / 1000, UTC).isoformat()
    )
    assert first["create_time"].endswith("+00:00")
    assert first["order_status"] == record["orderStatus"]
    assert first["order_no"] == record["orderNo"]


async def test_web_app_counts_and_streams_orders_with_one_client(yeastar_sandbox: Sandbox) -> None:
    made: list[YeastarPartnerClient] = []

    def make_client() -> YeastarPartnerClient:
        made.append(sandbox_client(yeastar_sandbox))
        return made[-1]

    async with web_app(make_client) as http:
        count = await (await http.get("/orders/count")).json()
        assert count["total"] == 30
        assert count["request_id"]
        yeastar_sandbox.orders.add(2)
        count = await (await http.get("/orders/count")).json()
        assert count["total"] == 32  # live: the route asks the portal each time

        answer = await http.get("/orders.jsonl")
        assert answer.status == 200
        assert answer.headers["Content-Type"] == "application/x-ndjson"
        lines = (await answer.text()).splitlines()
        assert [json.loads(line)["id"] for line in lines] == [
            record["id"] for record in yeastar_sandbox.orders
        ]

        first_five = (await (await http.get("/orders.jsonl?limit=5")).text()).splitlines()
        assert [json.loads(line)["id"] for line in first_five] == [
            record["id"] for record in yeastar_sandbox.orders[:5]
        ]
    assert len(made) == 1  # one client for the app's life ...
    assert yeastar_sandbox.stats.token_requests == 1  # ... sharing one token


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("page=0", "page must be an integer >= 1"),
        ("page=x", "page must be an integer >= 1"),
        ("page_size=101", "page_size must be an integer >= 1 and at most 100"),
        ("page=%D9%A3", "page must be an integer >= 1"),
    ],  # an Arabic-Indic 3
)
async def test_web_app_answers_400_for_a_bad_query(
    yeastar_sandbox: Sandbox, query: str, message: str
) -> None:
    async with web_app(lambda: sandbox_client(yeastar_sandbox)) as http:
        answer = await http.get(f"/orders?{query}")
        assert answer.status == 400
        assert await answer.json() == {"error": message}
    assert yeastar_sandbox.stats.by_path[ORDERS_PATH] == 0


async def test_web_app_maps_api_errors_to_502_with_the_request_id(yeastar_sandbox: Sandbox) -> None:
    async def deny(request: web.Request) -> web.StreamResponse | None:
        if request.path == ORDERS_PATH:
            return error_envelope(403, "permission_denied", "req-4711")
        return None

    yeastar_sandbox.intercept = deny
    async with web_app(lambda: sandbox_client(yeastar_sandbox)) as http:
        for route in ("/orders", "/orders/count", "/orders.jsonl"):
            answer = await http.get(route)
            assert answer.status == 502, route
            assert await answer.json() == {
                "error": "permission_denied (injected)",
                "code": "permission_denied",
                "request_id": "req-4711",
                "upstream_status": 403,
            }


async def test_web_app_maps_rate_limits_to_503_with_retry_after(yeastar_sandbox: Sandbox) -> None:
    async def rate_limit(request: web.Request) -> web.StreamResponse | None:
        if request.path != ORDERS_PATH:
            return None
        answer = error_envelope(429, "too_many_requests", "req-429")
        answer.headers["Retry-After"] = "3600"  # longer than the client waits: no retry
        return answer

    yeastar_sandbox.intercept = rate_limit
    async with web_app(lambda: sandbox_client(yeastar_sandbox)) as http:
        answer = await http.get("/orders")
        assert answer.status == 503
        assert answer.headers["Retry-After"] == "3600"
        assert (await answer.json())["request_id"] == "req-429"


async def test_web_app_maps_timeouts_to_504_and_bad_credentials_to_502(
    yeastar_sandbox: Sandbox,
) -> None:
    async def hang(request: web.Request) -> web.StreamResponse | None:
        if request.path == ORDERS_PATH:
            await asyncio.Event().wait()  # cancelled when the sandbox closes
        return None

    yeastar_sandbox.intercept = hang
    async with web_app(
        lambda: sandbox_client(yeastar_sandbox, timeout=0.2, retry=NO_RETRY)
    ) as http:
        answer = await http.get("/orders")
        assert answer.status == 504
        assert await answer.json() == {"error": "the order service did not answer in time"}

    wrong = YeastarPartnerClient(
        SANDBOX_CLIENT_ID, "wrong-secret", base_url=yeastar_sandbox.base_url
    )
    async with web_app(lambda: wrong) as http:
        answer = await http.get("/orders/count")
        assert answer.status == 502
        body = await answer.json()
        assert body["error"] == "the order service is misconfigured"
        assert "wrong-secret" not in json.dumps(body)


@pytest.mark.yeastar_sandbox(orders=250)
async def test_web_app_cuts_the_stream_when_a_later_page_fails(yeastar_sandbox: Sandbox) -> None:
    async def fail_page_3(request: web.Request) -> web.StreamResponse | None:
        if request.path == ORDERS_PATH and request.query.get("pageNo") == "3":
            return error_envelope(403, "permission_denied", "req-page-3")
        return None

    yeastar_sandbox.intercept = fail_page_3
    async with web_app(lambda: sandbox_client(yeastar_sandbox)) as http:
        answer = await http.get("/orders.jsonl")
        assert answer.status == 200  # page 1 arrived before the answer began
        with pytest.raises(aiohttp.ClientPayloadError):
            await answer.read()  # a cut stream, never a short list that looks complete


def test_web_app_script_serves_the_sandbox_and_stops_on_sigint() -> None:
    with running(run_example("web_app", "--sandbox", "--port", "0")) as process:
        # aiohttp >= 3.14 prints the port it bound; the test needs that to find it.
        url = read_line_until(process, r"Running on (http://127\.0\.0\.1:\d+)")[1]
        assert not url.endswith(":0")

        async def get() -> Any:
            async with (
                aiohttp.ClientSession() as session,
                session.get(f"{url}/orders?page=1&page_size=2") as answer,
            ):
                assert answer.status == 200
                return await answer.json()

        page = asyncio.run(get())
        assert page["total"] == SandboxConfig().orders
        assert len(page["items"]) == 2
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=WAIT)
        assert process.returncode == 0, stderr
        assert_clean_stderr(stderr)


# --- examples/bulk_export.py ----------------------------------------------------------------


def file_names(directory: Path) -> list[str]:
    return sorted(path.name for path in directory.iterdir())


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


@pytest.mark.yeastar_sandbox(orders=230, products_per_line=15, package_orders=120)
async def test_bulk_export_writes_every_record_of_every_list(
    yeastar_sandbox: Sandbox, tmp_path: Path
) -> None:
    export_all = load_example("bulk_export").export_all
    async with (
        sandbox_client(yeastar_sandbox) as yeastar,
        CSSSClient(SANDBOX_ACCESS_CODE, SANDBOX_SECRET, base_url=yeastar_sandbox.base_url) as csss,
    ):
        counts = await export_all(yeastar, csss, tmp_path, page_size=50)

    expected = {
        "orders.jsonl": [r["id"] for r in yeastar_sandbox.orders],
        "package-orders.jsonl": [r["orderCode"] for r in yeastar_sandbox.package_orders],
    }
    for line in PRODUCT_LINES:
        expected[f"products-{line}.jsonl"] = [
            r["productNo"] for r in yeastar_sandbox.products[line]
        ]
    assert file_names(tmp_path) == sorted(expected)  # and no .part file left
    assert counts == {name: len(keys) for name, keys in expected.items()}
    key_of = {"orders.jsonl": "id", "package-orders.jsonl": "order_code"}
    for name, keys in expected.items():
        records = read_jsonl(tmp_path / name)
        assert [r[key_of.get(name, "product_no")] for r in records] == keys, name
    order = read_jsonl(tmp_path / "orders.jsonl")[0]
    assert order["total_amount"] == str(yeastar_sandbox.orders[0]["totalAmount"])


async def test_bulk_export_cancelled_leaves_no_partial_file(
    yeastar_sandbox: Sandbox, tmp_path: Path
) -> None:
    export_all = load_example("bulk_export").export_all
    yeastar_sandbox.orders.add(150)  # 180 orders: page 2 of 100 exists
    held, release = asyncio.Event(), asyncio.Event()

    async def hold_orders_page_2(name: str, page_no: int) -> None:
        if name == "orders" and page_no == 2:
            held.set()
            await release.wait()

    yeastar_sandbox.after_page = hold_orders_page_2
    async with sandbox_client(yeastar_sandbox) as yeastar:
        export = asyncio.create_task(export_all(yeastar, None, tmp_path))
        await asyncio.wait_for(held.wait(), WAIT)
        assert (tmp_path / "orders.jsonl.part").exists()
        export.cancel()
        with pytest.raises(asyncio.CancelledError):
            await export
        release.set()
    names = file_names(tmp_path)
    assert not [name for name in names if name.endswith(".part")]
    assert "orders.jsonl" not in names


def test_bulk_export_script_exports_the_sandbox(tmp_path: Path) -> None:
    out = tmp_path / "out"
    with running(run_example("bulk_export", "--sandbox", "--output-dir", str(out))) as process:
        stdout, stderr = process.communicate(timeout=WAIT)
    assert process.returncode == 0, stderr
    assert_clean_stderr(stderr)
    config = SandboxConfig()
    expected = {"orders.jsonl": config.orders, "package-orders.jsonl": config.package_orders}
    expected |= {f"products-{line}.jsonl": config.products_per_line for line in PRODUCT_LINES}
    assert {p.name: len(read_jsonl(p)) for p in out.iterdir()} == expected
    assert f"{config.orders:8d} records -> {out / 'orders.jsonl'}" in stdout


@pytest.mark.parametrize(("signum", "status"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_bulk_export_script_interrupted_leaves_no_partial_file(
    tmp_path: Path, signum: signal.Signals, status: int
) -> None:
    out = tmp_path / "out"
    # Each sandbox answer takes 1 s, so the export is surely under way when the signal comes.
    command = ("--sandbox", "--sandbox-latency", "1", "--output-dir", str(out))
    with running(run_example("bulk_export", *command)) as process:
        deadline = time.monotonic() + WAIT
        while not list(out.glob("*.part")):  # wait for the exports to begin
            assert process.poll() is None
            assert time.monotonic() < deadline
            time.sleep(0.02)
        process.send_signal(signum)
        _, stderr = process.communicate(timeout=WAIT)
    assert process.returncode == status, stderr
    assert_clean_stderr(stderr)
    assert list(out.iterdir()) == []  # nothing finished, nothing half-written


# --- examples/periodic_worker.py ------------------------------------------------------------


async def test_worker_reports_orders_added_changed_and_removed_between_polls(
    yeastar_sandbox: Sandbox,
) -> None:
    worker = load_example("periodic_worker")
    orders = yeastar_sandbox.orders
    reports: list[Any] = []
    changed_id, removed_id = orders[10]["id"], orders[20]["id"]
    added: list[str] = []

    def on_report(report: Any) -> None:
        reports.append(report)
        if report.poll_no == 1:  # between polls 1 and 2, the portal changes
            added.extend(record["id"] for record in orders.add())
            orders.change(changed_id, order_status="refunded", total_amount=Decimal("1.50"))
        elif report.poll_no == 2:
            orders.remove(removed_id)

    async with sandbox_client(yeastar_sandbox) as client:
        polls = await worker.run_worker(client, interval=0, iterations=3, on_report=on_report)

    assert polls == 3
    first, second, third = reports
    assert (first.total, len(first.new), first.changed, first.gone) == (30, 30, [], [])
    assert [order.id for order in second.new] == added
    assert [(o.id, o.order_status, o.total_amount) for o in second.changed] == [
        (changed_id, "refunded", Decimal("1.50"))
    ]
    assert (second.total, second.gone) == (31, [])
    assert (third.total, third.new, third.changed) == (30, [], [])
    assert [order.id for order in third.gone] == [removed_id]
    assert all(isinstance(order, Order) for order in first.new)


async def test_worker_tries_again_after_a_failed_poll(
    yeastar_sandbox: Sandbox, caplog: pytest.LogCaptureFixture
) -> None:
    worker = load_example("periodic_worker")
    failures = [error_envelope(503, "service_unavailable", "req-503")]

    async def fail_once(request: web.Request) -> web.StreamResponse | None:
        return failures.pop() if request.path == ORDERS_PATH and failures else None

    yeastar_sandbox.intercept = fail_once
    reports: list[Any] = []
    async with sandbox_client(yeastar_sandbox, retry=NO_RETRY) as client:
        polls = await worker.run_worker(client, interval=0, iterations=2, on_report=reports.append)
    assert polls == 1
    assert [report.poll_no for report in reports] == [1]
    assert reports[0].total == 30
    assert "poll failed" in caplog.text
    assert "req-503" in caplog.text


async def test_worker_stops_at_a_page_boundary_when_asked(yeastar_sandbox: Sandbox) -> None:
    worker = load_example("periodic_worker")
    stop = asyncio.Event()

    def stop_after_page_1(name: str, page_no: int) -> None:
        if name == "orders" and page_no == 1:
            stop.set()  # as the SIGTERM handler would, during the first poll

    yeastar_sandbox.after_page = stop_after_page_1
    reports: list[Any] = []
    async with sandbox_client(yeastar_sandbox) as client:
        polls = await worker.run_worker(client, interval=3600, stop=stop, on_report=reports.append)
    assert polls == 0
    assert reports == []  # an incomplete pass reports nothing, so nothing as gone


def test_worker_script_reports_changes_then_stops_on_a_signal() -> None:
    with running(
        run_example("periodic_worker", "--sandbox", "--interval", "0", "--iterations", "2")
    ) as process:
        stdout, stderr = process.communicate(timeout=WAIT)
    assert process.returncode == 0, stderr
    assert "poll 1: 50 orders, 50 new, 0 changed, 0 gone" in stdout
    assert "poll 2: 50 orders, 1 new, 1 changed, 1 gone" in stdout
    assert "stopped after 2 complete poll(s)" in stdout
    assert_clean_stderr(stderr)

    for signum in (signal.SIGTERM, signal.SIGINT):
        with running(run_example("periodic_worker", "--sandbox", "--interval", "3600")) as process:
            read_line_until(process, r"^poll 1: ")
            process.send_signal(signum)
            stdout, stderr = process.communicate(timeout=WAIT)
        assert process.returncode == 0, (signum, stderr)
        assert "stopped after 1 complete poll(s)" in stdout
        assert_clean_stderr(stderr)


# --- typing: the examples and the README, checked as a user's code --------------------------


def readme_library_example() -> str:
    """The README's first code block under "## The library", with the names it leaves to
    the reader defined."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("## The library") :]
    code = re.search(r"```python\n(.*?)```", section, re.DOTALL)
    assert code is not None
    return 'client_id = client_secret = access_code = secret = "..."\n' + code[1]


def test_examples_and_readme_type_check_against_the_installed_package(tmp_path: Path) -> None:
    """``mypy --strict`` run where a user runs it: outside the checkout, with no project
    configuration, finding ``yeastar_csss_async`` only through the installed (editable)
    distribution. Slow-ish (mypy analyses aiohttp and the package from scratch, 10-30 s)."""
    if shutil.which("mypy") is None and importlib.util.find_spec("mypy") is None:
        pytest.skip("mypy is not installed (pip install -e '.[dev]')")
    for example in EXAMPLES.glob("*.py"):
        shutil.copy(example, tmp_path / example.name)
    (tmp_path / "readme_example.py").write_text(readme_library_example(), encoding="utf-8")
    (tmp_path / "reveal.py").write_text(
        "from yeastar_csss_async import Order, to_jsonable\n"
        "def show(order: Order) -> None:\n"
        "    reveal_type(order.order_status)\n"
        "    reveal_type(order.total_amount)\n"
        "    print(to_jsonable(order))\n",
        encoding="utf-8",
    )
    env = {key: value for key, value in os.environ.items() if key not in ("MYPYPATH", "PYTHONPATH")}
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--strict",
            "--no-incremental",
            "--python-executable",
            sys.executable,
            ".",
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    # The package's own types were found: not Any, not a missing import.
    assert 'Revealed type is "yeastar_csss_async.models.OrderStatus | None"' in result.stdout
    assert 'Revealed type is "decimal.Decimal | None"' in result.stdout
    assert (
        f"Success: no issues found in {len(list(tmp_path.glob('*.py')))} source files"
        in result.stdout
    )
