"""The text writers (``cli/_writers``): ``--format csv --excel``'s spreadsheet layout, plain CSV
left as it was, and a lone surrogate written as its escape by JSON Lines and CSV."""

from __future__ import annotations

import csv
import io
import json
import subprocess
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import attrs
import pytest

from yeastar_csss_async.exports._encoders import (
    CsvEncoder,
    ExcelCsvEncoder,
    JsonLinesEncoder,
    TextEncoder,
)
from yeastar_csss_async.models import EndUserInfo, Order, PackageOrder, Product, ServiceInfo

from tests._support.command import CLEAN_ENV, COMMAND, default_data

BOM = b"\xef\xbb\xbf"


class Buffer:
    """An output that keeps what is written."""

    def __init__(self) -> None:
        self.data = b""

    def write(self, data: bytes) -> None:
        self.data += data


def encode(encoder: TextEncoder, records: Sequence[object]) -> bytes:
    buffer = Buffer()
    encoder.begin(buffer)  # type: ignore[arg-type]
    encoder.encode(records, buffer)  # type: ignore[arg-type]
    encoder.end(buffer)  # type: ignore[arg-type]
    return buffer.data


def table(data: bytes) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(data.decode("utf-8-sig"), newline="")))


PRODUCT = Product(
    product_no="1358B1982334500000",
    plan_id="3048572026291630083",
    create_time=datetime(2024, 1, 2, 3, 4, 5, 600000, tzinfo=timezone(timedelta(hours=8))),
    end_user_info=EndUserInfo(company_name="Société Générale", contact_name="王小明"),
    service_list=[ServiceInfo(service_id="1", service_name="WhatsApp")],
)


def test_excel_csv_starts_with_a_byte_order_mark_and_plain_csv_does_not() -> None:
    assert encode(ExcelCsvEncoder(Order), []).startswith(BOM + b"id,order_no,")
    assert encode(CsvEncoder(Order), []).startswith(b"id,order_no,")
    text = encode(ExcelCsvEncoder(Product), [PRODUCT])
    assert text.count(BOM) == 1
    assert "Société Générale".encode() in text


def test_excel_csv_flattens_end_user_info_and_keeps_services_as_json() -> None:
    (row,) = table(encode(ExcelCsvEncoder(Product), [PRODUCT]))
    assert "end_user_info" not in row
    assert row["end_user_company_name"] == "Société Générale"
    assert row["end_user_contact_name"] == "王小明"
    assert row["end_user_email"] == ""
    assert json.loads(row["service_list"]) == [
        {
            "service_id": "1",
            "service_name": "WhatsApp",
            "service_status": None,
            "quantity": None,
            "service_auto_renewal": None,
            "service_expire_date": None,
            "service_period": None,
        }
    ]
    assert row["plan_id"] == "3048572026291630083"


def test_excel_csv_times_are_utc_without_zone_and_the_header_names_it() -> None:
    (row,) = table(encode(ExcelCsvEncoder(Product), [PRODUCT]))
    assert "create_time" not in row
    assert row["create_time (UTC)"] == "2024-01-01 19:04:05"  # 03:04:05.6 at UTC+8
    (package,) = table(
        encode(
            ExcelCsvEncoder(PackageOrder),
            [PackageOrder(order_code="L1", order_date=datetime(2019, 3, 2, 17, 27, 19))],
        )
    )
    assert package["order_date"] == "2019-03-02 17:27:19"  # the CSSS names no zone


