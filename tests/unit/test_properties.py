"""Property tests (hypothesis): the real PageIterator never loses, repeats or invents a record
of a list that shifts while it is read, and surfaces a failed fetch; the sandbox's signer and
the client's agree and ignore key order and empty values; the converter either builds a model
or names the path that did not fit."""

from __future__ import annotations

import asyncio
import json
import math
from collections.abc import Callable
from typing import Any

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from yeastar_csss_async import (
    APIError,
    Order,
    PackageOrder,
    Page,
    PageIterator,
    Product,
    ResponseFormatError,
    TransportError,
    csss_sign_content,
    sign_csss_body,
)
from yeastar_csss_async._converters import _DETAILED, _FAST, structure_items
from yeastar_csss_async._csss_protocol import _fast_page as csss_fast_page
from yeastar_csss_async._csss_protocol import decode_csss_envelope, decode_package_order_page
from yeastar_csss_async._wire import decode_json
from yeastar_csss_async._yeastar_protocol import _decode_envelope, decode_page
from yeastar_csss_async._yeastar_protocol import _fast_page as yeastar_fast_page
from yeastar_csss_async.sandbox._app import _money_json as money_json
from yeastar_csss_async.sandbox._signing import sign_content as sandbox_sign_content
from yeastar_csss_async.sandbox._signing import signature as sandbox_signature

from tests._support.seeds import load_seed

# --- the page engine over a shifting list ---------------------------------------------------


class ShiftingServer:
    """A paged list, newest first, whose head moves while it is read.

    Records are ints: the initial ones 0..total-1, inserted ones -1, -2, ... Each fetch of the
    real ``PageIterator`` waits in ``pending`` until the test answers it; the answer is cut
    from the list as it is at that moment, like a server that answers when it answers.
    """

    def __init__(self, total: int, page_size: int, reported: str) -> None:
        self.records = list(range(total))
        self.page_size = page_size
        self.reported = reported  # totalPage: "exact", "one" (understated) or "none"
        self.ever = set(self.records)
        self.next_new = -1
        self.pending: list[tuple[int, asyncio.Future[Page[int]]]] = []
        self.calls = 0

    async def fetch(self, page_no: int) -> Page[int]:
        """What the iterator calls: wait until :meth:`answer` or :meth:`fail` settles it."""
        self.calls += 1
        future: asyncio.Future[Page[int]] = asyncio.get_running_loop().create_future()
        entry = (page_no, future)
        self.pending.append(entry)
        try:
            return await future
        finally:
            if entry in self.pending:  # cancelled by the iterator
                self.pending.remove(entry)

    def answer(self, index: int) -> None:
        page_no, future = self.pending.pop(index)
        start = (page_no - 1) * self.page_size
        count = len(self.records)
        reported = {"exact": math.ceil(count / self.page_size), "one": 1, "none": None}
        future.set_result(
            Page.build(
                self.records[start : start + self.page_size],
                page_no=page_no,
                page_size=self.page_size,
                total=count,
                reported_total_pages=reported[self.reported],
            )
        )

    def fail(self, index: int, error: Exception) -> None:
        self.pending.pop(index)[1].set_exception(error)

    def insert(self, n: int) -> None:
        for _ in range(n):
            self.records.insert(0, self.next_new)
            self.ever.add(self.next_new)
            self.next_new -= 1

    def remove(self, n: int) -> None:
        del self.records[:n]


async def _settle(server: ShiftingServer, consumer: asyncio.Task[None], yielded: list[int]) -> None:
    """Let every task run until nothing moves: no timers or I/O are involved, so once the
    visible state stays the same for many loop turns, every task waits on the test."""

    def state() -> tuple[object, ...]:
        return (server.calls, len(server.pending), len(yielded), consumer.done())

    still, last = 0, state()
    while still < 20:
        await asyncio.sleep(0)
        now = state()
        still, last = (still + 1, last) if now == last else (0, now)


def _transient_error(kind: str) -> Exception:
    """A failure that must end the iteration, wherever it happens (after retries ran out)."""
    if kind == "transport":
        return TransportError("connection reset by peer")
    return APIError("service unavailable", status=503, code="unavailable")


