"""The list registry: every layer reads its lists from it, and what it decides about a query
(what it may mark gone, which options apply)."""

from __future__ import annotations

import argparse
import linecache
import traceback

import pytest

from yeastar_csss_async import CSSSClient, Order, YeastarPartnerClient
from yeastar_csss_async._apis import APIS, CSSS, YEASTAR
from yeastar_csss_async._codegen import compile_function
from yeastar_csss_async._fast_structure import structure_fn
from yeastar_csss_async._lists import LISTS, ORDERS, PACKAGE_ORDERS, PRODUCTS, ListQuery, list_spec
from yeastar_csss_async.cli import build_parser


def _choices(parser: argparse.ArgumentParser, *path: str) -> list[str]:
    for name in path:
        subparsers = next(
            action for action in parser._actions if isinstance(action, argparse._SubParsersAction)
        )
        parser = subparsers.choices[name]
    kind = next(action for action in parser._actions if action.dest == "kind")
    assert kind.choices is not None
    return list(kind.choices)


def test_every_layer_names_the_registrys_lists_in_its_order() -> None:
    names = list(LISTS)
    assert names == ["orders", "products", "package-orders"]
    parser = build_parser()
    assert _choices(parser, "export") == [*names, "all"]
    assert _choices(parser, "sync") == [*names, "all"]
    assert _choices(parser, "enqueue", "sync") == names
    pytest.importorskip("sqlalchemy")
    from yeastar_csss_async.sync import TABLES

    assert list(TABLES) == names
    assert [table.table.name for table in TABLES.values()] == [s.table for s in LISTS.values()]
    assert TABLES["products"].key_columns == ("account", "product_id", "product_no")


def test_the_clients_defaults_come_from_the_registry() -> None:
    import inspect

    for client, api in ((YeastarPartnerClient, YEASTAR), (CSSSClient, CSSS)):
        default = inspect.signature(client).parameters["base_url"].default
        assert default == api.default_base_url
    orders = inspect.signature(YeastarPartnerClient.iter_orders).parameters["page_size"]
    assert orders.default == ORDERS.default_page_size == 100
    package = inspect.signature(CSSSClient.iter_package_orders).parameters["page_size"]
    assert package.default == PACKAGE_ORDERS.default_page_size == 50
    assert set(APIS) == {spec.api.name for spec in LISTS.values()}


def test_from_env_reads_the_variables_the_registry_names() -> None:
    environ = dict(zip(YEASTAR.env_names, ("id", "secret", "http://127.0.0.1:9"), strict=True))
    client = YeastarPartnerClient.from_env(environ=environ)
    assert (client.client_id, client.base_url) == ("id", "http://127.0.0.1:9")


def test_a_records_key_is_the_attribute_the_registry_names() -> None:
    order = structure_fn(Order)({"id": "42", "orderNo": "A1"})
    assert ORDERS.record_key(order) == "42"
    assert (PRODUCTS.key, PACKAGE_ORDERS.key) == ("product_no", "order_code")


def test_unknown_lists_and_options_a_list_does_not_take_are_refused() -> None:
    with pytest.raises(ValueError, match=r"unknown list 'invoices' \(expected one of: orders,"):
        list_spec("invoices")
    with pytest.raises(ValueError, match="product ids apply to products only"):
        ORDERS.check(ListQuery(product_ids=[13]))
    with pytest.raises(ValueError, match="orders takes no filter device_id"):
        ORDERS.check(ListQuery(filters={"device_id": "1"}))
    PRODUCTS.check(ListQuery(product_ids=[13]))
    PACKAGE_ORDERS.check(ListQuery(filters={"device_id": "1"}))


def test_what_a_query_covers_decides_what_a_run_may_mark_gone() -> None:
    assert ORDERS.coverage(ListQuery()) == (None, True)
    assert PRODUCTS.coverage(ListQuery(product_ids=(13, 14))) == ({"product_id": [13, 14]}, True)
    assert PRODUCTS.coverage(ListQuery(product_ids=[])) == ({"product_id": []}, True)
    assert PACKAGE_ORDERS.coverage(ListQuery(filters={"order_status": "1"})) == (None, False)
    # an empty filter is not sent: the run reads the whole list
    assert PACKAGE_ORDERS.coverage(ListQuery(filters={"order_status": ""})) == (None, True)


def test_page_size_defaults_to_the_lists_own() -> None:
    assert PACKAGE_ORDERS.page_size(ListQuery()) == 50
    assert PACKAGE_ORDERS.page_size(ListQuery(page_size=7)) == 7


def test_generated_functions_show_their_source_in_tracebacks() -> None:
    source = "def broken(value):\n    return value['missing']\n"
    function = compile_function(source, "broken", "broken of tests", {})
    again = compile_function(source, "broken", "broken of tests", {})
    filename = function.__code__.co_filename
    assert filename != again.__code__.co_filename  # a second function keeps its own lines
    assert linecache.getline(filename, 2) == "    return value['missing']\n"
    with pytest.raises(KeyError) as caught:
        function({})
    assert "return value['missing']" in "".join(traceback.format_tb(caught.value.__traceback__))
    # the library's own generated structuring functions are registered too
    structure = structure_fn(Order)
    code = structure.__code__
    assert linecache.getline(code.co_filename, code.co_firstlineno).startswith("def structure_")
