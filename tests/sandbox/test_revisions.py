"""Revisions of the sandbox's data: revision 0 is the data as generated, each later revision is
one deterministic step further (records added, removed and changed in every list), the API and
the CLI serve what the library says, and a million generated orders are never materialized."""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
import sys
import tracemalloc
from collections.abc import Iterator
from pathlib import Path
from typing import TypedDict, Unpack

import msgspec
import pytest

from yeastar_csss_async import CSSSClient, YeastarPartnerClient
from yeastar_csss_async.cli import build_parser
from yeastar_csss_async.sandbox import (
    PRODUCT_LINES,
    SANDBOX_ACCESS_CODE,
    SANDBOX_CLIENT_ID,
    SANDBOX_CLIENT_SECRET,
    SANDBOX_SECRET,
    ListChanges,
    RevisionStep,
    Sandbox,
    SandboxConfig,
    SandboxData,
    StepCounts,
    _data,
    step_counts,
)
from yeastar_csss_async.sandbox._data import make_order, make_package_order, make_product
from yeastar_csss_async.sandbox._lists import SandboxList

from tests._support.clients import FAST_RETRY


class Sizes(TypedDict, total=False):
    """The sizes of a SandboxData's lists."""

    orders: int
    products_per_line: int
    package_orders: int


SIZES: Sizes = {"orders": 150, "products_per_line": 40, "package_orders": 60}
REVISED = {
    "orders": {"orderStatus", "totalAmount"},
    "products": {"planStatus", "planExpireDate"},
    "package orders": {"orderStatus", "usedFlow"},
}
"""The JSON fields a revision step changes, by kind of list."""
COMMAND = [sys.executable, "-m", "yeastar_csss_async"]


def make(
    revision: int, *, seed: int = 5, generated: bool = False, **sizes: Unpack[Sizes]
) -> SandboxData:
    size = SIZES | sizes
    return SandboxData(
        seed=seed,
        revision=revision,
        generated=generated,
        orders=size["orders"],
        products_per_line=size["products_per_line"],
        package_orders=size["package_orders"],
    )


def lists_of(data: SandboxData) -> dict[str, SandboxList]:
    """Every list of the data, by a name that starts with its kind's REVISED key."""
    return {
        "orders": data.orders,
        "package orders": data.package_orders,
        **{f"products {line}": records for line, records in data.products.items()},
    }


def changes_of(step: RevisionStep, name: str) -> ListChanges:
    if name.startswith("products"):
        return step.products[int(name.split()[1])]
    return step.orders if name == "orders" else step.package_orders


def keys(records: SandboxList) -> list[str]:
    return [record[records.key_field] for record in records]


def as_json(data: SandboxData) -> Iterator[tuple[str, bytes]]:
    """Every list as the sandbox would send it, in pages of 25 (Decimal money as numbers)."""
    encoder = msgspec.json.Encoder(decimal_format="number")
    for name, records in lists_of(data).items():
        for start in range(0, len(records), 25):
            yield name, encoder.encode(records[start : start + 25])


# --- revision 0 and determinism ---------------------------------------------------------


@pytest.mark.parametrize("generated", [False, True])
def test_revision_0_is_the_data_as_generated_before_revisions_existed(generated: bool) -> None:
    assert SandboxConfig().revision == 0
    data = make(0, generated=generated)
    assert data.revision == 0
    orders = SIZES["orders"]
    assert list(data.orders) == [make_order(5, orders - 1 - i) for i in range(orders)]
    assert list(data.package_orders) == [
        make_package_order(5, i) for i in range(SIZES["package_orders"])
    ]
    for line in PRODUCT_LINES:
        assert list(data.products[line]) == [
            make_product(5, line, i) for i in range(SIZES["products_per_line"])
        ]


def test_the_same_seed_sizes_and_revision_give_byte_identical_lists() -> None:
    first, second = list(as_json(make(3))), list(as_json(make(3)))
    assert first == second
    assert list(as_json(make(3, generated=True))) == first  # generated or not alike
    assert list(as_json(make(2))) != first
    assert list(as_json(make(3, seed=6))) != first


