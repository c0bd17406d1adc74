"""The sandbox's dataset: deterministic, realistic records shaped like the seed examples."""

from __future__ import annotations

import functools
import random
import re
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from ._lists import GeneratedList, ListKind, ProductLines, Record, SandboxList
from ._revisions import ListChanges, Revise, RevisionStep, apply_step, step_random

__all__ = [
    "PRODUCT_LINES",
    "GeneratedList",
    "Record",
    "SandboxData",
    "make_order",
    "make_package_order",
    "make_product",
    "revise_order",
    "revise_package_order",
    "revise_product",
]

PRODUCT_LINES: dict[int, str] = {
    9: "Linkus Cloud Service",
    11: "P-Series Plan for Appliance Edition",
    12: "Software PBX (PSE Self-hosted)",
    13: "Cloud PBX (PCE Instance)",
    14: "P-Series Turnkey Package",
    15: "Remote Management",
}
ORDER_STATUSES = (
    "succeed",
    "failed",
    "pending",
    "invalid",
    "cancelled",
    "refunded",
    "confirmed",
    "unconfirmed",
)
ORDER_TYPES = ("online", "offline", "special_offer", "")
PLAN_STATUSES = ("trialing", "subscribing", "purchased", "expiring", "expired", "switching")
COMPANIES = (
    "PCE Customer Test Company",
    "Müller GmbH",
    "北京云通信有限公司",
    "Société Générale",
    "Acme Ltd",
    "São Paulo Telecom",
)
PACKAGE_NAMES = (
    "亚洲12国/地区产品二 30m/月",
    "Europe 1GB / month",
    "中国20M不限速月套餐",
    "Global 500MB / 7 days",
)
_EPOCH_MS = 1_680_000_000_000  # spring 2023, like the seed examples
_LETTERS = "ABCDEFGHJKLMNPQRSTUVWXYZ0123456789"


def _rng(seed: int, kind: str, index: int) -> random.Random:
    return random.Random(f"{seed}:{kind}:{index}")


def _code(rng: random.Random, n: int) -> str:
    return "".join(rng.choice(_LETTERS) for _ in range(n))


def make_order(seed: int, index: int) -> Record:
    """Order number ``index`` (0 = oldest); ids and times grow with the index."""
    rng = _rng(seed, "order", index)
    line = rng.choice(list(PRODUCT_LINES))
    return {
        "createTime": _EPOCH_MS + index * 60_000 + rng.randrange(60_000),
        "currencyCode": rng.choice(("USD", "USD", "USD", "RMB")),
        "customReferenceNo": rng.choice(("", "", str(rng.randrange(100000, 999999)))),
        "id": str(1_000_000 + index),
        "invoiceNo": rng.choice(("", f"MH{rng.randrange(10**18, 10**19)}")),
        "orderNo": f"{_code(rng, 2)}{rng.randrange(10**18, 10**19)}",
        "orderStatus": rng.choice(ORDER_STATUSES),
        "orderType": rng.choice(ORDER_TYPES),
        "productModel": rng.choice(("", "", "S20", "P550", "P560")),
        "productName": PRODUCT_LINES[line],
        "productNo": f"36{rng.randrange(10**9, 10**10)}{_code(rng, 4)}",
        "totalAmount": Decimal(rng.randrange(1000, 200000)).scaleb(-2),  # 2 places kept
    }


