"""The pytest plugin as a user meets it: test modules of their own, run by pytest in a
subprocess (``pytester.runpytest_subprocess``) with the plugin found through its ``pytest11``
entry point, warnings as errors and ``--strict-markers``.

Each run is a separate process, so coverage measures the plugin from its import on (coverage's
subprocess patch starts in the child before pytest loads entry-point plugins; in this process
pytest imported the plugin before pytest-cov started). Runs cost about a second
each, so every outer test checks a group of related behaviours in one run, naming each inner
test after the behaviour it shows.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import attrs
import pytest

pytest_plugins = ["pytester"]

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
README_SECTION = "## Testing your code against the sandbox"

AUTO_INI = """
[pytest]
asyncio_mode = auto
asyncio_default_fixture_loop_scope = function
filterwarnings = error
addopts = --strict-markers --strict-config -p no:cacheprovider
"""

HELPERS = '''
"""What the user's tests share: clients of the sandbox that do not retry."""

from yeastar_csss_async import CSSSClient, RetryPolicy, YeastarPartnerClient
from yeastar_csss_async.sandbox import (
    SANDBOX_ACCESS_CODE, SANDBOX_CLIENT_ID, SANDBOX_CLIENT_SECRET, SANDBOX_SECRET,
)

NO_RETRY = RetryPolicy(max_attempts=1)


def yeastar_client(base_url):
    # 5 s: a sandbox that is not served on the test's loop never answers
    return YeastarPartnerClient(SANDBOX_CLIENT_ID, SANDBOX_CLIENT_SECRET, base_url=base_url,
                                retry=NO_RETRY, timeout=5.0)


def csss_client(base_url):
    return CSSSClient(SANDBOX_ACCESS_CODE, SANDBOX_SECRET, base_url=base_url,
                      retry=NO_RETRY, timeout=5.0)


async def count_orders(base_url):
    async with yeastar_client(base_url) as client:
        return len([order async for order in client.iter_orders(page_size=10)])