async def test_two_sandboxes_with_one_config_serve_identical_pages() -> None:
    config = SandboxConfig(orders=120, products_per_line=30, package_orders=80, revision=3)
    served = []
    for _ in range(2):
        async with (
            Sandbox(config) as sandbox,
            YeastarPartnerClient(
                SANDBOX_CLIENT_ID,
                SANDBOX_CLIENT_SECRET,
                base_url=sandbox.base_url,
                retry=FAST_RETRY,
            ) as yeastar,
            CSSSClient(
                SANDBOX_ACCESS_CODE, SANDBOX_SECRET, base_url=sandbox.base_url, retry=FAST_RETRY
            ) as csss,
        ):
            pages = [await yeastar.get_orders_page(page_no=n, page_size=50) for n in (1, 3)]
            products = await yeastar.get_products_page(13, page_no=1, page_size=40)
            package = await csss.get_package_orders_page(page_no=2, page_size=50)
            served.append(
                (
                    [(page.total, page.items) for page in pages],
                    (products.total, products.items),
                    (package.total, package.items),
                )
            )
    assert served[0] == served[1]
    assert served[0][0][0][0] == len(make(3, orders=120).orders)


# --- one step ---------------------------------------------------------------------------


def test_step_counts_are_1_3_and_2_percent_and_at_least_one_each() -> None:
    assert step_counts(1_000_000) == StepCounts(removed=10_000, changed=30_000, added=20_000)
    assert step_counts(150) == StepCounts(removed=1, changed=4, added=3)
    assert step_counts(40) == StepCounts(removed=1, changed=1, added=1)
    assert step_counts(2) == StepCounts(removed=1, changed=1, added=1)
    assert step_counts(1) == StepCounts(removed=1, changed=0, added=1)  # none left to change
    assert step_counts(0) == StepCounts(removed=0, changed=0, added=1)


@pytest.mark.parametrize(
    ("revision", "sizes"),
    [
        (0, {}),
        (1, {}),
        (4, {}),
        (0, {"orders": 1, "products_per_line": 2, "package_orders": 7}),
        (2, {"orders": 1, "products_per_line": 2, "package_orders": 7}),
        (0, {"orders": 620, "products_per_line": 250, "package_orders": 333}),
    ],
)
def test_one_step_adds_removes_and_changes_the_documented_records(
    revision: int,
    sizes: Sizes,
) -> None:
    """Revision r+1 is revision r with exactly one step: the documented numbers of records
    added (keys never seen before), removed, and changed in the documented fields only; the
    rest served unchanged, in the same order."""
    history = [make(r, **sizes) for r in range(revision + 1)]  # revisions 0 to r
    advanced, after = make(revision, **sizes), make(revision + 1, **sizes)
    step = advanced.advance_revision()  # what the step reports, applied to revision r
    assert (step.revision, advanced.revision, after.revision) == (revision + 1,) * 3
    for name, new_list in lists_of(after).items():
        assert list(lists_of(advanced)[name]) == list(new_list)  # r advanced once is r+1
        old_list = lists_of(history[-1])[name]
        old = {record[old_list.key_field]: record for record in old_list}
        new = {record[new_list.key_field]: record for record in new_list}
        added, removed = new.keys() - old.keys(), old.keys() - new.keys()
        changed = {key for key in old.keys() & new.keys() if old[key] != new[key]}
        counts = step_counts(len(old_list))
        assert (len(removed), len(changed), len(added)) == (
            counts.removed,
            counts.changed,
            counts.added,
        ), name
        reported = changes_of(step, name)
        assert (set(reported.added), set(reported.removed), set(reported.changed)) == (
            added,
            removed,
            changed,
        )
        ever = {key for data in history for key in keys(lists_of(data)[name])}
        assert not added & ever  # fresh keys, never one a removed record had
        fields = REVISED[name.split(" ")[0] if name.startswith("products") else name]
        for key in changed:
            differing = {
                field
                for field in old[key].keys() | new[key].keys()
                if old[key].get(field) != new[key].get(field)
            }
            assert differing == fields, (name, key)
        new_keys = keys(new_list)
        kept = [key for key in new_keys if key not in added]
        assert kept == [key for key in keys(old_list) if key not in removed]
        where = new_keys[: len(added)] if name == "orders" else new_keys[len(kept) :]
        assert set(where) == added  # newest first for orders, at the end for the others