def make_product(seed: int, line: int, index: int) -> Record:
    """Product number ``index`` of product line ``line``; productNo is unique across lines."""
    rng = _rng(seed, f"product{line}", index)
    switching = rng.random() < 0.2
    expire = _EPOCH_MS + rng.randrange(10**10, 10**11)
    record: Record = {
        "activationCode": "-".join(_code(rng, 4) for _ in range(5)),
        "activationStatus": rng.choice(("unknown", "unactivated", "activated", "activated")),
        "comment": rng.choice(("", "", "VIP customer", "测试")),
        "createTime": rng.choice((None, _EPOCH_MS + rng.randrange(10**10))),
        "currentPlan": "Ultimate Plan" if switching else "",
        "currentPlanExpireDate": expire if switching else None,
        "customerEmail": rng.choice(("", f"customer{index}@example.com")),
        "endUserInfo": None
        if rng.random() < 0.3
        else {
            "address": rng.choice(("Customer Address.", "Hauptstraße 5, Berlin", "")),
            "companyName": rng.choice(COMPANIES),
            "contactName": rng.choice(("PCE Customer Test", "Zoë Brontë", "王小明")),
            "email": f"user{index}@example.com",
        },
        "model": rng.choice(("", "", "P550")),
        "nextPlan": "Enterprise Plan" if switching else "",
        "nextPlanExpireDate": expire + 31_536_000_000 if switching else None,
        "nextPlanStartDate": expire + 1000 if switching else None,
        "partnerEmail": "partner@example.com",
        "planAutoRenewal": rng.randrange(2),
        "planExpireDate": expire,
        "planId": str(3_048_572_026_291_630_080 + rng.randrange(5)),
        "planName": rng.choice(("Ultimate Plan", "Enterprise Plan", "Standard Plan")),
        "planStatus": "switching" if switching else rng.choice(PLAN_STATUSES[:5]),
        "productAdminEmail": f"admin{index}@example.com",
        "productNo": f"{line:02d}58B{rng.randrange(10**7, 10**8)}{index:05d}",
        "quantity": str(rng.choice((5, 10, 20, 50))),
        "referrer": "",
        "serviceList": [
            {
                "quantity": str(rng.choice((10, 100))),
                "serviceAutoRenewal": rng.randrange(2),
                "serviceExpireDate": _EPOCH_MS + rng.randrange(10**10),
                "serviceId": str(3_048_573_759_449_317_376 + n),
                "serviceName": rng.choice(("Recording Minutes", "Call Center", "WhatsApp")),
                "serviceStatus": rng.choice(("subscribing", "trialing", "switching")),
            }
            for n in range(rng.randrange(4))
        ],
        "url": f"pbx{index}.example.yeastarcloud.com",
        "yeastarId": f"owner{index}@example.com",
    }
    if line == 12:
        record["planServicePeriod"] = rng.choice((1, 12))
    if rng.random() < 0.1:
        del record["activationCode"]  # like the second seed item
    return record


def _csss_date(moment: datetime) -> str:
    return moment.strftime("%Y%m%d%H%M%S")


def make_package_order(seed: int, index: int) -> Record:
    """Package order number ``index``: the 22 keys of a seed 001 item."""
    rng = _rng(seed, "package", index)
    ordered = datetime(2019, 3, 2, 17, 27, 19) + timedelta(minutes=97 * index)
    active = rng.random() < 0.6
    device = f"8986001201811122{rng.randrange(10**4):04d}"
    return {
        "buyType": rng.choice(("1", "2")),
        "expireDate": _csss_date(ordered + timedelta(days=30)) if active else "",
        "flow": rng.choice(("30", "500", "1024")),
        "orderCode": f"L{ordered:%Y%m%d}{index:010d}",
        "orderStatus": rng.choice(("0", "1", "1", "3")),
        "orderDate": _csss_date(ordered),
        "orderPeriod": rng.choice(("1", "3", "12")),
        "packageCode": f"PACKAGE2018042800000{rng.randrange(10)}",
        "packageName": rng.choice(PACKAGE_NAMES),
        "packageType": rng.choice(("0", "1", "2", "3", "4", "5")),
        "usedFlow": str(rng.randrange(30)),
        "flowUseRate": None,
        "orderUsedFlow": str(rng.randrange(30)),
        "supplierCode": None,
        "refuelingPackageList": [],
        "hasTestFlow": rng.choice(("0", "1")),
        "profileList": None,
        "isFlowPlus": None,
        "deviceId": device,
        "device_id": device,
        "activeDate": _csss_date(ordered + timedelta(hours=1)) if active else "",
        "main_iccid": None,
    }


