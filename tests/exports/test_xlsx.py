"""``--format xlsx``: workbooks written by the encoder (and by the command) and read back.

Cells are checked twice where it matters: as openpyxl reads them, and in the sheet's XML
(what a spreadsheet parses: ``t="n"`` with ``<v>`` text, inline strings, never ``<f>``).
"""

from __future__ import annotations

import gc
import io
import os
import subprocess
import sys
import tempfile
import threading
import tracemalloc
import zipfile
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import pytest

openpyxl = pytest.importorskip("openpyxl")

from openpyxl.worksheet.worksheet import Worksheet  # noqa: E402

from yeastar_csss_async.exports import open_output  # noqa: E402
from yeastar_csss_async.exports._xlsx import XlsxEncoder  # noqa: E402
from yeastar_csss_async.models import (  # noqa: E402
    EndUserInfo,
    Order,
    PackageOrder,
    Product,
    ServiceInfo,
)

from tests._support.command import CLEAN_ENV, COMMAND, default_data  # noqa: E402

MAIN = "{http://schemas.openxmlformats.org/spreadsheetml/2006/main}"


def write_xlsx(
    path: Path,
    model: type[Any],
    batches: Iterable[Sequence[object]],
    *,
    sheet: str = "records",
    max_rows: int | None = None,
) -> Path:
    """Drive the encoder as the writer thread does: begin, encode per batch, end, close."""
    encoder = XlsxEncoder(model, sheet)
    if max_rows is not None:
        encoder.max_rows = max_rows
    output = open_output(str(path))
    output.open()
    try:
        encoder.begin(output)
        for batch in batches:
            encoder.encode(batch, output)
        encoder.end(output)
        output.commit()
    finally:
        encoder.close()
        output.close()
        output.discard()
    return path


def rows(sheet: Worksheet) -> list[tuple[object, ...]]:
    return list(sheet.iter_rows(values_only=True))


def column(sheet: Worksheet, header: str) -> list[Any]:
    """The cells of the column under ``header`` (header row left out)."""
    headers = [cell.value for cell in sheet[1]]
    index = headers.index(header)
    return [row[index] for row in sheet.iter_rows(min_row=2)]


def sheet_xml(path: Path, number: int = 1) -> dict[str, ElementTree.Element]:
    """The ``<c>`` elements of sheet ``number`` in the file, by cell reference."""
    with zipfile.ZipFile(path) as archive:
        root = ElementTree.fromstring(archive.read(f"xl/worksheets/sheet{number}.xml"))
    return {cell.attrib["r"]: cell for cell in root.iter(f"{MAIN}c")}


def load(path: Path) -> Any:
    return openpyxl.load_workbook(path)


# --- cells ---------------------------------------------------------------------------------


def test_times_are_date_cells_in_utc_and_the_header_says_utc(tmp_path: Path) -> None:
    beijing = timezone(timedelta(hours=8))
    orders = [
        Order(id="1", create_time=datetime(2024, 1, 2, 3, 4, 5, 678000, tzinfo=beijing)),
        Order(id="2", create_time=datetime(2024, 6, 30, 23, 59, 59, tzinfo=UTC)),
        Order(id="3"),
    ]
    sheet = load(write_xlsx(tmp_path / "o.xlsx", Order, [orders]))["records"]
    assert "create_time (UTC)" in [cell.value for cell in sheet[1]]
    assert "create_time" not in [cell.value for cell in sheet[1]]
    cells = column(sheet, "create_time (UTC)")
    assert [cell.is_date for cell in cells[:2]] == [True, True]
    assert cells[0].value == datetime(2024, 1, 1, 19, 4, 5, 678000)  # 03:04 in Beijing
    assert cells[1].value == datetime(2024, 6, 30, 23, 59, 59)
    assert cells[2].value is None


def test_csss_dates_are_date_cells_as_sent_under_their_bare_name(tmp_path: Path) -> None:
    record = PackageOrder(order_code="L1", order_date=datetime(2019, 3, 2, 17, 27, 19))
    sheet = load(write_xlsx(tmp_path / "p.xlsx", PackageOrder, [[record]]))["records"]
    (cell,) = column(sheet, "order_date")
    assert cell.is_date
    assert cell.value == datetime(2019, 3, 2, 17, 27, 19)


