"""The two APIs: their default addresses and the environment variables that configure them.

The clients' defaults, their ``from_env()``, the CLI and the workers read these, so a variable
name or an address is written here and nowhere else.
"""

from __future__ import annotations

import attrs

__all__ = ["ACCOUNTS_ENV", "APIS", "CSSS", "DB_ENV", "REDIS_ENV", "YEASTAR", "ApiSpec"]


@attrs.frozen
class ApiSpec:
    """One vendor API.

    ``credential_env`` names the two variables holding its credentials (the public id first,
    then the secret); ``base_url_env`` the optional variable that moves it elsewhere (a
    sandbox, a staging server).
    """

    name: str
    title: str
    default_base_url: str
    credential_env: tuple[str, str]
    base_url_env: str

    @property
    def env_names(self) -> tuple[str, str, str]:
        """Every variable this API reads: the two credentials, then the base URL."""
        return (*self.credential_env, self.base_url_env)


YEASTAR = ApiSpec(
    name="yeastar",
    title="Yeastar Partner Portal OpenAPI",
    default_base_url="https://openapi.partner.yeastar.com",
    credential_env=("YEASTAR_CLIENT_ID", "YEASTAR_CLIENT_SECRET"),
    base_url_env="YEASTAR_BASE_URL",
)
"""The Yeastar Partner Portal OpenAPI (OAuth2 client credentials): orders and products."""

CSSS = ApiSpec(
    name="csss",
    title="Linksfield CSSS API",
    default_base_url="https://apiv3.linksfield.net",
    credential_env=("CSSS_ACCESS_CODE", "CSSS_SECRET"),
    base_url_env="CSSS_BASE_URL",
)
"""The Linksfield CSSS API (HMAC-SHA1 signed bodies): package orders."""

APIS: dict[str, ApiSpec] = {api.name: api for api in (YEASTAR, CSSS)}
"""Every API by name."""

# -- where the commands run: the defaults of --db, --redis and --accounts -------------------

DB_ENV = "YEASTAR_CSSS_DB"
"""The default of ``--db`` (``sync``, ``worker``): a database URL, password and all, kept off
the command line."""
REDIS_ENV = "YEASTAR_CSSS_REDIS"
"""The default of ``--redis`` (``worker``, ``enqueue``, ``result``, ``status``)."""
ACCOUNTS_ENV = "YEASTAR_CSSS_ACCOUNTS"
"""The default of ``--accounts`` (``worker``, ``enqueue``): the accounts file."""