async def _read_shifting_list(
    server: ShiftingServer,
    data: st.DataObject,
    *,
    ordered: bool,
    max_ahead: int,
) -> tuple[list[int], BaseException | None, BaseException | None]:
    """Run one iteration; hypothesis picks which fetch answers next, when the head changes,
    and whether a fetch fails. Returns (yielded, the injected error, the error raised)."""
    iterator = PageIterator(
        server.fetch,
        lambda record: record,
        page_size=server.page_size,
        ordered=ordered,
        dedupe=True,
        max_ahead=max_ahead,
        label="t",
    )
    yielded: list[int] = []
    raised: list[BaseException] = []

    async def consume() -> None:
        try:
            async for record in iterator:
                yielded.append(record)
        except Exception as error:  # the property compares it with the injected one
            raised.append(error)

    consumer = asyncio.create_task(consume())
    injected: BaseException | None = None
    mutations = data.draw(st.integers(0, 3), label="mutations")
    # A page that fails the first time it answers (0: none): any page, or one of the pages
    # just past the end, which are read only to prove the end.
    pages = math.ceil(len(server.records) / server.page_size)
    fail_page = data.draw(
        st.just(0) | st.integers(1, pages + 2) | st.sampled_from([pages + 1, pages + 2]),
        label="failing page",
    )
    for _step in range(2000):
        await _settle(server, consumer, yielded)
        if consumer.done():
            break
        assert server.pending, "the consumer waits, but no fetch is in flight"
        if mutations and data.draw(st.booleans(), label="mutate now"):
            mutations -= 1
            amount = data.draw(st.integers(1, 2 * server.page_size), label="amount")
            if data.draw(st.booleans(), label="insert"):
                server.insert(amount)
            else:
                server.remove(amount)
        last = len(server.pending) - 1
        index = data.draw(st.integers(0, last), label="which answers") if last else 0
        if injected is None and server.pending[index][0] == fail_page:
            injected = _transient_error(
                data.draw(st.sampled_from(["transport", "503"]), label="error")
            )
            server.fail(index, injected)
        else:
            server.answer(index)
    else:
        raise AssertionError("the iteration did not end")
    await consumer
    await iterator.aclose()
    event(f"passes: {iterator.passes}; failed: {injected is not None}")
    assert server.pending == [], "a fetch outlived the iteration"
    return yielded, injected, raised[0] if raised else None


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    total=st.integers(0, 90),
    whole_pages=st.booleans(),
    page_size=st.integers(1, 12),
    reported=st.sampled_from(["exact", "one", "none"]),
    ordered=st.booleans(),
    max_ahead=st.integers(1, 6),
    data=st.data(),
)
def test_page_iterator_yields_every_record_present_throughout_exactly_once(
    total: int,
    whole_pages: bool,
    page_size: int,
    reported: str,
    ordered: bool,
    max_ahead: int,
    data: st.DataObject,
) -> None:
    """The real PageIterator over a list that changes at the head while it is read, with
    fetches answering in any order: unless a fetch fails (then the iteration raises exactly
    that error), every record present from start to end is yielded once, no record is
    yielded twice, and nothing that was never in the list is invented."""
    if whole_pages:  # the last page is full: the page after it is read to prove the end
        total -= total % page_size
    server = ShiftingServer(total, page_size, reported)
    initial = set(server.records)
    yielded, injected, raised = asyncio.run(
        _read_shifting_list(server, data, ordered=ordered, max_ahead=max_ahead)
    )
    if injected is not None:
        assert raised is injected
        return
    assert raised is None
    assert len(yielded) == len(set(yielded))
    assert initial & set(server.records) <= set(yielded)
    assert set(yielded) <= server.ever


# --- CSSS sign ------------------------------------------------------------------------------

scalars = st.one_of(st.text(), st.integers(-(10**9), 10**9), st.booleans(), st.none())


@settings(max_examples=200, deadline=None)
@given(params=st.dictionaries(st.text(min_size=1), scalars, max_size=8), data=st.data())
def test_sign_ignores_key_order_and_empty_values(
    params: dict[str, Any],
    data: st.DataObject,
) -> None:
    shuffled = dict(data.draw(st.permutations(list(params.items()))))
    assert sign_csss_body(params, "k") == sign_csss_body(shuffled, "k")
    with_empties = {**params, "zz-empty": "", "zz-none": None}
    assert sign_csss_body(params, "k") == sign_csss_body(with_empties, "k")


@settings(max_examples=200, deadline=None)
@given(value=st.text())
def test_sign_content_round_trips_any_text(value: str) -> None:
    content = csss_sign_content({"name": value, "access_code": "P1"})
    decoded = json.loads(content)
    assert decoded.get("name") == (value or None)  # "" is left out
    assert all(ord(ch) < 128 or ch in content for ch in value)  # raw UTF-8, not \\u escapes


json_leaves = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**20), 10**20),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(),
)
nested_json = st.recursive(
    json_leaves,
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=4), children, max_size=3)
    ),
    max_leaves=8,
)


@settings(max_examples=300, deadline=None)
@given(params=st.dictionaries(st.text(min_size=1, max_size=6), nested_json, max_size=6))
def test_the_sandbox_signer_and_the_client_signer_agree(params: dict[str, Any]) -> None:
    """Two implementations of one documented rule, written apart (the sandbox's is what
    catches client mistakes end to end): same text, same sign, for any JSON parameters,
    including non-ASCII, control characters, nested objects and big or fractional numbers."""
    assert sandbox_sign_content(params) == csss_sign_content(params)
    assert sandbox_signature(params, "k\u00e9y") == sign_csss_body(params, "k\u00e9y")


# --- converter ------------------------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3)
    ),
    max_leaves=6,
)

