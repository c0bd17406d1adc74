"""Fast, loss-free asyncio client for the Yeastar Partner Portal and Linksfield CSSS APIs.

::

    async with YeastarPartnerClient(client_id, client_secret) as client:
        async for order in client.iter_orders():
            ...

See ``README.md`` for the guarantees (concurrency, bounded memory, no loss, retries, tokens,
signing, cancellation, secrets).
"""

from ._csss import CSSSClient
from ._csss_protocol import csss_sign_content, sign_csss_body
from ._errors import (
    APIError,
    AuthenticationError,
    RateLimitError,
    ResponseFormatError,
    TransportError,
    YeastarCSSSError,
)
from ._jsonable import JSONSafe, to_jsonable
from ._paging import PageIterator
from ._retry import RetryPolicy
from ._transport import TransportStats
from ._version import __version__
from ._yeastar import YeastarPartnerClient
from .models import (
    ActivationStatus,
    CurrencyCode,
    EndUserInfo,
    JSONValue,
    Order,
    OrderStatus,
    OrderType,
    PackageOrder,
    Page,
    PlanStatus,
    Product,
    ServiceInfo,
    SubscriptionProduct,
)

__all__ = [
    "APIError",
    "ActivationStatus",
    "AuthenticationError",
    "CSSSClient",
    "CurrencyCode",
    "EndUserInfo",
    "JSONSafe",
    "JSONValue",
    "Order",
    "OrderStatus",
    "OrderType",
    "PackageOrder",
    "Page",
    "PageIterator",
    "PlanStatus",
    "Product",
    "RateLimitError",
    "ResponseFormatError",
    "RetryPolicy",
    "ServiceInfo",
    "SubscriptionProduct",
    "TransportError",
    "TransportStats",
    "YeastarCSSSError",
    "YeastarPartnerClient",
    "__version__",
    "csss_sign_content",
    "sign_csss_body",
    "to_jsonable",
]