def test_money_is_a_number_cell_holding_exactly_its_digits(tmp_path: Path) -> None:
    amounts = [
        Decimal("449.27"),
        Decimal("434.00"),
        Decimal("0.10"),
        Decimal("123456789012.345"),
        Decimal("7"),
    ]
    orders = [Order(id=str(n), total_amount=amount) for n, amount in enumerate(amounts)]
    path = write_xlsx(tmp_path / "o.xlsx", Order, [orders])
    cells = column(load(path)["records"], "total_amount")
    assert [cell.data_type for cell in cells] == ["n"] * len(amounts)
    assert [cell.number_format for cell in cells[:4]] == ["0.00", "0.00", "0.00", "0.000"]
    xml = sheet_xml(path)
    letter = cells[0].column_letter
    written = [xml[f"{letter}{row}"] for row in range(2, 2 + len(amounts))]
    assert [cell.attrib.get("t") for cell in written] == ["n"] * len(amounts)
    # The digits in the file are the digits sent, not a float's ("%.16g" made
    # 123456789012.345 into 123456789012.3450 or dropped the trailing zeros' meaning).
    assert [cell.findtext(f"{MAIN}v") for cell in written] == [str(a) for a in amounts]


def test_money_past_15_digits_is_text_with_every_digit_and_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    amounts = [Decimal("12345678901234.5678"), Decimal("1E+400")]
    orders = [Order(id=str(n), total_amount=amount) for n, amount in enumerate(amounts)]
    cells = column(
        load(write_xlsx(tmp_path / "o.xlsx", Order, [orders]))["records"], "total_amount"
    )
    assert [(cell.data_type, cell.value) for cell in cells] == [
        ("s", "12345678901234.5678"),
        ("s", "1E+400"),
    ]
    assert "more digits than a spreadsheet number keeps" in caplog.text


def test_long_digit_ids_are_text_cells_with_every_digit(tmp_path: Path) -> None:
    order = Order(id="1000001", order_no="123456789012345678901", product_no="3672396322623")
    product = Product(
        product_no="1358198233450000",
        plan_id="3048572026291630083",
        service_list=[ServiceInfo(service_id="3048573759449317376")],
    )
    package = PackageOrder(order_code="201903020000000000", device_id="89860012018111228209")
    orders = load(write_xlsx(tmp_path / "o.xlsx", Order, [[order]]))["records"]
    products = load(write_xlsx(tmp_path / "p.xlsx", Product, [[product]]))
    packages = load(write_xlsx(tmp_path / "k.xlsx", PackageOrder, [[package]]))["records"]
    found = [
        column(orders, "order_no")[0],
        column(orders, "id")[0],
        column(products["records"], "plan_id")[0],
        column(products["records"], "product_no")[0],
        column(products["services"], "service_id")[0],
        column(packages, "device_id")[0],
        column(packages, "order_code")[0],
    ]
    assert [(cell.data_type, cell.value) for cell in found] == [
        ("s", "123456789012345678901"),
        ("s", "1000001"),
        ("s", "3048572026291630083"),
        ("s", "1358198233450000"),
        ("s", "3048573759449317376"),
        ("s", "89860012018111228209"),
        ("s", "201903020000000000"),
    ]


def test_whole_numbers_are_numbers_and_past_15_digits_text(tmp_path: Path) -> None:
    products = [
        Product(product_no="a", plan_auto_renewal=1, plan_service_period=12),
        Product(product_no="b", plan_service_period=10**18 + 1),
    ]
    sheet = load(write_xlsx(tmp_path / "p.xlsx", Product, [products]))["records"]
    cells = column(sheet, "plan_service_period")
    assert [(cell.data_type, cell.value) for cell in cells] == [("n", 12), ("s", str(10**18 + 1))]
    assert column(sheet, "plan_auto_renewal")[0].value == 1


