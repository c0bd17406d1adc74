"""The yeastar-csss command end to end, as a subprocess against the sandbox."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import os
import signal
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest

from yeastar_csss_async.sandbox import SANDBOX_CLIENT_ID, Sandbox, SandboxConfig, SandboxData

COMMAND = [sys.executable, "-m", "yeastar_csss_async"]
CLEAN_ENV = {k: v for k, v in os.environ.items()
             if not k.startswith(("YEASTAR_", "CSSS_"))}


def run(*args: str, env: dict[str, str] | None = None,
        cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*COMMAND, *args], capture_output=True, text=True, timeout=120,
                          env=env or CLEAN_ENV, cwd=cwd, check=False, encoding="utf-8")


def default_data() -> SandboxData:
    config = SandboxConfig()
    return SandboxData(seed=config.seed, orders=config.orders,
                       products_per_line=config.products_per_line,
                       package_orders=config.package_orders, generated=False)


def test_export_orders_from_the_sandbox_writes_every_order_once(tmp_path: Path) -> None:
    target = tmp_path / "orders.jsonl"
    result = run("export", "orders", "--sandbox", "--output", str(target))
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in target.read_text(encoding="utf-8").splitlines()]
    expected = [o["id"] for o in default_data().orders]
    assert [line["id"] for line in lines] == expected
    first = lines[0]
    assert set(first) >= {"id", "order_no", "create_time", "total_amount", "order_status"}
    assert Decimal(first["total_amount"]).as_tuple().exponent == -2  # "130.00"-style string
    assert isinstance(first["total_amount"], str)
    assert first["create_time"].endswith("+00:00")
    assert "500 records" in result.stderr  # the summary line
    assert [p.name for p in tmp_path.iterdir()] == ["orders.jsonl"]  # no temp file left


def test_export_csv_to_stdout(tmp_path: Path) -> None:
    result = run("export", "package-orders", "--sandbox", "--format", "csv", "--output", "-",
                 "--quiet")
    assert result.returncode == 0, result.stderr
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert len(rows) == 300
    assert rows[0]["order_code"] == default_data().package_orders[0]["orderCode"]
    assert rows[0]["refueling_package_list"] == "[]"
    assert result.stderr == ""  # --quiet


def test_export_one_product_line_and_all_lines(tmp_path: Path) -> None:
    one = run("export", "products", "--sandbox", "--product-id", "13", "-o", "-", "-q")
    assert one.returncode == 0, one.stderr
    numbers = [json.loads(line)["product_no"] for line in one.stdout.splitlines()]
    assert numbers == [p["productNo"] for p in default_data().products[13]]
    every = run("export", "products", "--sandbox", "-o", "-", "-q")
    assert every.returncode == 0, every.stderr
    assert len(every.stdout.splitlines()) == 6 * 120


def test_missing_credentials_exit_2_with_one_line() -> None:
    result = run("export", "orders")
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0
    assert "YEASTAR_CLIENT_ID" in result.stderr
    assert "Traceback" not in result.stderr
    result = run("export", "package-orders")
    assert result.returncode == 2
    assert "CSSS_ACCESS_CODE" in result.stderr


def test_usage_errors_exit_2() -> None:
    assert run("export", "invoices").returncode == 2
    assert run("export", "orders", "--sandbox", "--product-id", "13").returncode == 2


async def test_api_error_exits_1_with_the_code(tmp_path: Path) -> None:
    async with Sandbox(SandboxConfig(orders=10)) as sandbox:
        env = {**CLEAN_ENV, "YEASTAR_CLIENT_ID": SANDBOX_CLIENT_ID,
               "YEASTAR_CLIENT_SECRET": "wrong-secret-123"}
        process = await asyncio.create_subprocess_exec(
            *COMMAND, "export", "orders", "--base-url", sandbox.base_url, "--output",
            str(tmp_path / "x.jsonl"), env=env, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE)
        _, stderr_bytes = await process.communicate()
    stderr = stderr_bytes.decode()
    assert process.returncode == 1
    assert stderr.startswith("error: AuthenticationError")
    assert "code=invalid_client" in stderr
    assert stderr.strip().count("\n") == 0
    assert "wrong-secret-123" not in stderr
    assert not list(tmp_path.iterdir())  # noqa: ASYNC240 - the subprocess has ended


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_an_export_killed_midway_leaves_no_file(tmp_path: Path, sig: int, code: int) -> None:
    target = tmp_path / "orders.jsonl"
    process = subprocess.Popen(
        [*COMMAND, "export", "orders", "--sandbox", "--sandbox-size", "5000",
         "--sandbox-latency", "0.1", "--page-size", "10", "--concurrency", "2",
         "--output", str(target)],
        env=CLEAN_ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = 60
        while deadline and not any(tmp_path.iterdir()):  # wait until writing started
            deadline -= 1
            try:
                process.wait(timeout=0.1)
                break
            except subprocess.TimeoutExpired:
                pass
        assert process.poll() is None, "the export ended before it could be interrupted"
        process.send_signal(sig)
        _, stderr = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == code, stderr
    assert "Traceback" not in stderr
    assert list(tmp_path.iterdir()) == []  # neither the target nor a temp file


def test_help_lists_the_commands() -> None:
    result = run("--help")
    assert result.returncode == 0
    assert "export" in result.stdout
    assert "sandbox" in result.stdout