@pytest.mark.parametrize(
    ("text", "cell"),
    [
        ("=1+1", "'=1+1"),
        ('=HYPERLINK("http://x","y")', '\'=HYPERLINK("http://x","y")'),
        ("+1+cmd", "'+1+cmd"),
        ("-2+3", "'-2+3"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\tx", "'\tx"),
        ("\r=1", "'\r=1"),
        ("-12.5", "-12.5"),
        ("+8613800000000", "+8613800000000"),
        ("1e5", "1e5"),
        ("Société", "Société"),
        ("a=b", "a=b"),
        ("", ""),
    ],
)
def test_excel_csv_prefixes_text_a_spreadsheet_would_run_as_a_formula(text: str, cell: str) -> None:
    orders = [Order(id=text or "1", product_name=text, order_no=text)]
    (row,) = table(encode(ExcelCsvEncoder(Order), orders))
    assert row["product_name"] == cell
    assert row["order_no"] == cell
    (plain,) = table(encode(CsvEncoder(Order), orders))  # plain CSV: the text as sent
    assert plain["product_name"] == text


def test_plain_csv_keeps_iso_times_and_nested_json() -> None:
    data = encode(CsvEncoder(Product), [PRODUCT])
    (row,) = table(data)
    assert list(row) == [field.name for field in attrs.fields(Product)]
    assert row["create_time"] == "2024-01-02T03:04:05.600000+08:00"  # ISO 8601, as held
    assert json.loads(row["end_user_info"]) == {
        "address": None,
        "company_name": "Société Générale",
        "contact_name": "王小明",
        "email": None,
    }
    assert json.loads(row["service_list"])[0]["service_id"] == "1"


@pytest.mark.parametrize("encoder", [CsvEncoder, ExcelCsvEncoder])
def test_a_line_break_in_a_field_never_ends_the_row(encoder: type[CsvEncoder]) -> None:
    names = ["a\rb", "c\nd", "e\r\nf", "\r", "plain"]
    orders = [Order(id=str(n), product_name=name) for n, name in enumerate(names)]
    data = encode(encoder(Order), orders)
    assert [row["product_name"] for row in table(data)] == [
        "a\rb",
        "c\nd",
        "e\r\nf",
        "\r" if encoder is CsvEncoder else "'\r",
        "plain",
    ]
    header, _ = data.split(b"\n", 1)  # plain CSV keeps its \n rows; Excel's are \r\n
    assert header.endswith(b"product_no") if encoder is CsvEncoder else header.endswith(b"\r")


def test_excel_csv_money_keeps_its_digits() -> None:
    orders = [
        Order(id="1", total_amount=Decimal("434.00")),
        Order(id="2", total_amount=Decimal("12345678901234.5678")),
    ]
    rows = table(encode(ExcelCsvEncoder(Order), orders))
    assert [row["total_amount"] for row in rows] == ["434.00", "12345678901234.5678"]


def test_export_products_csv_excel_from_the_sandbox(tmp_path: Path) -> None:
    target = tmp_path / "products.csv"
    result = subprocess.run(
        [
            *COMMAND,
            "export",
            "products",
            "--sandbox",
            "--product-id",
            "13",
            "--format",
            "csv",
            "--excel",
            "-o",
            str(target),
            "-q",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env=CLEAN_ENV,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    data = target.read_bytes()
    assert data.startswith(BOM)
    rows = table(data)
    expected = default_data().products[13]
    assert [row["product_no"] for row in rows] == [p["productNo"] for p in expected]
    first, sent = rows[0], expected[0]
    moment = datetime.fromtimestamp(sent["planExpireDate"] / 1000, UTC)
    assert first["plan_expire_date (UTC)"] == moment.strftime("%Y-%m-%d %H:%M:%S")
    with_user = next(i for i, p in enumerate(expected) if p["endUserInfo"])
    assert (
        rows[with_user]["end_user_company_name"]
        == expected[with_user]["endUserInfo"]["companyName"]
    )


def test_excel_needs_format_csv() -> None:
    result = subprocess.run(
        [*COMMAND, "export", "orders", "--sandbox", "--excel"],
        capture_output=True,
        text=True,
        timeout=120,
        env=CLEAN_ENV,
        check=False,
    )
    assert result.returncode == 2
    assert result.stderr == "yeastar-csss: --excel applies to --format csv only\n"


def test_an_unpaired_surrogate_is_written_as_its_json_escape_not_an_error() -> None:
    """A server may send ``"\\ud800"`` (the library decodes it, as JSON allows); UTF-8 cannot
    hold it, so JSON Lines writes the escape JSON had, and reading the line back gives the
    same text; CSV writes the escape as text."""
    from yeastar_csss_async import Order

    class Collect:
        def __init__(self) -> None:
            self.data = b""

        def write(self, data: bytes) -> None:
            self.data += data

    record = Order(id="1", order_no="a\ud800b\u00e9")
    lines = Collect()
    JsonLinesEncoder(Order).encode([record], lines)  # type: ignore[arg-type]
    assert json.loads(lines.data)["order_no"] == "a\ud800b\u00e9"
    table = Collect()
    CsvEncoder(Order).encode([record], table)  # type: ignore[arg-type]
    assert table.data.decode("utf-8").split(",")[1] == "a\\ud800b\u00e9"