def test_end_user_info_is_flattened_into_end_user_columns(tmp_path: Path) -> None:
    products = [
        Product(
            product_no="a",
            end_user_info=EndUserInfo(
                address="Hauptstraße 5",
                company_name="Société Générale",
                contact_name="王小明",
                email="u@example.com",
            ),
        ),
        Product(product_no="b", end_user_info=None),
    ]
    sheet = load(write_xlsx(tmp_path / "p.xlsx", Product, [products]))["records"]
    headers = [cell.value for cell in sheet[1]]
    assert "end_user_info" not in headers
    flat = ["end_user_address", "end_user_company_name", "end_user_contact_name", "end_user_email"]
    assert [header for header in headers if header.startswith("end_user")] == flat
    assert [column(sheet, name)[0].value for name in flat] == [
        "Hauptstraße 5",
        "Société Générale",
        "王小明",
        "u@example.com",
    ]
    assert [column(sheet, name)[1].value for name in flat] == [None] * 4


def services(product_no: str, *names: str) -> Product:
    return Product(
        product_no=product_no,
        service_list=[
            ServiceInfo(service_id=f"{product_no}-{n}", service_name=name, service_period=n)
            for n, name in enumerate(names)
        ],
    )


def test_services_go_to_their_own_sheet_one_row_each_keyed_by_product_no(tmp_path: Path) -> None:
    products = [
        services("P1", "Recording", "WhatsApp"),
        services("P2"),
        services("P3", "Call Center"),
    ]
    workbook = load(
        write_xlsx(tmp_path / "p.xlsx", Product, [products[:2], products[2:]], sheet="products")
    )
    assert workbook.sheetnames == ["products", "services"]
    assert [row[0] for row in rows(workbook["products"])] == ["product_no", "P1", "P2", "P3"]
    assert "service_list" not in rows(workbook["products"])[0]
    assert rows(workbook["services"]) == [
        (
            "product_no",
            "service_id",
            "service_name",
            "service_status",
            "quantity",
            "service_auto_renewal",
            "service_expire_date (UTC)",
            "service_period",
        ),
        ("P1", "P1-0", "Recording", None, None, None, None, 0),
        ("P1", "P1-1", "WhatsApp", None, None, None, None, 1),
        ("P3", "P3-0", "Call Center", None, None, None, None, 0),
    ]


FORMULAS = [
    "=1+1",
    '=HYPERLINK("http://evil.example","click")',
    "=cmd|' /C calc'!A0",
    "#N/A",
    "#DIV/0!",
    "@SUM(A1)",
    "+1+1",
    "-1+1",
]


def test_formula_looking_text_stays_text_in_every_sheet(tmp_path: Path) -> None:
    products = [
        Product(
            product_no=text,
            comment=text,
            service_list=[
                ServiceInfo(service_id="1", service_name=text),
                ServiceInfo(service_id="2"),
            ],
        )
        for text in FORMULAS
    ]
    path = write_xlsx(tmp_path / "p.xlsx", Product, [products])
    workbook = load(path)
    comments = column(workbook["records"], "comment")
    assert [(cell.data_type, cell.value) for cell in comments] == [("s", t) for t in FORMULAS]
    # the key repeated on every service row, and the service's own text
    keyed = [(row[0], row[1], row[2]) for row in rows(workbook["services"])[1:]]
    assert keyed == [item for text in FORMULAS for item in ((text, "1", text), (text, "2", None))]
    for number in (1, 2):
        cells = sheet_xml(path, number).values()
        assert not [cell for cell in cells if cell.find(f"{MAIN}f") is not None]
        assert {cell.attrib.get("t") for cell in cells} <= {"inlineStr", "n"}


