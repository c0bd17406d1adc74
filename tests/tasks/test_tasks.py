"""taskiq jobs end to end with real parts: a real redis-server, sandboxes on loopback, a
``yeastar-csss worker`` process, and syncs into SQLite checked row by row."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from collections.abc import AsyncIterator, Awaitable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import pytest

pytest.importorskip("taskiq_redis", reason="needs the [workers] extra")

import sqlalchemy as sa
from taskiq import AsyncTaskiqTask

from yeastar_csss_async import CSSSClient, YeastarPartnerClient, to_jsonable
from yeastar_csss_async.cli import main
from yeastar_csss_async.sandbox import (
    SANDBOX_ACCESS_CODE,
    SANDBOX_CLIENT_ID,
    SANDBOX_CLIENT_SECRET,
    SANDBOX_SECRET,
    Sandbox,
    SandboxConfig,
)
from yeastar_csss_async.sync import SyncStore
from yeastar_csss_async.sync._tables import TABLES
from yeastar_csss_async.tasks import (
    DEFAULT_QUEUE,
    enqueue_export,
    enqueue_sync,
    make_broker,
)

from tests._support.redis_server import RedisServer

T = TypeVar("T")
ENV = {
    "YCA_TEST_CLIENT_ID": SANDBOX_CLIENT_ID,
    "YCA_TEST_CLIENT_SECRET": SANDBOX_CLIENT_SECRET,
    "YCA_TEST_ACCESS_CODE": SANDBOX_ACCESS_CODE,
    "YCA_TEST_SECRET": SANDBOX_SECRET,
}
SECRETS = (SANDBOX_CLIENT_SECRET, SANDBOX_SECRET)
ACCOUNTS = ("acme", "globex", "initech")
READY_TIMEOUT = 60.0
"""Guards against a hang only (no timing is asserted)."""


def accounts_toml(urls: Mapping[str, str], *, broken: bool = False) -> str:
    text = "".join(
        f"""
[accounts.{name}]
yeastar_client_id_env = "YCA_TEST_CLIENT_ID"
yeastar_client_secret_env = "YCA_TEST_CLIENT_SECRET"
csss_access_code_env = "YCA_TEST_ACCESS_CODE"
csss_secret_env = "YCA_TEST_SECRET"
base_url = "{url}"
max_concurrency = 4
"""
        for name, url in urls.items()
    )
    if broken:
        text += """
[accounts.broken]
yeastar_client_id_env = "YCA_TEST_NOT_SET_ID"
yeastar_client_secret_env = "YCA_TEST_CLIENT_SECRET"
base_url = "http://127.0.0.1:9"
"""
    return text


class Worker:
    """A ``yeastar-csss worker`` process and the lines of its stderr."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.lines: list[str] = []
        self._changed = asyncio.Condition()
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        assert self.process.stderr is not None
        async for raw in self.process.stderr:
            async with self._changed:
                self.lines.append(raw.decode(errors="replace").rstrip())
                self._changed.notify_all()

    async def wait_for(self, text: str, count: int = 1) -> list[str]:
        async def seen() -> list[str]:
            async with self._changed:
                await self._changed.wait_for(
                    lambda: sum(text in line for line in self.lines) >= count or self._reader.done()
                )
            found = [line for line in self.lines if text in line]
            assert len(found) >= count, f"worker ended without {text!r}: {self.lines}"
            return found

        return await self._guard(seen(), f"waiting for {text!r}")

    async def stop(self) -> int:
        if self.process.returncode is None:
            self.process.send_signal(signal.SIGTERM)
        code = await self._guard(self.process.wait(), "waiting for the worker to exit")
        await self._reader
        return code

    async def _guard(self, step: Awaitable[T], what: str) -> T:
        """``step``, or a failure showing the worker's output if it hangs (no timing is
        asserted: the limit only turns a hang into a readable failure)."""
        try:
            return await asyncio.wait_for(step, READY_TIMEOUT)
        except TimeoutError:
            pytest.fail(f"hang {what}; worker said: {self.lines}")