def test_changed_money_keeps_two_decimal_places_and_statuses_stay_known() -> None:
    before, after = make(0), make(1)
    step = make(0).advance_revision()
    for key in step.orders.changed:
        order = after.orders.get(key)
        assert order is not None
        assert order["totalAmount"] > before.orders.get(key)["totalAmount"]  # type: ignore[index]
        assert order["totalAmount"].as_tuple().exponent == -2
        assert order["orderStatus"] in _data.ORDER_STATUSES
    for key in step.package_orders.changed:
        package_order = after.package_orders.get(key)
        assert package_order is not None
        assert package_order["usedFlow"].isdigit()


# --- served through the API -------------------------------------------------------------


async def test_totals_the_api_reports_match_the_revised_lists() -> None:
    config = SandboxConfig(orders=200, products_per_line=90, package_orders=110, revision=2)
    expected = make(2, seed=1, orders=200, products_per_line=90, package_orders=110)
    async with (
        Sandbox(config) as sandbox,
        YeastarPartnerClient(
            SANDBOX_CLIENT_ID, SANDBOX_CLIENT_SECRET, base_url=sandbox.base_url, retry=FAST_RETRY
        ) as yeastar,
        CSSSClient(
            SANDBOX_ACCESS_CODE, SANDBOX_SECRET, base_url=sandbox.base_url, retry=FAST_RETRY
        ) as csss,
    ):
        orders = await yeastar.get_orders_page(page_no=1, page_size=10)
        assert orders.total == len(expected.orders) == 200 + 2 * (4 - 2)
        assert [order.id async for order in yeastar.iter_orders(page_size=30)] == keys(
            expected.orders
        )
        for line in PRODUCT_LINES:
            products = await yeastar.get_products_page(line, page_no=1, page_size=10)
            assert products.total == len(expected.products[line]) == 90 + 2 * (1 - 1)
        package = await csss.get_package_orders_page(page_no=1, page_size=10)
        assert package.total == len(expected.package_orders) == 110 + 2 * (2 - 1)
        assert [p.order_code async for p in csss.iter_package_orders(page_size=25)] == keys(
            expected.package_orders
        )


def test_revisions_must_be_whole_numbers_from_0() -> None:
    for bad in (-1, 1.0, True, "2"):
        with pytest.raises(ValueError, match="revision must be an int >= 0"):
            make(bad)  # type: ignore[arg-type]


# --- a million generated orders -----------------------------------------------------------


