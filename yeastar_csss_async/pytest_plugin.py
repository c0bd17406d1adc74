"""pytest plugin: a running sandbox for each test, to test your own code against.

Installed with the package (entry point ``pytest11``, so there is nothing to enable), it adds:

* the fixture ``yeastar_sandbox``: a running :class:`~yeastar_csss_async.sandbox.Sandbox` on
  127.0.0.1 (a free port) for one test, with small lists (30 orders, 10 products per product
  line, 20 package orders), its ``stats``, and its lists to change between calls
  (``yeastar_sandbox.orders.add()``, ``.change(key, ...)``, ``.remove(key)``);
* the fixture ``yeastar_sandbox_config``: the :class:`~yeastar_csss_async.sandbox.SandboxConfig`
  it starts from; override it in a ``conftest.py`` to change the defaults of many tests;
* the marker ``@pytest.mark.yeastar_sandbox(**options)``: ``SandboxConfig`` fields for one
  test, class or module (``orders=500, latency=0.05, fault_rate=0.1``); the closest wins.

The sandbox serves on the event loop of the test that uses it, so a client in the test talks
to it without threads. That needs pytest-asyncio (1.0 or newer) and an ``async def`` test that
pytest-asyncio runs (in strict mode, marked ``@pytest.mark.asyncio``); the sandbox follows the
test's loop scope, set by the marker's ``loop_scope`` or ``asyncio_default_test_loop_scope``.
An async fixture that talks to the sandbox must run on that loop too (give it the tests'
``loop_scope``): on another loop it waits for answers until its client times out.
Without pytest-asyncio the plugin still loads, and the fixture fails with a one-line message;
so do a synchronous test, a marker field ``SandboxConfig`` does not have and positional marker
arguments. The sandbox module is imported only when a test asks for the fixture.
"""

from __future__ import annotations

import difflib
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any, Literal, cast

import pytest

if TYPE_CHECKING:
    from yeastar_csss_async.sandbox import Sandbox, SandboxConfig

try:
    import pytest_asyncio
except ImportError:  # the fixture says what to install
    _HAS_PYTEST_ASYNCIO = False
else:
    _HAS_PYTEST_ASYNCIO = True

__all__ = ["yeastar_sandbox", "yeastar_sandbox_config"]

MARKER = "yeastar_sandbox"
LoopScope = Literal["function", "class", "module", "package", "session"]


def pytest_configure(config: pytest.Config) -> None:
    """Register the marker, so ``--strict-markers`` accepts it."""
    config.addinivalue_line(
        "markers",
        f"{MARKER}(**options): SandboxConfig fields for the yeastar_sandbox fixture, "
        "e.g. orders=500, latency=0.05, fault_rate=0.1",
    )


@pytest.fixture
def yeastar_sandbox_config() -> SandboxConfig:
    """The configuration the ``yeastar_sandbox`` fixture starts from (markers apply on top):
    30 orders, 10 products per product line, 20 package orders, no latency, no faults.

    Override it in a ``conftest.py`` to change the defaults for many tests.
    """
    from yeastar_csss_async.sandbox import SandboxConfig

    return SandboxConfig(orders=30, products_per_line=10, package_orders=20)


@pytest.fixture
def yeastar_sandbox(request: pytest.FixtureRequest) -> Sandbox:
    """A running sandbox for this test, on this test's event loop (see the module doc).

    Its ``base_url`` and the ``SANDBOX_*`` credentials make real clients talk to it; its
    ``stats`` count what they sent; ``orders``, ``products[line]`` and ``package_orders``
    change what the next request sees. It stops when the test ends.
    """
    if not _HAS_PYTEST_ASYNCIO or not request.config.pluginmanager.hasplugin("asyncio"):
        pytest.fail(
            "the yeastar_sandbox fixture needs pytest-asyncio >= 1.0 (pip install pytest-asyncio)",
            pytrace=False,
        )
    if not pytest_asyncio.is_async_test(request.node):
        pytest.fail(
            f"{request.node.name}: the yeastar_sandbox fixture serves on the test's "
            "event loop; use it from an async test that pytest-asyncio runs (in strict "
            "mode, mark it @pytest.mark.asyncio)",
            pytrace=False,
        )
    marker = request.node.get_closest_marker("asyncio")
    loop_scope = (
        (
            marker.kwargs.get("loop_scope") or marker.kwargs.get("scope")
            if marker is not None
            else None
        )
        or request.config.getini("asyncio_default_test_loop_scope")
        or "function"
    )
    return cast("Sandbox", request.getfixturevalue(f"_yeastar_sandbox_on_{loop_scope}_loop"))


def _marked_config(request: pytest.FixtureRequest, base: SandboxConfig) -> SandboxConfig:
    """``base`` with the options of every ``yeastar_sandbox`` marker, the closest last."""
    import attrs

    from yeastar_csss_async.sandbox import SandboxConfig

    options: dict[str, Any] = {}
    for marker in reversed(list(request.node.iter_markers(MARKER))):
        if marker.args:
            pytest.fail(
                f"@pytest.mark.{MARKER} takes SandboxConfig fields as keywords "
                f"(orders=50), not {marker.args!r:.80}",
                pytrace=False,
            )
        options.update(marker.kwargs)
    known = [field.name for field in attrs.fields(SandboxConfig)]
    unknown = [name for name in options if name not in known]
    if unknown:
        close = difflib.get_close_matches(unknown[0], known, n=1)
        guess = f"; did you mean {close[0]!r}?" if close else ""
        pytest.fail(
            f"@pytest.mark.{MARKER}: SandboxConfig has no field {unknown[0]!r:.80}"
            f"{guess} (fields: {', '.join(known)})",
            pytrace=False,
        )
    return attrs.evolve(base, **options)


def _sandbox_on_loop(loop_scope: LoopScope) -> Callable[..., AsyncIterator[Sandbox]]:
    """The fixture that runs the sandbox on the event loop of ``loop_scope`` (pytest-asyncio
    fixes a fixture's loop when it is declared, so there is one per scope)."""

    @pytest_asyncio.fixture(loop_scope=loop_scope, name=f"_yeastar_sandbox_on_{loop_scope}_loop")
    async def sandbox_on_loop(
        request: pytest.FixtureRequest, yeastar_sandbox_config: SandboxConfig
    ) -> AsyncIterator[Sandbox]:
        from yeastar_csss_async.sandbox import Sandbox

        async with Sandbox(_marked_config(request, yeastar_sandbox_config)) as sandbox:
            yield sandbox

    return cast("Callable[..., AsyncIterator[Sandbox]]", sandbox_on_loop)


if _HAS_PYTEST_ASYNCIO:
    _sandbox_on_function_loop = _sandbox_on_loop("function")
    _sandbox_on_class_loop = _sandbox_on_loop("class")
    _sandbox_on_module_loop = _sandbox_on_loop("module")
    _sandbox_on_package_loop = _sandbox_on_loop("package")
    _sandbox_on_session_loop = _sandbox_on_loop("session")