def test_text_xml_cannot_hold_is_replaced_and_overlong_text_is_cut(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    orders = [
        Order(id="1", product_name="bad\x00\x07char"),
        Order(id="2", product_name="x" * 40_000),
    ]
    names = column(
        load(write_xlsx(tmp_path / "o.xlsx", Order, [orders]))["records"], "product_name"
    )
    assert names[0].value == "bad\ufffd\ufffdchar"
    assert names[1].value == "x" * 32_767
    assert "product_name holds a value of 40000 characters" in caplog.text


# --- sheets --------------------------------------------------------------------------------


def test_an_empty_list_still_has_its_header_rows(tmp_path: Path) -> None:
    workbook = load(write_xlsx(tmp_path / "p.xlsx", Product, [], sheet="products"))
    assert workbook.sheetnames == ["products", "services"]
    assert rows(workbook["products"])[0][:3] == (
        "product_no",
        "activation_code",
        "activation_status",
    )
    assert len(rows(workbook["products"])) == 1
    assert rows(workbook["services"]) == [rows(workbook["services"])[0]]
    assert rows(workbook["services"])[0][0] == "product_no"


def test_a_full_sheet_goes_on_in_name_2_each_with_its_header(tmp_path: Path) -> None:
    orders = [Order(id=str(n)) for n in range(10)]
    workbook = load(
        write_xlsx(tmp_path / "o.xlsx", Order, [orders[:4], orders[4:]], sheet="orders", max_rows=4)
    )
    assert workbook.sheetnames == ["orders", "orders (2)", "orders (3)", "orders (4)"]
    ids = []
    for sheet in workbook:
        header, *body = rows(sheet)
        assert header[0] == "id"
        assert 1 <= len(body) <= 3
        ids += [row[0] for row in body]
    assert ids == [str(n) for n in range(10)]


def test_no_temporary_file_is_left_after_success_or_failure(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    temp = tmp_path / "temp"
    temp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temp))  # where openpyxl's sheet files go
    out = tmp_path / "out"
    out.mkdir()
    products = [services(f"P{n}", "Recording") for n in range(50)]
    write_xlsx(out / "p.xlsx", Product, [products])
    assert sorted(p.name for p in out.iterdir()) == ["p.xlsx"]
    assert list(temp.iterdir()) == []

    encoder = XlsxEncoder(Product, "products")  # an export that fails midway
    output = open_output(str(out / "q.xlsx"))
    output.open()
    encoder.begin(output)
    encoder.encode(products, output)
    assert len(list(temp.iterdir())) == 2  # one per sheet, while the export runs
    encoder.close()
    output.close()
    output.discard()
    gc.collect()  # openpyxl's row generators end here: they must not write anywhere
    assert list(temp.iterdir()) == []
    assert sorted(p.name for p in out.iterdir()) == ["p.xlsx"]


def order_batches(count: int, batch: int = 250) -> Iterator[list[Order]]:
    """``count`` orders made batch by batch, so that nothing but the encoder keeps them."""
    for start in range(0, count, batch):
        yield [
            Order(
                id=str(n),
                order_no=f"{n:021d}",
                total_amount=Decimal(n).scaleb(-2),
                create_time=datetime(2024, 1, 1, tzinfo=UTC) + timedelta(minutes=n),
                product_name="P-Series Turnkey Package",
            )
            for n in range(start, min(start + batch, count))
        ]


def peak_bytes(path: Path, count: int) -> int:
    gc.collect()
    tracemalloc.start()
    try:
        write_xlsx(path, Order, order_batches(count))
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.slow
def test_memory_stays_flat_whatever_the_record_count(tmp_path: Path) -> None:
    # Bound: an encoder that kept anything per record (the record, its row, one cell, one
    # string) would keep at least one Python object per extra record, and the smallest an
    # id or a row can be is 49 bytes (an empty str; an empty list is 56). Writing 4N
    # instead of N records would raise the peak by at least 3N * 49 bytes. The peak is
    # otherwise set by one batch in flight and openpyxl's buffers, the same for both runs,
    # so half that growth tells a flat encoder from one that grows.
    n = 2_000
    peak_n = peak_bytes(tmp_path / "n.xlsx", n)
    peak_4n = peak_bytes(tmp_path / "4n.xlsx", 4 * n)
    assert peak_4n - peak_n < 3 * n * 49 // 2, (peak_n, peak_4n)
    assert len(rows(load(tmp_path / "4n.xlsx")["records"])) == 4 * n + 1


# --- the command -----------------------------------------------------------------------------


def run(
    *args: str, env: dict[str, str] | None = None, **options: Any
) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [*COMMAND, *args],
        capture_output=True,
        timeout=120,
        env=env or CLEAN_ENV,
        check=False,
        **options,
    )