@pytest.mark.slow
async def test_a_million_generated_orders_at_revision_3_are_never_materialized(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Building revision 3 makes one record per record the steps touch (not a million), and
    reading page 1 and the last page holds far less than the list would take as records."""
    made = 0

    def counting_make_order(seed: int, index: int) -> dict[str, object]:
        nonlocal made
        made += 1
        return make_order(seed, index)

    size, touched = 1_000_000, 0
    for _ in range(3):
        counts = step_counts(size)
        touched += counts.removed + counts.changed + counts.added
        size += counts.added - counts.removed
    monkeypatch.setattr(_data, "make_order", counting_make_order)
    config = SandboxConfig(
        orders=1_000_000, products_per_line=2, package_orders=2, generated=True, revision=3
    )
    async with (
        Sandbox(config) as sandbox,
        YeastarPartnerClient(
            SANDBOX_CLIENT_ID, SANDBOX_CLIENT_SECRET, base_url=sandbox.base_url, retry=FAST_RETRY
        ) as yeastar,
    ):
        assert made <= touched  # one per touched record: nothing else was generated
        assert len(sandbox.orders) == size
        await yeastar.get_orders_page(page_no=1, page_size=1)  # the token, once

        tracemalloc.start()
        try:
            before = tracemalloc.get_traced_memory()[0]
            one_record = [make_order(1, index) for index in range(1000)]
            per_record = (tracemalloc.get_traced_memory()[0] - before) / len(one_record)
            del one_record
            tracemalloc.reset_peak()
            made, base = 0, tracemalloc.get_traced_memory()[0]
            last_no = math.ceil(size / 1000)
            first = await yeastar.get_orders_page(page_no=1, page_size=1000)
            last = await yeastar.get_orders_page(page_no=last_no, page_size=1000)
            peak = tracemalloc.get_traced_memory()[1] - base
        finally:
            tracemalloc.stop()
        # Materializing the list would take size * per_record (about 880 MB); reading the
        # two pages (1,301 records) may hold at most a hundredth of that: 10,000 records' worth.
        assert peak < size * per_record / 100
        assert made <= len(first.items) + len(last.items)  # the pages' records only
        assert first.total == last.total == size
        assert [order.id for order in first.items] == keys_of_slice(sandbox.orders, 0, 1000)
        assert int(first.items[0].id) == 2_000_000 + sum_added(3) - 1  # the newest order
        assert len(last.items) == size - (last_no - 1) * 1000 == 301
        assert [order.id for order in last.items] == keys_of_slice(
            sandbox.orders, (last_no - 1) * 1000, size
        )


def keys_of_slice(records: SandboxList, start: int, stop: int) -> list[str]:
    return [record[records.key_field] for record in records[start:stop]]


def sum_added(steps: int, size: int = 1_000_000) -> int:
    total = 0
    for _ in range(steps):
        counts = step_counts(size)
        total += counts.added
        size += counts.added - counts.removed
    return total


# --- the command line ---------------------------------------------------------------------


def test_export_sandbox_revision_writes_the_revised_orders(tmp_path: Path) -> None:
    target = tmp_path / "orders.jsonl"
    result = subprocess.run(
        [
            *COMMAND,
            "export",
            "orders",
            "--sandbox",
            "--sandbox-revision",
            "2",
            "--sandbox-size",
            "700",
            "--output",
            str(target),
            "-q",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    exported = [json.loads(line)["id"] for line in target.read_text().splitlines()]
    expected = make(2, seed=1, orders=700).orders
    assert len(exported) == len(expected) == 700 + (14 - 7) + (14 - 7)
    assert exported == keys(expected)  # the same records, computed in another process


def test_sandbox_command_serves_the_revision_it_is_given() -> None:
    process = subprocess.Popen(
        [*COMMAND, "sandbox", "--port", "0", "--orders", "300", "--revision", "1"],
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
            "YEASTAR_CLIENT_ID": SANDBOX_CLIENT_ID,
            "YEASTAR_CLIENT_SECRET": SANDBOX_CLIENT_SECRET,
            "YEASTAR_BASE_URL": url[1],
        }
        export = subprocess.run(
            [*COMMAND, "export", "orders", "-q", "-o", "-"],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
            env={**_clean_env(), **env},
        )
        assert export.returncode == 0, export.stderr
    finally:
        process.terminate()
        process.communicate(timeout=30)
    exported = [json.loads(line)["id"] for line in export.stdout.splitlines()]
    assert exported == keys(make(1, seed=1, orders=300).orders)
    assert len(exported) == 300 - 3 + 6


def _clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith(("YEASTAR_", "CSSS_"))}


@pytest.mark.parametrize(
    "command", [["export", "orders", "--sandbox", "--sandbox-revision"], ["sandbox", "--revision"]]
)
def test_revision_options_take_whole_numbers_from_0(command: list[str]) -> None:
    parser = build_parser()
    assert getattr(parser.parse_args([*command, "0"]), command[-1][2:].replace("-", "_")) == 0
    assert getattr(parser.parse_args([*command, "12"]), command[-1][2:].replace("-", "_")) == 12
    for bad in ("-1", "1.5", "x", ""):
        with pytest.raises(SystemExit) as exit_info:
            parser.parse_args([*command, bad])
        assert exit_info.value.code == 2