SEED_RECORDS: list[tuple[type[Any], dict[str, Any]]] = [
    (Order, load_seed("seed_000_order_list.json")["result"]["results"][0]),
    (Product, load_seed("seed_002_product_list.json")["result"]["results"][1]),
    (PackageOrder, load_seed("seed_001_query_order.json")["data"]["package_order"][0]),
]


@settings(max_examples=400, deadline=None)
@given(which=st.integers(0, len(SEED_RECORDS) - 1), data=st.data())
def test_any_value_in_any_field_gives_a_model_or_a_located_format_error(
    which: int,
    data: st.DataObject,
) -> None:
    cls, record = SEED_RECORDS[which]
    key = data.draw(st.sampled_from(sorted(record)), label="key")
    value = data.draw(json_values, label="value")
    broken = {**record, key: value}
    try:
        structure_items([broken], cls, path="results")
    except ResponseFormatError as error:
        assert error.path.startswith(f"results[0].{key}")  # noqa: PT017 - either outcome is fine


_plain_values = (
    json_values
    | st.integers(-(10**16), 10**16)
    | st.text(alphabet="0123456789.-+e ")
    | st.sampled_from(
        [
            "",
            "succeed",
            "USD",
            "activated",
            "20190302172719",
            "2019-03-02 17:27:19",
            "1700000000000",
            "130.00",
        ]
    )
)
value_for_a_field = _plain_values | st.decimals(allow_nan=True, places=None)


@settings(max_examples=600, deadline=None)
@given(which=st.integers(0, len(SEED_RECORDS) - 1), data=st.data())
def test_the_generated_fast_path_agrees_with_the_detailed_converter(
    which: int,
    data: st.DataObject,
) -> None:
    """The hot path is a generated function per model; errors are located by cattrs' detailed
    converter. Both must make the same model of any record, or both refuse it: a value the
    fast path wrongly refused would fail a page the API sent correctly."""
    cls, record = SEED_RECORDS[which]
    broken = dict(record)
    for key in data.draw(st.lists(st.sampled_from(sorted(record)), max_size=3), label="keys"):
        broken[key] = data.draw(value_for_a_field, label=key)
    if data.draw(st.booleans(), label="drop a key"):
        broken.pop(data.draw(st.sampled_from(sorted(record))), None)
    outcomes = []
    for converter in (_FAST, _DETAILED):
        try:
            outcomes.append(converter.structure(broken, cls))
        except Exception:
            outcomes.append("refused")
    fast, detailed = outcomes
    assert fast == detailed


def _general_or_refused(decode: Callable[[], object]) -> object:
    try:
        return decode()
    except ResponseFormatError:
        return "refused"
    except APIError as error:
        return ("api error", error.code)


# A page is JSON: no NaN or infinite numbers (msgspec cannot write them as numbers).
page_values = (
    _plain_values
    | st.decimals(allow_nan=False, allow_infinity=False, places=None)
    | st.lists(st.dictionaries(st.text(max_size=3), json_values, max_size=2), max_size=2)
)


@settings(max_examples=500, deadline=None)
@given(which=st.sampled_from(["orders", "products", "package orders"]), data=st.data())
def test_the_fast_page_decoder_agrees_with_the_general_path(
    which: str,
    data: st.DataObject,
) -> None:
    """A page is first decoded by msgspec straight into row structs; whenever that path gives
    a page, it must be the page the general path (dicts, then the detailed converter on error)
    gives; when the general path refuses, the fast one must step aside."""
    if which == "package orders":
        document = load_seed("seed_001_query_order.json")
        holder, items_key = document["data"], "package_order"
        meta = holder["page"]
    else:
        name = "seed_000_order_list.json" if which == "orders" else "seed_002_product_list.json"
        document = load_seed(name)
        holder = meta = document["result"]
        items_key = "results"
    records = holder[items_key]
    for _ in range(data.draw(st.integers(0, 3), label="changes")):
        where = data.draw(st.sampled_from(["record", "meta", "envelope"]), label="where")
        target = (
            data.draw(st.sampled_from(records), label="record")
            if where == "record" and records
            else meta
            if where == "meta"
            else document
        )
        key = data.draw(st.sampled_from(sorted(target)), label="key")
        target[key] = data.draw(page_values, label="value")
    body = money_json(document)  # Decimals as JSON numbers with their digits
    if which == "package orders":
        fast = csss_fast_page(200, body, 1, 50)
        general = _general_or_refused(
            lambda: decode_package_order_page(
                decode_csss_envelope(decode_json(body)), page_no=1, page_size=50
            )
        )
    else:
        item = Order if which == "orders" else Product
        fast = yeastar_fast_page(200, body, item, 1, 25, None)

        def general_path() -> object:
            result, request_id = _decode_envelope(200, body, None)
            return decode_page(result, item, page_no=1, page_size=25, request_id=request_id)

        general = _general_or_refused(general_path)
    if fast is not None:
        assert fast == general
