"""Typed, immutable values the clients return.

Every model is an ``attrs`` frozen, slotted class whose attributes are the snake_case names of
the JSON keys (``orderNo`` -> ``order_no``). What holds for every field:

* a key that is absent or ``null`` becomes ``None`` (list fields become ``[]``);
* epoch-millisecond times become timezone-aware UTC ``datetime``s;
* CSSS ``yyyyMMddHHmmss`` dates become naive ``datetime``s (the API does not say which time zone
  it uses) and ``""`` becomes ``None``;
* money becomes ``decimal.Decimal`` with the digits the server sent (``130.00`` stays ``130.00``);
* enum fields always hold a member of their :class:`OpenStrEnum`: a documented value is one of
  its named members, and a value the vendor adds later (or ``""``) becomes an extra member
  holding exactly that string, so it never breaks a caller and the field's type stays the enum;
  members are strings and compare equal to them (``order.order_status == "succeed"``);
* each list's key (``Order.id``, ``Product.product_no``, ``PackageOrder.order_code``) and
  ``SubscriptionProduct.product_id`` are required: a record without one (absent, ``null`` or
  ``""``) is a :class:`~yeastar_csss_async.ResponseFormatError`, because it could be neither
  told apart from others nor synced;
* other strings are kept as sent (``""`` stays ``""``); keys the docs do not name are ignored.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from typing import Generic, Self, TypeAlias, TypeVar

import attrs

__all__ = [
    "ActivationStatus",
    "CurrencyCode",
    "EndUserInfo",
    "JSONValue",
    "OpenStrEnum",
    "Order",
    "OrderStatus",
    "OrderType",
    "PackageOrder",
    "Page",
    "PlanStatus",
    "Product",
    "ServiceInfo",
    "SubscriptionProduct",
]

JSONValue: TypeAlias = (
    "bool | int | float | Decimal | str | list[JSONValue] | dict[str, JSONValue] | None"
)
"""A decoded JSON value (numbers with a fraction decode to ``Decimal``)."""

T = TypeVar("T")

_EXTRA_MEMBERS_KEPT = 1024
"""Extra members an enum caches; past that each unknown value gets a fresh, equal member."""


class OpenStrEnum(enum.StrEnum):
    """A ``StrEnum`` that also takes values it does not document.

    ``OrderStatus("succeed")`` is the named member ``OrderStatus.SUCCEED``;
    ``OrderStatus("on_hold")``, a value added by the vendor after this release, is an extra
    member whose value and name are ``"on_hold"``. It is an ``OrderStatus`` and a ``str``, equal
    to ``"on_hold"``, and it pickles; it is not listed by ``list(OrderStatus)`` or
    ``OrderStatus.__members__``. The same value gives the same member (the first
    1,024 extra values of each enum are cached; later ones are equal, not identical).
    """

    @classmethod
    def _missing_(cls, value: object) -> Self | None:
        if not isinstance(value, str):
            return None
        member = str.__new__(cls, value)
        member._name_ = value
        member._value_ = value
        member._sort_order_ = len(cls._member_names_)  # type: ignore[attr-defined]
        if len(cls._value2member_map_) < len(cls._member_names_) + _EXTRA_MEMBERS_KEPT:
            return cls._value2member_map_.setdefault(value, member)  # type: ignore[return-value]
        return member

    @property
    def documented(self) -> bool:
        """True for a member named in this release, False for a value kept as sent."""
        return type(self).__members__.get(self._name_) is self

    def __repr__(self) -> str:
        if self.documented:
            return super().__repr__()
        return f"<{type(self).__name__} {self._value_!r} (not documented)>"


class OrderStatus(OpenStrEnum):
    """Documented values of ``Order.order_status``."""

    SUCCEED = "succeed"
    FAILED = "failed"
    PENDING = "pending"
    INVALID = "invalid"
    CANCELLED = "cancelled"
    REFUNDED = "refunded"
    CONFIRMED = "confirmed"
    UNCONFIRMED = "unconfirmed"


class OrderType(OpenStrEnum):
    """Documented values of ``Order.order_type`` (the API also sends ``""``)."""

    ONLINE = "online"
    OFFLINE = "offline"
    SPECIAL_OFFER = "special_offer"


class CurrencyCode(OpenStrEnum):
    """Documented values of ``Order.currency_code``."""

    USD = "USD"
    RMB = "RMB"


class ActivationStatus(OpenStrEnum):
    """Documented values of ``Product.activation_status``."""

    UNKNOWN = "unknown"
    UNACTIVATED = "unactivated"
    ACTIVATED = "activated"


class PlanStatus(OpenStrEnum):
    """Documented values of ``Product.plan_status``."""

    TRIALING = "trialing"
    SUBSCRIBING = "subscribing"
    PURCHASED = "purchased"
    EXPIRING = "expiring"
    EXPIRED = "expired"
    SWITCHING = "switching"


@attrs.frozen
class Order:
    """One Yeastar order (``Order_Info`` of Query Order List). Its key is ``id``."""

    id: str
    order_no: str | None = None
    order_status: OrderStatus | None = None
    order_type: OrderType | None = None
    create_time: datetime | None = None
    currency_code: CurrencyCode | None = None
    total_amount: Decimal | None = None
    custom_reference_no: str | None = None
    invoice_no: str | None = None
    product_model: str | None = None
    product_name: str | None = None
    product_no: str | None = None


@attrs.frozen
class EndUserInfo:
    """The end user a Yeastar product belongs to (``Enduser_Info``)."""

    address: str | None = None
    company_name: str | None = None
    contact_name: str | None = None
    email: str | None = None


@attrs.frozen
class ServiceInfo:
    """A service attached to a Yeastar product (``Service_Info``)."""

    service_id: str | None = None
    service_name: str | None = None
    service_status: str | None = None
    quantity: str | None = None
    service_auto_renewal: int | None = None
    service_expire_date: datetime | None = None
    service_period: int | None = None


@attrs.frozen
class Product:
    """One Yeastar product instance (``Product_Info`` of Query Product List).

    Its key is ``product_no`` (the PBX serial number). ``current_plan_expire_date``,
    ``next_plan_expire_date`` and ``next_plan_start_date`` are documented as strings but sent as
    epoch milliseconds; they become UTC datetimes like the other times.
    """

    product_no: str
    activation_code: str | None = None
    activation_status: ActivationStatus | None = None
    comment: str | None = None
    create_time: datetime | None = None
    current_plan: str | None = None
    current_plan_expire_date: datetime | None = None
    customer_email: str | None = None
    end_user_info: EndUserInfo | None = None
    model: str | None = None
    next_plan: str | None = None
    next_plan_expire_date: datetime | None = None
    next_plan_start_date: datetime | None = None
    partner_email: str | None = None
    plan_auto_renewal: int | None = None
    plan_expire_date: datetime | None = None
    plan_id: str | None = None
    plan_name: str | None = None
    plan_service_period: int | None = None
    plan_status: PlanStatus | None = None
    product_admin_email: str | None = None
    quantity: str | None = None
    referrer: str | None = None
    service_list: list[ServiceInfo] = attrs.field(factory=list)
    url: str | None = None
    yeastar_id: str | None = None


@attrs.frozen
class SubscriptionProduct:
    """A product line the account may subscribe to (Query Available Subscription Products).

    ``product_id`` is what :meth:`YeastarPartnerClient.iter_products` takes.
    """

    product_id: int
    name: str | None = None


@attrs.frozen
class PackageOrder:
    """One CSSS data-plan order (an item of ``package_order``). Its key is ``order_code``.

    ``device_id`` comes from ``device_id`` or, when that is missing, ``deviceId`` (the API sends
    both). Quantities (``flow``, ``used_flow``, ...) and codes (``order_status``, ``buy_type``,
    ...) are strings, as sent; their meanings are not documented.
    """

    order_code: str
    device_id: str | None = None
    order_status: str | None = None
    buy_type: str | None = None
    order_date: datetime | None = None
    active_date: datetime | None = None
    expire_date: datetime | None = None
    flow: str | None = None
    used_flow: str | None = None
    order_used_flow: str | None = None
    flow_use_rate: str | None = None
    order_period: str | None = None
    package_code: str | None = None
    package_name: str | None = None
    package_type: str | None = None
    supplier_code: str | None = None
    has_test_flow: str | None = None
    is_flow_plus: str | None = None
    main_iccid: str | None = None
    refueling_package_list: list[JSONValue] = attrs.field(factory=list)
    profile_list: list[JSONValue] = attrs.field(factory=list)


@attrs.frozen
class Page(Generic[T]):
    """One page of a paged answer.

    Attributes:
        items: the records of this page, in server order.
        page_no: the page number (1-based) the server answered for.
        page_size: records per page.
        total: records on the server, as the server reported it with this page.
        total_pages: pages needed to read every record: the larger of the server's
            ``totalPage`` and ``ceil(total / page_size)`` (the API is known to understate
            ``totalPage``; see ``reported_total_pages`` for the raw value).
        reported_total_pages: ``totalPage`` / ``total_pages`` exactly as the server sent it.
        request_id: the answer's request id (Yeastar ``requestId``, for support tickets), or
            ``None`` where the API sends none (CSSS).
    """

    items: Sequence[T]
    page_no: int
    page_size: int
    total: int
    total_pages: int
    reported_total_pages: int | None = None
    request_id: str | None = None

    @classmethod
    def build(
        cls,
        items: Sequence[T],
        *,
        page_no: int,
        page_size: int,
        total: int,
        reported_total_pages: int | None,
        request_id: str | None = None,
    ) -> Page[T]:
        """A page whose ``total_pages`` is corrected to cover ``total`` records."""
        needed = -(-total // page_size) if page_size > 0 else 0  # exact for any size
        return cls(
            items=items,
            page_no=page_no,
            page_size=page_size,
            total=total,
            total_pages=max(reported_total_pages or 0, needed),
            reported_total_pages=reported_total_pages,
            request_id=request_id,
        )