def _other(rng: random.Random, choices: tuple[str, ...], current: object) -> str:
    """One of ``choices`` that is not ``current``."""
    return rng.choice([choice for choice in choices if choice != current])


def revise_order(record: Record, rng: random.Random) -> dict[str, Any]:
    """A revision step's change to an order: another ``order_status``, and a
    ``total_amount`` 0.01 to 99.99 higher (two decimal places, like the generated ones)."""
    amount = Decimal(str(record.get("totalAmount") or 0))
    return {
        "order_status": _other(rng, ORDER_STATUSES, record.get("orderStatus")),
        "total_amount": amount + Decimal(rng.randrange(1, 10_000)).scaleb(-2),
    }


def revise_product(record: Record, rng: random.Random) -> dict[str, Any]:
    """A revision step's change to a product: another ``plan_status`` (not "switching"), and
    a ``plan_expire_date`` 1 to 365 days later (epoch milliseconds)."""
    expire = record.get("planExpireDate")
    expire = expire if isinstance(expire, int) else _EPOCH_MS
    return {
        "plan_status": _other(rng, PLAN_STATUSES[:5], record.get("planStatus")),
        "plan_expire_date": expire + rng.randrange(1, 366) * 86_400_000,
    }


def revise_package_order(record: Record, rng: random.Random) -> dict[str, Any]:
    """A revision step's change to a package order: another ``order_status`` ("0", "1" or
    "3"), and a ``used_flow`` 1 to 99 higher (a string of digits, like the generated ones)."""
    used = record.get("usedFlow")
    used = int(used) if isinstance(used, str) and used.isdigit() else 0
    return {
        "order_status": _other(rng, ("0", "1", "3"), record.get("orderStatus")),
        "used_flow": str(used + rng.randrange(1, 100)),
    }


ORDER_FIELDS = (
    "createTime",
    "currencyCode",
    "customReferenceNo",
    "id",
    "invoiceNo",
    "orderNo",
    "orderStatus",
    "orderType",
    "productModel",
    "productName",
    "productNo",
    "totalAmount",
)
PRODUCT_FIELDS = (
    "activationCode",
    "activationStatus",
    "comment",
    "createTime",
    "currentPlan",
    "currentPlanExpireDate",
    "customerEmail",
    "endUserInfo",
    "model",
    "nextPlan",
    "nextPlanExpireDate",
    "nextPlanStartDate",
    "partnerEmail",
    "planAutoRenewal",
    "planExpireDate",
    "planId",
    "planName",
    "planServicePeriod",
    "planStatus",
    "productAdminEmail",
    "productNo",
    "quantity",
    "referrer",
    "serviceList",
    "url",
    "yeastarId",
)
PACKAGE_ORDER_FIELDS = (
    "buyType",
    "expireDate",
    "flow",
    "orderCode",
    "orderStatus",
    "orderDate",
    "orderPeriod",
    "packageCode",
    "packageName",
    "packageType",
    "usedFlow",
    "flowUseRate",
    "orderUsedFlow",
    "supplierCode",
    "refuelingPackageList",
    "hasTestFlow",
    "profileList",
    "isFlowPlus",
    "deviceId",
    "device_id",
    "activeDate",
    "main_iccid",
)


def _index_in(pattern: str, key: str, offset: int = 0) -> int | None:
    """The generator index spelled by group 1 of ``pattern`` in ``key``, less ``offset``."""
    match = re.fullmatch(pattern, key) if len(key) <= 40 else None
    return None if match is None else int(match[1]) - offset


def order_kind(seed: int) -> ListKind:
    """Orders: ``id`` is ``1000000 + index``; served newest first, like the portal's list."""
    return ListKind(
        name="orders",
        noun="order",
        key_field="id",
        fields=ORDER_FIELDS,
        make=functools.partial(make_order, seed),
        index_of=functools.partial(_index_in, r"([0-9]{7,})", offset=1_000_000),
        newest_first=True,
    )