@contextlib.asynccontextmanager
async def worker(
    redis_url: str,
    accounts: Path,
    db_url: str,
    *options: str,
    workers: int = 1,
    export_dir: Path | None = None,
    env: Mapping[str, str] | None = None,
) -> AsyncIterator[Worker]:
    """A ``yeastar-csss worker`` process with ``options``, once every process said it is
    ready (and, with ``--metrics-port``, where its metrics are); killed on the way out."""
    argv = [
        sys.executable,
        "-m",
        "yeastar_csss_async",
        "worker",
        "--redis",
        redis_url,
        "--accounts",
        str(accounts),
        "--db",
        db_url,
        "--workers",
        str(workers),
        *options,
    ]
    if export_dir is not None:
        argv += ["--export-dir", str(export_dir)]
    process = await asyncio.create_subprocess_exec(
        *argv,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, **ENV, **(env or {})},
    )
    running = Worker(process)
    try:
        await running.wait_for(" ready: ", workers)
        if "--metrics-port" in options:
            await running.wait_for("metrics at ")
        yield running
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
        await running._reader


async def result_of(broker: Any, task_id: str) -> Any:
    return await AsyncTaskiqTask(task_id, broker.result_backend).wait_result(
        timeout=READY_TIMEOUT, check_interval=0.05
    )


async def stored_rows(db_url: str, list_name: str, account: str) -> dict[Any, dict[str, Any]]:
    listed = TABLES[list_name]
    async with SyncStore(db_url) as store, store.engine.connect() as connection:
        result = await connection.execute(
            sa.select(listed.table).where(listed.table.c.account == account)
        )
        return {(row.get("product_id"), row[listed.key]): dict(row) for row in result.mappings()}


def json_object(model: object) -> dict[str, Any]:
    """A model as the sync stores its payload: ``to_jsonable``'s dict."""
    value = to_jsonable(model)
    assert isinstance(value, dict)
    return value


async def sandbox_records(base_url: str, list_name: str) -> dict[Any, dict[str, Any]]:
    """Every record of the list, read directly from the sandbox, by the stored key."""
    found: dict[Any, dict[str, Any]] = {}
    if list_name == "package-orders":
        async with CSSSClient(SANDBOX_ACCESS_CODE, SANDBOX_SECRET, base_url=base_url) as csss:
            async for package_order in csss.iter_package_orders():
                found[None, package_order.order_code] = json_object(package_order)
        return found
    async with YeastarPartnerClient(
        SANDBOX_CLIENT_ID, SANDBOX_CLIENT_SECRET, base_url=base_url
    ) as client:
        if list_name == "orders":
            async for order in client.iter_orders():
                found[None, order.id] = json_object(order)
        else:
            for line in await client.list_subscription_products():
                async for product in client.iter_products(line.product_id):
                    found[line.product_id, product.product_no] = json_object(product)
    return found


@pytest.fixture
async def sandboxes() -> AsyncIterator[dict[str, Sandbox]]:
    """Three accounts, each its own sandbox with its own data (a different seed)."""
    async with contextlib.AsyncExitStack() as stack:
        yield {
            name: await stack.enter_async_context(
                Sandbox(SandboxConfig(seed=seed, orders=37, products_per_line=6, package_orders=21))
            )
            for seed, name in enumerate(ACCOUNTS, start=11)
        }


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'fleet.db'}"