'''


@attrs.frozen
class InnerRun:
    """The outcome of one inner pytest session, test by test."""

    result: pytest.RunResult
    outcomes: dict[str, str]
    """``test_file.py::test_name`` (or ``::Class::test``) -> PASSED, FAILED or ERROR."""

    def section(self, title: str) -> list[str]:
        """The non-blank lines of one report section (``ERROR at setup of test_x``)."""
        lines = self.result.outlines
        start = next(
            i for i, line in enumerate(lines) if re.fullmatch(rf"_+ {re.escape(title)} _+", line)
        )
        body = []
        for line in lines[start + 1 :]:
            if re.match(r"^(_{3,} .* _{3,}|={3,}.*)$", line):
                break
            if line.strip():
                body.append(line)
        return body


def run_inner(pytester: pytest.Pytester, *args: str) -> InnerRun:
    """Run pytest on ``pytester.path`` in a subprocess, verbosely, and read its outcomes."""
    result = pytester.runpytest_subprocess("-v", "-W", "error", "-p", "no:hypothesispytest", *args)
    outcomes: dict[str, str] = {}
    for line in result.outlines:
        match = re.match(r"^(\S+\.py::\S+) (PASSED|FAILED|ERROR|SKIPPED|XFAIL|XPASS)\b", line)
        if match:  # a test that fails in its call and its teardown keeps the first word
            outcomes.setdefault(match[1], match[2])
    return InnerRun(result, outcomes)


def assert_one_line_failure(run: InnerRun, title: str, message: str) -> None:
    """The report section ``title`` is the one line ``message`` (a regex), no traceback."""
    body = run.section(title)
    assert len(body) == 1, "\n".join(body)
    assert re.fullmatch(message, body[0]), body[0]


def test_user_tests_with_real_clients_pass_and_stats_count_their_requests(
    pytester: pytest.Pytester,
) -> None:
    pytester.makeini(AUTO_INI)
    pytester.makepyfile(helpers=HELPERS)
    pytester.makepyfile(
        test_clients="""
        from yeastar_csss_async.sandbox import PRODUCT_LINES

        from helpers import csss_client, yeastar_client


        async def test_yeastar_client_reads_every_list(yeastar_sandbox):
            async with yeastar_client(yeastar_sandbox.base_url) as client:
                orders = [order async for order in client.iter_orders(page_size=10)]
                lines = await client.list_subscription_products()
                products = [p async for p in client.iter_products(13)]
            assert len(orders) == len(yeastar_sandbox.orders) == 30
            assert [order.id for order in orders] == \\
                [record["id"] for record in yeastar_sandbox.orders]
            assert len(lines) == len(PRODUCT_LINES)
            assert len(products) == 10


        async def test_csss_client_reads_package_orders(yeastar_sandbox):
            async with csss_client(yeastar_sandbox.base_url) as client:
                codes = [o.order_code async for o in client.iter_package_orders(page_size=8)]
            assert codes == [record["orderCode"] for record in yeastar_sandbox.package_orders]
            assert len(codes) == 20


        async def test_stats_count_the_token_and_every_page(yeastar_sandbox):
            stats = yeastar_sandbox.stats
            assert (stats.requests, stats.token_requests) == (0, 0)
            async with yeastar_client(yeastar_sandbox.base_url) as client:
                for _ in range(3):
                    await client.get_orders_page(page_size=5)
            assert stats.token_requests == 1
            assert stats.requests == 4
            assert sum(stats.by_path.values()) == 4
            stats.reset()
            assert stats.requests == 0


        async def test_each_test_gets_a_fresh_sandbox(yeastar_sandbox):
            assert yeastar_sandbox.stats.requests == 0
            assert len(yeastar_sandbox.orders) == 30
    """
    )
    run = run_inner(pytester)
    run.result.assert_outcomes(passed=4)


def test_markers_override_the_config_closest_first_over_a_conftest_override(
    pytester: pytest.Pytester,
) -> None:
    pytester.makeini(AUTO_INI)
    pytester.makepyfile(
        test_markers="""
        import pytest

        pytestmark = pytest.mark.yeastar_sandbox(orders=5, package_orders=7)


        async def test_a_module_marker_applies(yeastar_sandbox):
            assert len(yeastar_sandbox.orders) == 5
            assert len(yeastar_sandbox.package_orders) == 7
            assert len(yeastar_sandbox.products[13]) == 10  # the default config


        @pytest.mark.yeastar_sandbox(orders=6, latency=0.001)
        class TestAClassMarker:
            async def test_a_class_marker_wins_over_the_module(self, yeastar_sandbox):
                assert len(yeastar_sandbox.orders) == 6
                assert len(yeastar_sandbox.package_orders) == 7
                assert yeastar_sandbox.config.latency == 0.001

            @pytest.mark.yeastar_sandbox(orders=8)
            async def test_a_test_marker_wins_over_the_class(self, yeastar_sandbox):
                assert len(yeastar_sandbox.orders) == 8
                assert yeastar_sandbox.config.latency == 0.001
                assert len(yeastar_sandbox.package_orders) == 7
    """
    )
    overridden = pytester.mkpydir("overridden")
    (overridden / "conftest.py").write_text(
        "import pytest\n"
        "from yeastar_csss_async.sandbox import SandboxConfig\n\n\n"
        "@pytest.fixture\n"
        "def yeastar_sandbox_config():\n"
        "    return SandboxConfig(orders=3, products_per_line=2, package_orders=4, seed=7)\n"
    )
    (overridden / "test_overridden.py").write_text(
        "import pytest\n\n\n"
        "async def test_a_conftest_override_is_the_base(yeastar_sandbox):\n"
        "    assert len(yeastar_sandbox.orders) == 3\n"
        "    assert len(yeastar_sandbox.products[13]) == 2\n"
        "    assert yeastar_sandbox.config.seed == 7\n\n\n"
        "@pytest.mark.yeastar_sandbox(orders=9)\n"
        "async def test_a_marker_applies_over_the_override(yeastar_sandbox):\n"
        "    assert len(yeastar_sandbox.orders) == 9\n"
        "    assert len(yeastar_sandbox.package_orders) == 4\n"
        "    assert yeastar_sandbox.config.seed == 7\n"
    )
    run = run_inner(pytester)
    run.result.assert_outcomes(passed=5)


def test_a_users_sync_code_sees_orders_added_changed_and_removed_between_calls(
    pytester: pytest.Pytester,
) -> None:
    pytester.makeini(AUTO_INI)
    pytester.makepyfile(helpers=HELPERS)
    pytester.makepyfile(
        test_sync='''
        import pytest
        from decimal import Decimal

        from helpers import yeastar_client


        async def sync_orders(client, store):
            """The user's code under test: mirror the portal's orders into ``store`` (id ->
            (status, amount)); return how many were new, changed and gone."""
            seen = {order.id: (order.order_status, order.total_amount)
                    async for order in client.iter_orders(page_size=7)}
            new = seen.keys() - store.keys()
            gone = store.keys() - seen.keys()
            changed = {key for key in seen.keys() & store.keys() if seen[key] != store[key]}
            store.clear()
            store.update(seen)
            return len(new), len(changed), len(gone)


        @pytest.fixture
        async def client(yeastar_sandbox):
            async with yeastar_client(yeastar_sandbox.base_url) as client:
                yield client


        async def test_sync_sees_a_new_order(yeastar_sandbox, client):
            store = {}
            assert await sync_orders(client, store) == (30, 0, 0)
            [new] = yeastar_sandbox.orders.add(order_status="pending")
            assert await sync_orders(client, store) == (1, 0, 0)
            assert store[new["id"]][0] == "pending"


        async def test_sync_sees_a_changed_order(yeastar_sandbox, client):
            store = {}
            await sync_orders(client, store)
            key = yeastar_sandbox.orders[12]["id"]
            yeastar_sandbox.orders.change(key, order_status="refunded",
                                          total_amount=Decimal("1.50"))
            assert await sync_orders(client, store) == (0, 1, 0)
            assert store[key] == ("refunded", Decimal("1.50"))


        async def test_sync_sees_a_removed_order(yeastar_sandbox, client):
            store = {}
            await sync_orders(client, store)
            removed = yeastar_sandbox.orders.remove(yeastar_sandbox.orders[-1]["id"])
            assert await sync_orders(client, store) == (0, 0, 1)
            assert removed["id"] not in store and len(store) == 29


        async def test_sync_sees_all_three_at_once(yeastar_sandbox, client):
            store = {}
            await sync_orders(client, store)
            yeastar_sandbox.orders.add(2)
            yeastar_sandbox.orders.change(yeastar_sandbox.orders[5]["id"], order_status="paid")
            yeastar_sandbox.orders.remove(yeastar_sandbox.orders[9]["id"])
            assert await sync_orders(client, store) == (2, 1, 1)
            assert len(store) == len(yeastar_sandbox.orders) == 31
    '''
    )
    run = run_inner(pytester)
    run.result.assert_outcomes(passed=4)


def test_misuse_fails_the_test_with_one_line_that_says_what_to_do(
    pytester: pytest.Pytester,
) -> None:
    pytester.makeini(AUTO_INI)
    pytester.makepyfile(
        test_misuse="""
        import pytest


        @pytest.mark.yeastar_sandbox(orders=5, order=3)
        async def test_unknown_field(yeastar_sandbox):
            pass


        @pytest.mark.yeastar_sandbox(5)
        async def test_positional(yeastar_sandbox):
            pass


        def test_sync(yeastar_sandbox):
            pass


        async def test_fine(yeastar_sandbox):
            pass
    """
    )
    run = run_inner(pytester)
    run.result.assert_outcomes(passed=1, errors=3)
    assert_one_line_failure(
        run,
        "ERROR at setup of test_unknown_field",
        r"@pytest\.mark\.yeastar_sandbox: SandboxConfig has no field 'order'; did you mean "
        r"'orders'\? \(fields: orders, products_per_line, .*\)",
    )
    assert_one_line_failure(
        run,
        "ERROR at setup of test_positional",
        r"@pytest\.mark\.yeastar_sandbox takes SandboxConfig fields as keywords \(orders=50\), "
        r"not \(5,\)",
    )
    assert_one_line_failure(
        run,
        "ERROR at setup of test_sync",
        r"test_sync: the yeastar_sandbox fixture serves on the test's event loop; use it from "
        r"an async test that pytest-asyncio runs \(in strict mode, mark it "
        r"@pytest\.mark\.asyncio\)",
    )


def test_strict_mode_runs_marked_tests_on_the_default_loop_scope_and_refuses_unmarked_ones(
    pytester: pytest.Pytester,
) -> None:
    pytester.makeini("""
        [pytest]
        asyncio_mode = strict
        asyncio_default_fixture_loop_scope = function
        asyncio_default_test_loop_scope = module
        filterwarnings = error
        addopts = --strict-markers --strict-config -p no:cacheprovider
    """)
    pytester.makepyfile(helpers=HELPERS)
    pytester.makepyfile(
        test_strict="""
        import asyncio

        import pytest
        import pytest_asyncio

        from helpers import count_orders

        loops = []


        @pytest_asyncio.fixture(loop_scope="module")  # the loop of the tests that use it
        async def orders_seen(yeastar_sandbox):
            return await count_orders(yeastar_sandbox.base_url)


        @pytest.mark.asyncio
        async def test_marked_one(yeastar_sandbox, orders_seen):
            loops.append(asyncio.get_running_loop())
            assert orders_seen == await count_orders(yeastar_sandbox.base_url) == 30


        @pytest.mark.asyncio
        async def test_marked_two_shares_the_module_loop(yeastar_sandbox):
            assert loops == [asyncio.get_running_loop()]
            assert await count_orders(yeastar_sandbox.base_url) == 30


        async def test_unmarked(yeastar_sandbox):
            pass
    """
    )
    run = run_inner(pytester)
    run.result.assert_outcomes(passed=2, errors=1)
    assert_one_line_failure(
        run,
        "ERROR at setup of test_unmarked",
        r"test_unmarked: the yeastar_sandbox fixture serves on the test's event loop; .*"
        r"mark it @pytest\.mark\.asyncio\)",
    )


def test_the_sandbox_follows_the_tests_loop_scope_and_stops_after_each_test(
    pytester: pytest.Pytester,
) -> None:
    pytester.makeini(AUTO_INI)
    pytester.makepyfile(helpers=HELPERS)
    pytester.makepyfile(
        closed="""
        import asyncio
        from urllib.parse import urlsplit

        import pytest


        async def assert_closed(base_url):
            url = urlsplit(base_url)
            with pytest.raises(ConnectionRefusedError):
                await asyncio.open_connection(url.hostname, url.port)
    """
    )
    module_loop = """
        import asyncio

        import pytest

        from closed import assert_closed
        from helpers import count_orders

        pytestmark = pytest.mark.asyncio(loop_scope="module")
        seen = []


        async def test_one(yeastar_sandbox):
            seen.append((asyncio.get_running_loop(), yeastar_sandbox.base_url))
            assert await count_orders(yeastar_sandbox.base_url) == 30


        async def test_two_on_the_same_loop(yeastar_sandbox):
            assert seen[0][0] is asyncio.get_running_loop()
            assert await count_orders(yeastar_sandbox.base_url) == 30


        async def test_fails_on_purpose(yeastar_sandbox):
            seen.append((asyncio.get_running_loop(), yeastar_sandbox.base_url))
            assert False, "on purpose"


        async def test_both_sandboxes_were_closed():
            await assert_closed(seen[0][1])
            await assert_closed(seen[1][1])
    """
    pytester.makepyfile(test_module_loop=module_loop)
    pytester.makepyfile(
        test_function_loop=module_loop.replace(
            'pytestmark = pytest.mark.asyncio(loop_scope="module")', ""
        )
        .replace("test_two_on_the_same_loop", "test_two_on_a_new_loop")
        .replace("assert seen[0][0] is asyncio", "assert seen[0][0] is not asyncio")
    )
    pytester.makepyfile(
        test_class_loop="""
        import asyncio

        import pytest

        from closed import assert_closed
        from helpers import count_orders


        @pytest.mark.asyncio(loop_scope="class")
        class TestOnTheClassLoop:
            seen = []

            async def test_one(self, yeastar_sandbox):
                self.seen.append((asyncio.get_running_loop(), yeastar_sandbox.base_url))
                assert await count_orders(yeastar_sandbox.base_url) == 30

            @pytest.mark.yeastar_sandbox(orders=4)
            async def test_two_on_the_same_loop(self, yeastar_sandbox):
                assert self.seen[0][0] is asyncio.get_running_loop()
                assert await count_orders(yeastar_sandbox.base_url) == 4

            async def test_the_first_sandbox_was_closed(self):
                await assert_closed(self.seen[0][1])
    """
    )
    run = run_inner(pytester)
    failed = {name for name, outcome in run.outcomes.items() if outcome != "PASSED"}
    assert failed == {
        "test_module_loop.py::test_fails_on_purpose",
        "test_function_loop.py::test_fails_on_purpose",
    }, run.result.stdout.str()
    run.result.assert_outcomes(passed=9, failed=2)


def test_without_pytest_asyncio_the_plugin_loads_and_the_fixture_says_what_to_install(
    pytester: pytest.Pytester,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    hidden = pytester.mkdir("hidden")
    (hidden / "pytest_asyncio.py").write_text(
        "raise ModuleNotFoundError(\"No module named 'pytest_asyncio'\")\n"
    )
    monkeypatch.setenv("PYTHONPATH", str(hidden))  # shadows the installed pytest-asyncio
    pytester.makeini("""
        [pytest]
        filterwarnings = error
        addopts = --strict-markers --strict-config -p no:cacheprovider -p no:asyncio
    """)
    pytester.makepyfile(
        test_plain="""
        import pytest


        @pytest.mark.yeastar_sandbox(orders=1)  # the marker is still registered
        def test_without_the_fixture():
            with pytest.raises(ImportError):
                import pytest_asyncio  # noqa: F401


        def test_with_the_fixture(yeastar_sandbox):
            pass
    """
    )
    run = run_inner(pytester)
    run.result.assert_outcomes(passed=1, errors=1)
    assert_one_line_failure(
        run,
        "ERROR at setup of test_with_the_fixture",
        r"the yeastar_sandbox fixture needs pytest-asyncio >= 1\.0 "
        r"\(pip install pytest-asyncio\)",
    )


def readme_blocks() -> list[tuple[str, str]]:
    """The fenced blocks of the README's sandbox section: (language, text)."""
    text = README.read_text(encoding="utf-8")
    start = text.find(f"\n{README_SECTION}\n")
    assert start >= 0, f"README.md has no section {README_SECTION!r}"
    end = text.find("\n## ", start + 1)
    section = text[start : end if end >= 0 else len(text)]
    return re.findall(r"^```(\w+)\n(.*?)^```$", section, flags=re.MULTILINE | re.DOTALL)


def test_the_readme_sandbox_examples_run(pytester: pytest.Pytester) -> None:
    """Scripts run as they are; blocks that start with ``# name.py`` (or ``# pyproject.toml``)
    are the files of a user's test suite, which then passes."""
    scripts, files, tests = [], 0, 0
    for language, text in readme_blocks():
        name = re.match(r"# ([\w/]+\.(?:py|toml))\n", text)
        if name:
            path = pytester.path / name[1]
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
            files += 1
            tests += len(re.findall(r"^(?:async )?def test_", text, flags=re.MULTILINE))
        elif language == "python":
            scripts.append(text)
    assert scripts
    assert files >= 2
    assert tests >= 1
    for number, script in enumerate(scripts):
        path = pytester.path / f"readme_script_{number}.py"
        path.write_text(script, encoding="utf-8")
        ran = pytester.run(sys.executable, "-W", "error", str(path))
        assert ran.ret == 0, f"{script}\n{ran.stdout.str()}\n{ran.stderr.str()}"
    run = run_inner(
        pytester,
        "-p",
        "no:cacheprovider",
        "--strict-markers",
        "--strict-config",
        "--ignore-glob=readme_script_*.py",
    )
    run.result.assert_outcomes(passed=tests)
