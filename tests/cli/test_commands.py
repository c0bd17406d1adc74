"""The yeastar-csss command end to end (``cli/_commands``), as a subprocess against the
sandbox: exports, exit codes and one-line errors, signals, export all, the sandbox command.
The parser's help, the progress line and the writers have modules of their own here."""

from __future__ import annotations

import asyncio
import contextlib
import csv
import io
import json
import os
import re
import select
import signal
import socket
import stat
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest

from yeastar_csss_async.sandbox import (
    SANDBOX_ACCESS_CODE,
    SANDBOX_CLIENT_ID,
    SANDBOX_CLIENT_SECRET,
    SANDBOX_SECRET,
    Sandbox,
    SandboxConfig,
    SandboxData,
)

from tests._support.command import CLEAN_ENV, COMMAND, default_data, run


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
    result = run(
        "export", "package-orders", "--sandbox", "--format", "csv", "--output", "-", "--quiet"
    )
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


UNWRITABLE_DIR = "/sys" if os.geteuid() == 0 else "{tmp}/read-only"  # root may write anywhere else
EXPORT = ("export", "orders", "--sandbox")


@pytest.mark.parametrize(
    ("args", "code", "says"),
    [
        pytest.param((), 2, "required", id="no command"),
        pytest.param(("export",), 2, "required", id="no kind"),
        pytest.param(("export", "invoices"), 2, "invalid choice", id="unknown kind"),
        pytest.param((*EXPORT, "--bogus"), 2, "--bogus", id="unknown flag"),
        pytest.param((*EXPORT, "--format", "xml"), 2, "--format", id="unknown format"),
        pytest.param((*EXPORT, "--page-size", "0"), 2, "--page-size", id="page size 0"),
        pytest.param((*EXPORT, "--page-size", "ten"), 2, "'ten'", id="page size not a number"),
        pytest.param((*EXPORT, "--concurrency", "-3"), 2, "--concurrency", id="negative"),
        pytest.param((*EXPORT, "--page-size", "9" * 5000), 2, "--page-size", id="5000 digits"),
        pytest.param((*EXPORT, "--sandbox-latency", "nan"), 2, "--sandbox-latency", id="nan"),
        pytest.param(
            (*EXPORT, "--sandbox-fault-rate", "2"), 2, "--sandbox-fault-rate", id="fault rate 2"
        ),
        pytest.param((*EXPORT, "--product-id", "13"), 2, "--product-id", id="orders by product"),
        pytest.param(("sandbox", "--port", "70000"), 2, "--port", id="port 70000"),
        pytest.param(("export", "orders", "--base-url", "ftp://x"), 2, "'ftp://x'", id="ftp"),
        pytest.param(("export", "orders", "--base-url", "http://"), 2, "--base-url", id="no host"),
        pytest.param(
            ("export", "orders", "--base-url", "http://x:99999"),
            2,
            "--base-url",
            id="port out of range",
        ),
        pytest.param(("export", "orders"), 2, "YEASTAR_CLIENT_ID", id="no credentials"),
        pytest.param(
            (*EXPORT, "-o", "{tmp}/missing/orders.jsonl"), 1, "No such file", id="missing directory"
        ),
        pytest.param(
            (*EXPORT, "-o", UNWRITABLE_DIR + "/orders.jsonl"),
            1,
            "Permission denied",
            id="unwritable directory",
        ),
        pytest.param((*EXPORT, "-o", "{tmp}"), 1, "Is a directory", id="output is a directory"),
        pytest.param((*EXPORT, "-o", "/dev/full"), 1, "No space left", id="disk full"),
        pytest.param((*EXPORT, "-o", "{tmp}/socket"), 1, "not a regular file", id="a socket"),
        pytest.param((*EXPORT, "-o", "-", ">&-"), 1, "stdout: it is closed", id="closed stdout"),
        pytest.param(
            ("export", "all", "--sandbox", "-o", "x.jsonl"),
            2,
            "use --output-dir DIR",
            id="all with --output",
        ),
        pytest.param(
            ("export", "all", "--sandbox"),
            2,
            "export all needs --output-dir DIR",
            id="all without --output-dir",
        ),
        pytest.param(
            (*EXPORT, "--output-dir", "{tmp}"),
            2,
            "--output-dir applies to export all",
            id="--output-dir without all",
        ),
        pytest.param((*EXPORT, "--excel"), 2, "--excel applies to --format csv", id="excel jsonl"),
    ],
)
def test_bad_input_gives_one_line_and_the_right_exit_code(
    tmp_path: Path, args: tuple[str, ...], code: int, says: str
) -> None:
    (tmp_path / "read-only").mkdir(mode=0o555)
    with socket.socket(socket.AF_UNIX) as listener:
        listener.bind(str(tmp_path / "socket"))  # the file stays when the socket closes
    command = [*COMMAND, *(arg.replace("{tmp}", str(tmp_path)) for arg in args)]
    if command[-1] == ">&-":  # run with stdout closed, as `yeastar-csss ... >&-` does
        command = ["sh", "-c", 'exec "$@" >&-', "sh", *command[:-1]]
    result = subprocess.run(
        command,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=CLEAN_ENV,
        encoding="utf-8",
    )
    assert result.returncode == code, result.stderr
    assert "Traceback" not in result.stderr
    assert result.stderr.count("\n") == 1, result.stderr
    assert result.stderr.endswith("\n")
    assert says in result.stderr


