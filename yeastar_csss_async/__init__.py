"""Fast, loss-free asyncio client for the Yeastar Partner Portal and Linksfield CSSS APIs.

::

    async with YeastarPartnerClient(client_id, client_secret) as client:
        async for order in client.iter_orders():
            ...

See ``README.md`` for the guarantees (concurrency, bounded memory, no loss, retries, tokens,
signing, cancellation, secrets).
"""

from ._coordination import AccountLink, Coordinator, LocalCoordinator, SharedToken
from ._csss import CSSSClient
from ._csss_protocol import csss_sign_content, sign_csss_body
from ._errors import (
    APIError,
    AuthenticationError,
    BadRequestError,
    ConfigurationError,
    CoordinatorError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    ResponseFormatError,
    TransportConnectionError,
    TransportError,
    TransportTimeoutError,
    YeastarCSSSError,
)
from ._jsonable import JSONSafe, to_jsonable
from ._paging import PageIterator, PageStream
from ._retry import RetryPolicy
from ._transport import TransportStats
from ._version import __version__
from ._yeastar import YeastarPartnerClient
from .models import (
    ActivationStatus,
    CurrencyCode,
    EndUserInfo,
    JSONValue,
    OpenStrEnum,
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
    "AccountLink",
    "ActivationStatus",
    "AuthenticationError",
    "BadRequestError",
    "CSSSClient",
    "ConfigurationError",
    "Coordinator",
    "CoordinatorError",
    "CurrencyCode",
    "EndUserInfo",
    "JSONSafe",
    "JSONValue",
    "LocalCoordinator",
    "NotFoundError",
    "OpenStrEnum",
    "Order",
    "OrderStatus",
    "OrderType",
    "PackageOrder",
    "Page",
    "PageIterator",
    "PageStream",
    "PermissionDeniedError",
    "PlanStatus",
    "Product",
    "RateLimitError",
    "ResponseFormatError",
    "RetryPolicy",
    "ServiceInfo",
    "SharedToken",
    "SubscriptionProduct",
    "TransportConnectionError",
    "TransportError",
    "TransportStats",
    "TransportTimeoutError",
    "YeastarCSSSError",
    "YeastarPartnerClient",
    "__version__",
    "csss_sign_content",
    "sign_csss_body",
    "to_jsonable",
]