async def test_a_worker_fleet_syncs_three_accounts_row_by_row(
    sandboxes: dict[str, Sandbox],
    redis_url: str,
    db_url: str,
    tmp_path: Path,
    redis_server: RedisServer,
) -> None:
    accounts = tmp_path / "accounts.toml"
    accounts.write_text(accounts_toml({n: s.base_url for n, s in sandboxes.items()}))
    exports = tmp_path / "exports"
    exports.mkdir()
    broker = make_broker(redis_url)
    await broker.startup()
    try:
        # Queued before any worker exists: nothing is lost.
        jobs = {
            (account, name): await enqueue_sync(broker, account, name)
            for account in ACCOUNTS
            for name in ("orders", "products", "package-orders")
        }
        export_id = await enqueue_export(broker, "globex", "orders", "globex-orders.jsonl")
        async with worker(redis_url, accounts, db_url, workers=2, export_dir=exports) as fleet:
            results = {job: await result_of(broker, task_id) for job, task_id in jobs.items()}
            exported = await result_of(broker, export_id)
            assert await fleet.stop() == 0
        assert len(await fleet.wait_for(" stopped", 2)) == 2
    finally:
        await broker.shutdown()
    for (account, name), result in results.items():
        assert not result.is_err, (account, name, result.error)
        assert result.return_value["status"] == "complete"
        assert result.return_value["account"] == account
        expected = await sandbox_records(sandboxes[account].base_url, name)
        stored = await stored_rows(db_url, name, account)
        assert result.return_value["seen"] == len(expected) > 0
        assert stored.keys() == expected.keys()
        for key, record in expected.items():
            assert stored[key]["payload"] == record, (account, name, key)
            assert stored[key]["gone_at"] is None
    assert not exported.is_err, exported.error
    lines = (exports / "globex-orders.jsonl").read_text().splitlines()
    expected_orders = await sandbox_records(sandboxes["globex"].base_url, "orders")
    assert len(lines) == exported.return_value["records"] == len(expected_orders)
    assert sorted(lines) == sorted(
        __import__("json").dumps(r, ensure_ascii=False, separators=(",", ":"))
        for r in expected_orders.values()
    )