def product_kind(seed: int, line: int) -> ListKind:
    """Products of one line: ``productNo`` ends in the index (5 digits or more)."""
    return ListKind(
        name=f"products of line {line}",
        noun="product",
        key_field="productNo",
        fields=PRODUCT_FIELDS,
        make=functools.partial(make_product, seed, line),
        index_of=functools.partial(_index_in, rf"{line:02d}58B[0-9]{{8}}([0-9]{{5,}})"),
        newest_first=False,
    )


def package_order_kind(seed: int) -> ListKind:
    """CSSS package orders: ``orderCode`` ends in the index (10 digits); oldest first."""
    return ListKind(
        name="package orders",
        noun="package order",
        key_field="orderCode",
        fields=PACKAGE_ORDER_FIELDS,
        make=functools.partial(make_package_order, seed),
        index_of=functools.partial(_index_in, r"L[0-9]{8}([0-9]{10,})"),
        newest_first=False,
    )


class SandboxData:
    """The records the sandbox serves: one :class:`SandboxList` per list.

    Orders are newest first, like the portal's list; products (by product line) and package
    orders oldest first. With ``generated=True`` the records are computed from their index on
    demand (for totals in the millions); either way the lists can be changed between requests
    (``add``, ``change``, ``remove``), which keeps only the changes.

    ``revision`` steps of :meth:`advance_revision` are applied before the data is served
    (0: the data as generated).
    """

    def __init__(
        self,
        *,
        seed: int,
        orders: int,
        products_per_line: int,
        package_orders: int,
        generated: bool,
        revision: int = 0,
    ) -> None:
        if not isinstance(revision, int) or isinstance(revision, bool) or revision < 0:
            raise ValueError(f"revision must be an int >= 0, got {revision!r:.80}")
        self.seed = seed
        self.generated = generated
        self.revision = 0
        """The revision served now: the number of steps applied."""
        self.orders = SandboxList(order_kind(seed), orders, generated=generated)
        self.package_orders = SandboxList(
            package_order_kind(seed), package_orders, generated=generated
        )
        self.products = ProductLines(
            {
                line: SandboxList(product_kind(seed, line), products_per_line, generated=generated)
                for line in PRODUCT_LINES
            }
        )
        self.subscription_products: list[Record] = [
            {"name": name, "productId": line} for line, name in PRODUCT_LINES.items()
        ]
        for _ in range(revision):
            self.advance_revision()

    def advance_revision(self) -> RevisionStep:
        """Apply the next revision step to every list (see ``_revisions``: about 1 % of each
        list removed, 3 % changed, 2 % added); return what it added, removed and changed.

        Orders change ``order_status`` and ``total_amount``, products ``plan_status`` and
        ``plan_expire_date``, package orders ``order_status`` and ``used_flow``. A sandbox made
        with ``revision=r`` serves what one made with revision 0 serves after ``r`` calls.
        """
        revision = self.revision + 1

        def step(records: SandboxList, revise: Revise) -> ListChanges:
            rng = step_random(self.seed, revision, records.kind.name)
            return apply_step(records, rng, revise)

        done = RevisionStep(
            revision=revision,
            orders=step(self.orders, revise_order),
            products={
                line: step(records, revise_product) for line, records in self.products.items()
            },
            package_orders=step(self.package_orders, revise_package_order),
        )
        self.revision = revision
        return done

    def insert_orders_at_head(self, n: int) -> list[Record]:
        """Add ``n`` new orders at the head of the list (as new orders arrive)."""
        return self.orders.add(n) if n else []

    def remove_orders_at_head(self, n: int) -> list[Record]:
        """Remove the ``n`` newest orders."""
        return [self.orders.remove(order["id"]) for order in self.orders[:n]]