def test_a_credential_the_client_refuses_is_a_usage_error() -> None:
    # A secret that is not UTF-8 (a byte 0xff) reaches Python as a lone surrogate.
    env = {**CLEAN_ENV, "YEASTAR_CLIENT_ID": "id", "YEASTAR_CLIENT_SECRET": "s3cr\udcffet"}
    result = run("export", "orders", "--base-url", "http://127.0.0.1:9", env=env)
    assert result.returncode == 2
    assert result.stderr.startswith("yeastar-csss: client_secret cannot be encoded as UTF-8")
    assert result.stderr.count("\n") == 1
    assert "s3cr" not in result.stderr


async def test_api_error_exits_1_with_the_code(tmp_path: Path) -> None:
    async with Sandbox(SandboxConfig(orders=10)) as sandbox:
        env = {
            **CLEAN_ENV,
            "YEASTAR_CLIENT_ID": SANDBOX_CLIENT_ID,
            "YEASTAR_CLIENT_SECRET": "wrong-secret-123",
        }
        process = await asyncio.create_subprocess_exec(
            *COMMAND,
            "export",
            "orders",
            "--base-url",
            sandbox.base_url,
            "--output",
            str(tmp_path / "x.jsonl"),
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        _, stderr_bytes = await process.communicate()
    stderr = stderr_bytes.decode()
    assert process.returncode == 1
    assert stderr.startswith("error: AuthenticationError")
    assert "code=invalid_client" in stderr
    assert stderr.strip().count("\n") == 0
    assert "wrong-secret-123" not in stderr
    assert not list(tmp_path.iterdir())  # noqa: ASYNC240 - the subprocess has ended


SIGNALS = [(signal.SIGINT, 130, "interrupted\n"), (signal.SIGTERM, 143, "terminated\n")]


@pytest.mark.parametrize("existing", [False, True])
@pytest.mark.parametrize(("sig", "code", "message"), SIGNALS)
def test_an_export_killed_midway_leaves_no_file(
    tmp_path: Path, sig: int, code: int, message: str, existing: bool
) -> None:
    # The sandbox's latency (0.1 s) equals its server's shutdown grace period: the case in
    # which aiohttp 3.14 logged a traceback of its own (see _output.OneLineLog).
    target = tmp_path / "orders.jsonl"
    if existing:
        target.write_text("old\n")
        target.chmod(0o640)
    process = subprocess.Popen(
        [
            *COMMAND,
            "export",
            "orders",
            "--sandbox",
            "--sandbox-size",
            "5000",
            "--sandbox-latency",
            "0.1",
            "--page-size",
            "10",
            "--concurrency",
            "2",
            "--output",
            str(target),
        ],
        env=CLEAN_ENV,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        for _ in range(600):  # until records reach the temporary file (60 s at most)
            temp = [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
            if (temp and temp[0].stat().st_size > 0) or process.poll() is not None:
                break
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=0.1)
        assert process.poll() is None, "the export ended before it could be interrupted"
        process.send_signal(sig)
        _, stderr = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == code, stderr
    assert stderr == message
    if existing:
        assert [p.name for p in tmp_path.iterdir()] == ["orders.jsonl"]
        assert target.read_text() == "old\n"
        assert stat.S_IMODE(target.stat().st_mode) == 0o640
    else:
        assert list(tmp_path.iterdir()) == []  # neither the target nor a temp file


def pipe_is_full(write_end: int) -> bool:
    """True when a pipe has no room left, so its writers block (asked on a write end)."""
    return not select.select([], [write_end], [], 0)[1]


@pytest.mark.parametrize("stderr_too", [False, True], ids=["stdout", "stdout and stderr"])
@pytest.mark.parametrize(("sig", "code", "message"), SIGNALS)
def test_a_stalled_stdout_does_not_hold_up_a_signal(
    sig: int, code: int, message: str, stderr_too: bool
) -> None:
    # The reader never reads: once the pipe is full, every write to it blocks. Requirement:
    # the signal acts within a second. The bound below is not that second (process start
    # and teardown on a loaded machine are not the export's doing): the point is that the
    # old code never exits at all, its event loop stuck in write(); 10 s tells the two apart
    # without a timing assertion that can flake. With stderr in the same pipe (`2>&1 |
    # less`), the last message is given up on after a second.
    read_end, write_end = os.pipe()
    process = subprocess.Popen(
        [*COMMAND, "export", "orders", "--sandbox", "--sandbox-size", "20000", "-o", "-"],
        env=CLEAN_ENV,
        stdout=write_end,
        stderr=write_end if stderr_too else subprocess.PIPE,
        text=True,
    )
    try:
        for _ in range(3000):  # until the pipe is full (30 s at most): the export is stalled
            if pipe_is_full(write_end) or process.poll() is not None:
                break
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=0.01)
        assert process.poll() is None, "the export ended before it stalled"
        assert pipe_is_full(write_end), "the export never stalled"
        process.send_signal(sig)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pytest.fail("the export ignored the signal while its output was stalled")
        stderr = process.stderr.read() if process.stderr is not None else message
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        os.close(read_end)
        os.close(write_end)
        if process.stderr is not None:
            process.stderr.close()
    assert process.returncode == code, stderr
    assert stderr == message


def test_a_reader_that_goes_away_ends_the_export_quietly_with_141() -> None:
    process = subprocess.Popen(
        [*COMMAND, "export", "orders", "--sandbox", "--sandbox-size", "5000", "-o", "-"],
        env=CLEAN_ENV,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert process.stdout is not None
    assert process.stdout.read(100)  # `| head -c 100`
    process.stdout.close()
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 141
    assert stderr == b""


# Runs the real command, and reports library tasks still pending when its HTTP session
# closes (after a failure, every fetch must have been cancelled and awaited before that).
SESSION_CLOSE_WATCH = """
import asyncio, sys, aiohttp
from yeastar_csss_async import cli
close = aiohttp.ClientSession.close
async def watched_close(self):
    pending = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()
               and "yeastar_csss_async" in getattr(t.get_coro(), "cr_code", close.__code__)
               .co_filename and "sandbox" not in t.get_coro().cr_code.co_filename]
    if pending:
        print(f"{len(pending)} tasks pending when the session closed", file=sys.stderr)
    await close(self)
aiohttp.ClientSession.close = watched_close
raise SystemExit(cli.main(sys.argv[1:]))
"""


def test_a_write_error_mid_export_exits_1_after_closing_every_fetch(tmp_path: Path) -> None:
    with open("/dev/full", "wb") as full:  # every write: ENOSPC, like a full disk
        result = subprocess.run(
            [
                sys.executable,
                "-c",
                SESSION_CLOSE_WATCH,
                "export",
                "orders",
                "--sandbox",
                "--sandbox-size",
                "5000",
                "--page-size",
                "10",
                "--output",
                "-",
            ],
            stdout=full,
            stderr=subprocess.PIPE,
            text=True,
            env=CLEAN_ENV,
            timeout=120,
            check=False,
        )
    assert result.stderr == "yeastar-csss: stdout: No space left on device\n"
    assert result.returncode == 1


def test_ctrl_c_on_a_terminal_prints_interrupted_on_a_line_of_its_own() -> None:
    # The command runs on a pseudo-terminal (in a helper process that forks it there), so
    # it draws its progress line and the terminal echoes ^C, as for a person at a shell.
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            PTY_CTRL_C,
            *COMMAND,
            "export",
            "orders",
            "--sandbox",
            "--sandbox-size",
            "5000",
            "--sandbox-latency",
            "0.05",
            "--page-size",
            "10",
            "-o",
            os.devnull,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    code, screen = json.loads(result.stdout)
    assert code == 130
    assert screen == ["interrupted"]


PTY_CTRL_C = r"""
import json, os, pty, sys
pid, fd = pty.fork()
if pid == 0:
    os.execv(sys.argv[1], sys.argv[1:])
seen = b""
while b"records" not in seen:  # the progress line is up
    seen += os.read(fd, 1024)
os.write(fd, b"\x03")  # Ctrl-C, as typed
while True:
    try:
        chunk = os.read(fd, 1024)
    except OSError:  # EIO: the command has exited
        break
    if not chunk:
        break
    seen += chunk
_, status = os.waitpid(pid, 0)
lines = [""]  # what the terminal shows: \r returns to the start of the line
column = 0
for char in seen.decode():
    if char == "\r":
        column = 0
    elif char == "\n":
        lines.append("")
        column = 0
    else:
        line = lines[-1].ljust(column)
        lines[-1] = line[:column] + char + line[column + 1:]
        column += 1
print(json.dumps([os.waitstatus_to_exitcode(status),
                  [line.rstrip() for line in lines if line.strip()]]))
"""


# --- export all ------------------------------------------------------------------------------


def lines_of(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_export_all_writes_every_list_into_the_directory(tmp_path: Path) -> None:
    directory = tmp_path / "exports"  # made when missing
    result = run(
        "export", "all", "--sandbox", "--sandbox-size", "20", "--output-dir", str(directory)
    )
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in directory.iterdir()) == [
        "orders.jsonl",
        "package-orders.jsonl",
        "products.jsonl",
    ]
    data = SandboxData(seed=1, orders=20, products_per_line=20, package_orders=20, generated=False)
    assert [r["id"] for r in lines_of(directory / "orders.jsonl")] == [o["id"] for o in data.orders]
    assert [r["product_no"] for r in lines_of(directory / "products.jsonl")] == [
        p["productNo"] for line in sorted(data.products) for p in data.products[line]
    ]
    assert [r["order_code"] for r in lines_of(directory / "package-orders.jsonl")] == [
        o["orderCode"] for o in data.package_orders
    ]
    summaries = result.stderr.splitlines()
    assert [line.split(":")[0] for line in summaries] == ["orders", "products", "package-orders"]
    assert "20 records" in summaries[0]
    assert "120 records" in summaries[1]


def sandbox_env(sandbox: Sandbox, *, csss_secret: str | None = None) -> dict[str, str]:
    """The environment of a user pointed at ``sandbox``: Yeastar always, CSSS if asked."""
    env = {
        **CLEAN_ENV,
        "YEASTAR_CLIENT_ID": SANDBOX_CLIENT_ID,
        "YEASTAR_CLIENT_SECRET": SANDBOX_CLIENT_SECRET,
        "YEASTAR_BASE_URL": sandbox.base_url,
    }
    if csss_secret is not None:
        env |= {
            "CSSS_ACCESS_CODE": SANDBOX_ACCESS_CODE,
            "CSSS_SECRET": csss_secret,
            "CSSS_BASE_URL": sandbox.base_url,
        }
    return env


async def run_async(*args: str, env: dict[str, str]) -> tuple[int, str]:
    """The command as a subprocess while this test's event loop serves a sandbox."""
    process = await asyncio.create_subprocess_exec(
        *COMMAND, *args, env=env, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE
    )
    _, stderr = await process.communicate()
    assert process.returncode is not None
    return process.returncode, stderr.decode()


async def test_export_all_without_csss_credentials_skips_package_orders_and_says_so(
    tmp_path: Path,
) -> None:
    config = SandboxConfig(orders=15, products_per_line=5)
    async with Sandbox(config) as sandbox:
        code, stderr = await run_async(
            "export", "all", "--output-dir", str(tmp_path), env=sandbox_env(sandbox)
        )
        package_requests = sandbox.stats.by_path.get("/package/queryOrder", 0)
    assert code == 0, stderr
    assert sorted(os.listdir(tmp_path)) == ["orders.jsonl", "products.jsonl"]
    assert len(lines_of(tmp_path / "orders.jsonl")) == 15
    assert len(lines_of(tmp_path / "products.jsonl")) == 6 * 5
    assert stderr.splitlines()[-1] == (
        "package-orders: skipped (set CSSS_ACCESS_CODE and CSSS_SECRET to export it)"
    )
    assert package_requests == 0


async def test_export_all_with_a_failing_list_says_what_was_and_was_not_written(
    tmp_path: Path,
) -> None:
    async with Sandbox(SandboxConfig(orders=15, products_per_line=5)) as sandbox:
        code, stderr = await run_async(
            "export",
            "all",
            "--output-dir",
            str(tmp_path),
            "-q",
            env=sandbox_env(sandbox, csss_secret="not-the-sandbox-secret"),
        )
    assert code == 1
    assert sorted(os.listdir(tmp_path)) == ["orders.jsonl", "products.jsonl"]
    first, second = stderr.splitlines()
    assert first == (
        "export all: stopped at package-orders; completed: orders, products; "
        "not written: package-orders"
    )
    assert second == "error: APIError: sign error (status=200, code=1002)"
    assert "not-the-sandbox-secret" not in stderr


async def test_export_all_xlsx_writes_a_workbook_per_list(tmp_path: Path) -> None:
    pytest.importorskip("openpyxl")
    async with Sandbox(SandboxConfig(orders=7, products_per_line=3, package_orders=4)) as sandbox:
        code, stderr = await run_async(
            "export",
            "all",
            "--output-dir",
            str(tmp_path),
            "--format",
            "xlsx",
            "-q",
            env=sandbox_env(sandbox, csss_secret=SANDBOX_SECRET),
        )
    assert code == 0, stderr
    import openpyxl

    counts = {}
    for name in ("orders", "products", "package-orders"):
        workbook = openpyxl.load_workbook(tmp_path / f"{name}.xlsx", read_only=True)
        counts[name] = len(list(workbook[name].iter_rows())) - 1
        workbook.close()
    assert counts == {"orders": 7, "products": 6 * 3, "package-orders": 4}


def test_a_base_url_in_the_environment_is_checked_like_the_option() -> None:
    env = {
        **CLEAN_ENV,
        "YEASTAR_CLIENT_ID": "id",
        "YEASTAR_CLIENT_SECRET": "secret",
        "YEASTAR_BASE_URL": "ftp://example.com",
    }
    result = run("export", "orders", "-o", "-", env=env)
    assert result.returncode == 2
    assert result.stderr.startswith("yeastar-csss: YEASTAR_BASE_URL: expected an http")
    assert result.stderr.count("\n") == 1


# --- logs --------------------------------------------------------------------------------------


def test_verbose_logs_each_retry_with_its_list_and_page(tmp_path: Path) -> None:
    # One request at a time, so that the sandbox's seeded faults fall on the same requests
    # every run; 30% of 10 pages fail at least once.
    result = run(
        "export",
        "orders",
        "--sandbox",
        "--sandbox-size",
        "100",
        "--page-size",
        "10",
        "--concurrency",
        "1",
        "--sandbox-fault-rate",
        "0.3",
        "-v",
        "-o",
        str(tmp_path / "orders.jsonl"),
    )
    assert result.returncode == 0, result.stderr
    retries = [line for line in result.stderr.splitlines() if "retrying" in line]
    assert retries, result.stderr
    for line in retries:
        assert re.fullmatch(
            r"yeastar-csss: debug: retrying orders page \d+ \(GET /\S+\) "
            r"after .+ in [\d.]+s \(attempt \d of \d\)",
            line,
        ), line
    summary = result.stderr.splitlines()[-1]
    assert f"{len(retries)} retries" in summary
    assert len(lines_of(tmp_path / "orders.jsonl")) == 100
    quiet = run(
        "export",
        "orders",
        "--sandbox",
        "--sandbox-size",
        "100",
        "--page-size",
        "10",
        "--concurrency",
        "1",
        "--sandbox-fault-rate",
        "0.3",
        "-o",
        os.devnull,
    )
    assert "retrying" not in quiet.stderr  # only with -v


# --- the sandbox command ------------------------------------------------------------------------


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_sandbox_stats_are_printed_when_it_is_stopped(sig: int) -> None:
    process = subprocess.Popen(
        [*COMMAND, "sandbox", "--port", "0", "--stats", "--orders", "5"],
        env=CLEAN_ENV,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        first = process.stdout.readline()
        url = re.search(r"serving on (http://\S+)", first)
        assert url, first
        env = {
            **CLEAN_ENV,
            "YEASTAR_CLIENT_ID": SANDBOX_CLIENT_ID,
            "YEASTAR_CLIENT_SECRET": SANDBOX_CLIENT_SECRET,
            "YEASTAR_BASE_URL": url[1],
        }
        export = run("export", "orders", "-q", "-o", "-", env=env)
        assert export.returncode == 0, export.stderr
        assert len(export.stdout.splitlines()) == 5
        process.send_signal(sig)
        rest, stderr = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == (130 if sig == signal.SIGINT else 143), stderr
    stats = rest[rest.index("sandbox stats:") :].splitlines()
    assert "  requests: 2" in stats  # a token and one page
    assert "  token_requests: 1" in stats
    assert any(
        line.startswith("  by_path: ") and "/order/openapi/order/v1/page 1" in line
        for line in stats
    ), stats
    assert not any("_at:" in line for line in stats)


def test_sandbox_prints_no_stats_without_the_option() -> None:
    process = subprocess.Popen(
        [*COMMAND, "sandbox", "--port", "0"],
        env=CLEAN_ENV,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        assert "serving on" in process.stdout.readline()
        process.send_signal(signal.SIGINT)
        rest, _ = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert "stats" not in rest


def test_format_stats_gives_one_line_per_counter_and_leaves_clock_readings_out() -> None:
    from yeastar_csss_async.cli._sandbox import format_stats
    from yeastar_csss_async.sandbox import SandboxStats

    stats = SandboxStats(requests=3, token_requests=1, last_request_at=123.4)
    stats.by_path["/b"] += 2
    stats.by_path["/a"] += 1
    stats.user_agents.add("ua/1")
    assert format_stats(stats).splitlines() == [
        "sandbox stats:",
        "  requests: 3",
        "  by_path: /a 1, /b 2",
        "  token_requests: 1",
        "  grants: -",
        "  in_flight: 0",
        "  peak_in_flight: 0",
        "  faults: -",
        "  user_agents: ua/1",
    ]