def test_enqueue_prints_one_task_id_and_the_message_carries_no_secret(
    redis_url: str,
    redis_server: RedisServer,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("YEASTAR_CLIENT_SECRET", SANDBOX_CLIENT_SECRET)
    assert (
        main(["enqueue", "sync", "package-orders", "--account", "acme", "--redis", redis_url]) == 0
    )
    assert (
        main(
            [
                "enqueue",
                "export",
                "orders",
                "--account",
                "acme",
                "--output",
                "o.jsonl",
                "--redis",
                redis_url,
            ]
        )
        == 0
    )
    ids = capsys.readouterr().out.splitlines()
    assert len(ids) == 2
    db = int(redis_url.rsplit("/", 1)[1])
    entries = redis_server.command("XRANGE", DEFAULT_QUEUE, "-", "+", db=db)
    assert isinstance(entries, list)
    assert len(entries) == 2
    for (_, fields), task_id in zip(entries, ids, strict=True):
        data = dict(zip(fields[::2], fields[1::2], strict=True))["data"]
        assert task_id in data
        assert '"acme"' in data
        for secret in (*SECRETS, SANDBOX_CLIENT_ID, SANDBOX_ACCESS_CODE):
            assert secret not in data


async def test_a_missing_credential_variable_fails_the_job_naming_it(
    sandboxes: dict[str, Sandbox],
    redis_url: str,
    db_url: str,
    tmp_path: Path,
) -> None:
    accounts = tmp_path / "accounts.toml"
    accounts.write_text(accounts_toml({"acme": sandboxes["acme"].base_url}, broken=True))
    broker = make_broker(redis_url)
    await broker.startup()
    try:
        async with worker(redis_url, accounts, db_url) as running:
            failed = await result_of(broker, await enqueue_sync(broker, "broken", "orders"))
            unknown = await result_of(broker, await enqueue_sync(broker, "nobody", "orders"))
            no_csss = await result_of(
                broker, await enqueue_sync(broker, "broken", "package-orders")
            )
            fine = await result_of(broker, await enqueue_sync(broker, "acme", "orders"))
            assert await running.stop() == 0
    finally:
        await broker.shutdown()
    assert failed.is_err
    assert "YCA_TEST_NOT_SET_ID" in str(failed.error)
    assert "'broken'" in str(failed.error)
    assert unknown.is_err
    assert "unknown account 'nobody'" in str(unknown.error)
    assert no_csss.is_err
    assert "no CSSS credentials" in str(no_csss.error)
    assert not fine.is_err  # the worker goes on serving the other accounts
    assert fine.return_value["seen"] == 37
    log = "\n".join(running.lines)
    assert "YCA_TEST_NOT_SET_ID" in log
    for secret in SECRETS:
        assert secret not in log


async def test_sigterm_stops_the_worker_after_its_running_job_completes(
    redis_url: str,
    db_url: str,
    tmp_path: Path,
) -> None:
    async with Sandbox(SandboxConfig(orders=450, latency=0.2)) as sandbox:
        accounts = tmp_path / "accounts.toml"
        accounts.write_text(accounts_toml({"acme": sandbox.base_url}))
        under_way = asyncio.Event()
        sandbox.after_page = lambda path, page: under_way.set()
        broker = make_broker(redis_url)
        await broker.startup()
        try:
            async with worker(redis_url, accounts, db_url) as running:
                task_id = await enqueue_sync(broker, "acme", "orders")
                await running._guard(under_way.wait(), "the job to start")  # a page served
                running.process.send_signal(signal.SIGTERM)
                assert await running.stop() == 0
                result = await result_of(broker, task_id)
        finally:
            await broker.shutdown()
    assert not result.is_err, result.error
    assert result.return_value["status"] == "complete"
    assert result.return_value["seen"] == 450  # pages still to come at SIGTERM
    assert any(" stopped" in line for line in running.lines)


def test_worker_usage_errors_exit_2_and_runtime_errors_exit_1(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    missing = tmp_path / "missing.toml"
    assert (
        main(
            [
                "worker",
                "--redis",
                "redis://127.0.0.1:1/0",
                "--accounts",
                str(missing),
                "--db",
                "sqlite:///x.db",
            ]
        )
        == 2
    )
    assert "missing.toml" in capsys.readouterr().err
    with pytest.raises(SystemExit) as caught:
        main(["enqueue", "sync", "orders", "--account", "a", "--redis", "http://user:hunter2@h/0"])
    assert caught.value.code == 2
    err = capsys.readouterr().err
    assert "redis://" in err
    assert "hunter2" not in err
    assert (
        main(
            [
                "enqueue",
                "sync",
                "orders",
                "--account",
                "a",
                "--redis",
                "redis://:hunter2@127.0.0.1:1/0",
            ]
        )
        == 1
    )
    err = capsys.readouterr().err
    assert "Redis at" in err
    assert "hunter2" not in err
    assert len(err.splitlines()) == 1


# taskiq made unimportable, as when the [workers] extra is missing.
WITHOUT_TASKIQ = """
import sys
class Blocker:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("taskiq", "taskiq_redis"):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None
sys.meta_path.insert(0, Blocker())
import yeastar_csss_async, yeastar_csss_async.cli
try:
    import yeastar_csss_async.tasks
except ImportError as error:
    print(error)
raise SystemExit(yeastar_csss_async.cli.main(sys.argv[1:]))
"""


def test_without_the_workers_extra_the_commands_exit_2_naming_it(tmp_path: Path) -> None:
    import subprocess

    extra = "pip install 'yeastar-csss-async[workers]'"
    for argv in (
        [
            "worker",
            "--redis",
            "redis://127.0.0.1:1/0",
            "--accounts",
            "a.toml",
            "--db",
            "sqlite:///x.db",
        ],
        ["enqueue", "sync", "orders", "--account", "a", "--redis", "redis://127.0.0.1:1/0"],
    ):
        done = subprocess.run(
            [sys.executable, "-c", WITHOUT_TASKIQ, *argv],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 2, done.stderr
        assert extra in done.stdout  # the import error of yeastar_csss_async.tasks
        assert (
            done.stderr.strip() == f"yeastar-csss: worker and enqueue need the [workers] "
            f"extra: {extra}"
        )


def test_the_core_and_other_commands_do_not_import_taskiq() -> None:
    import subprocess

    code = (
        "import sys, yeastar_csss_async, yeastar_csss_async.cli, "
        "yeastar_csss_async.sandbox\n"
        "from yeastar_csss_async.cli import build_parser\n"
        "build_parser().parse_args(['worker', '--redis', 'redis://h/0', '--accounts', 'a',"
        " '--db', 'sqlite:///x.db'])\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('taskiq', 'taskiq_redis') or m.startswith('yeastar_csss_async.tasks')))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout.strip() == "[]"