def test_export_products_xlsx_has_every_product_and_service_of_the_sandbox(tmp_path: Path) -> None:
    target = tmp_path / "products.xlsx"
    result = run(
        "export",
        "products",
        "--sandbox",
        "--format",
        "xlsx",
        "-o",
        str(target),
        "-q",
        env={**CLEAN_ENV, "TMPDIR": str(tmp_path)},
    )
    assert result.returncode == 0, result.stderr
    assert [p.name for p in tmp_path.iterdir()] == ["products.xlsx"]  # no temporary file
    data = default_data()
    expected = [p for line in sorted(data.products) for p in data.products[line]]
    workbook = load(target)
    assert workbook.sheetnames == ["products", "services"]
    assert [row[0] for row in rows(workbook["products"])[1:]] == [p["productNo"] for p in expected]
    assert [(row[0], row[1]) for row in rows(workbook["services"])[1:]] == [
        (p["productNo"], s["serviceId"]) for p in expected for s in p["serviceList"]
    ]
    plan_ids = column(workbook["products"], "plan_id")
    assert [cell.value for cell in plan_ids] == [p["planId"] for p in expected]


def test_xlsx_to_a_fifo_streams_a_valid_workbook(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    received = io.BytesIO()

    def reader() -> None:
        with open(fifo, "rb") as stream:
            received.write(stream.read())

    thread = threading.Thread(target=reader)
    thread.start()
    result = run(
        "export",
        "orders",
        "--sandbox",
        "--sandbox-size",
        "300",
        "--format",
        "xlsx",
        "-o",
        str(fifo),
        "-q",
    )
    thread.join(30)
    assert result.returncode == 0, result.stderr
    workbook = openpyxl.load_workbook(io.BytesIO(received.getvalue()))
    assert len(rows(workbook["orders"])) == 301
    assert fifo.is_fifo()


def test_xlsx_to_a_stdout_pipe_is_a_valid_workbook() -> None:
    result = run(
        "export",
        "orders",
        "--sandbox",
        "--sandbox-size",
        "300",
        "--format",
        "xlsx",
        "-o",
        "-",
        "-q",
    )
    assert result.returncode == 0, result.stderr
    workbook = openpyxl.load_workbook(io.BytesIO(result.stdout))
    newest_first = [str(1_000_000 + n) for n in reversed(range(300))]
    assert [row[0] for row in rows(workbook["orders"])[1:]] == newest_first


def test_xlsx_to_a_terminal_is_refused_in_one_line() -> None:
    import pty

    main, terminal = pty.openpty()
    try:
        result = subprocess.run(
            [*COMMAND, "export", "orders", "--sandbox", "--format", "xlsx"],
            stdout=terminal,
            stderr=subprocess.PIPE,
            timeout=120,
            env=CLEAN_ENV,
            check=False,
        )
    finally:
        os.close(main)
        os.close(terminal)
    assert result.returncode == 2
    assert result.stderr == b"yeastar-csss: --format xlsx writes a binary file: use --output FILE\n"


# openpyxl made unimportable, as when the [xlsx] extra is not installed.
WITHOUT_OPENPYXL = """
import sys
class Blocker:
    def find_spec(self, name, path=None, target=None):
        if name == "openpyxl" or name.startswith("openpyxl."):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None
sys.meta_path.insert(0, Blocker())
from yeastar_csss_async import cli
raise SystemExit(cli.main(sys.argv[1:]))
"""


@pytest.mark.parametrize("kind", ["orders", "all"])
def test_xlsx_without_openpyxl_is_a_usage_error_naming_the_extra(tmp_path: Path, kind: str) -> None:
    target = ["--output-dir", str(tmp_path)] if kind == "all" else ["-o", str(tmp_path / "x")]
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            WITHOUT_OPENPYXL,
            "export",
            kind,
            "--sandbox",
            "--format",
            "xlsx",
            *target,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env=CLEAN_ENV,
        check=False,
    )
    assert result.returncode == 2
    assert result.stderr == (
        "yeastar-csss: --format xlsx needs openpyxl: pip install 'yeastar-csss-async[xlsx]'\n"
    )
    assert list(tmp_path.iterdir()) == []
    plain = subprocess.run(  # the other formats do not need it
        [
            sys.executable,
            "-c",
            WITHOUT_OPENPYXL,
            "export",
            "orders",
            "--sandbox",
            "-q",
            "--sandbox-size",
            "5",
            "-o",
            "-",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env=CLEAN_ENV,
        check=False,
    )
    assert plain.returncode == 0, plain.stderr
    assert len(plain.stdout.splitlines()) == 5
