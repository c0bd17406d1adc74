"""The accounts file of a worker: per account, the names of the environment variables that
hold its credentials (never the credentials themselves), read with :mod:`tomllib`."""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from typing import Any

import attrs

from .._base import env_values
from .._errors import ConfigurationError
from .._lists import list_spec
from .._validation import require_positive_int, require_seconds
from ._cron import check_cron

__all__ = ["AccountConfig", "AccountsFileError", "Schedule", "load_accounts", "parse_accounts"]

_ENV_KEYS = (
    "yeastar_client_id_env",
    "yeastar_client_secret_env",
    "csss_access_code_env",
    "csss_secret_env",
)
_URL_KEYS = ("base_url", "yeastar_base_url", "csss_base_url")
_KNOWN_KEYS = frozenset((*_ENV_KEYS, *_URL_KEYS, "max_concurrency", "timeout", "schedule"))
_SCHEDULE_KEYS = frozenset(("list", "cron"))
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_ACCOUNT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}\Z")


class AccountsFileError(ConfigurationError):
    """The accounts file is missing, not TOML, or says something this release does not
    understand; the text names the file and the key."""


@attrs.frozen
class Schedule:
    """One ``[[accounts.NAME.schedule]]`` table: sync list ``list_name`` (a name of the list
    registry) whenever the 5-field rule ``cron`` (in UTC; fields separated by single
    spaces) is due."""

    list_name: str
    cron: str


@attrs.frozen
class AccountConfig:
    """One account of the accounts file: where its credentials are, not what they are.

    ``*_env`` are names of environment variables, read when a job of the account first
    needs a client (:meth:`yeastar_credentials`, :meth:`csss_credentials`).
    ``base_url`` sets both APIs' address (a sandbox, a proxy); ``yeastar_base_url`` and
    ``csss_base_url`` set one each and win over it. ``timeout`` is the clients' seconds per
    request attempt; a fleet-wide slot a dead worker held frees itself after twice that
    (at least ``timeout`` + 5 s).
    ``schedules``: when ``yeastar-csss scheduler`` queues a sync of which list.
    """

    name: str
    yeastar_client_id_env: str | None = None
    yeastar_client_secret_env: str | None = None
    csss_access_code_env: str | None = None
    csss_secret_env: str | None = None
    yeastar_base_url: str | None = None
    csss_base_url: str | None = None
    max_concurrency: int = 8
    timeout: float = 30.0
    schedules: tuple[Schedule, ...] = ()

    def yeastar_credentials(self, environ: Mapping[str, str] | None = None) -> tuple[str, str]:
        """``(client_id, client_secret)`` from the environment, or a
        :class:`ConfigurationError` naming the account and each variable not set."""
        return self._read(
            "Yeastar", environ, ("yeastar_client_id_env", "yeastar_client_secret_env")
        )

    def csss_credentials(self, environ: Mapping[str, str] | None = None) -> tuple[str, str]:
        """``(access_code, secret)`` from the environment, or a :class:`ConfigurationError`
        naming the account and each variable not set."""
        return self._read("CSSS", environ, ("csss_access_code_env", "csss_secret_env"))

    def _read(
        self, api: str, environ: Mapping[str, str] | None, keys: tuple[str, str]
    ) -> tuple[str, str]:
        names = [getattr(self, key) for key in keys]
        if None in names:
            raise ConfigurationError(
                f"account {self.name!r} has no {api} credentials: set {' and '.join(keys)} "
                "in the accounts file"
            )
        values, missing = env_values(names, environ)
        if missing:
            raise ConfigurationError(
                f"account {self.name!r}: environment variable "
                f"{' and '.join(missing)} {'is' if len(missing) == 1 else 'are'} not set"
            )
        return values[0], values[1]


def load_accounts(path: str | os.PathLike[str]) -> dict[str, AccountConfig]:
    """The accounts of a TOML file (``[accounts.NAME]`` tables), by name."""
    where = os.fspath(path)
    try:
        with open(where, "rb") as file:
            document = tomllib.load(file)
    except OSError as error:
        raise AccountsFileError(f"{where}: {error.strerror or error}") from None
    except tomllib.TOMLDecodeError as error:
        raise AccountsFileError(f"{where}: not TOML: {error}") from None
    return parse_accounts(document, where)


def parse_accounts(
    document: Mapping[str, Any], where: str = "accounts"
) -> dict[str, AccountConfig]:
    """The accounts of a parsed TOML document; every problem names ``where`` and the key."""
    unknown = sorted(set(document) - {"accounts"})
    if unknown:
        raise AccountsFileError(
            f"{where}: unknown top-level key {unknown[0]!r} (expected [accounts.NAME] tables)"
        )
    tables = document.get("accounts")
    if not isinstance(tables, dict) or not tables:
        raise AccountsFileError(f"{where}: no accounts (expected [accounts.NAME] tables)")
    accounts: dict[str, AccountConfig] = {}
    for name, table in tables.items():
        here = f"{where}: accounts.{name}"
        if not _ACCOUNT_NAME.match(name):
            raise AccountsFileError(
                f"{here}: an account name is 1 to 100 letters, digits, "
                "'_', '.' or '-', starting with a letter or digit"
            )
        if not isinstance(table, dict):
            raise AccountsFileError(f"{here}: expected a table")
        accounts[name] = _account(name, table, here)
    return accounts


def _account(name: str, table: Mapping[str, Any], here: str) -> AccountConfig:
    unknown = sorted(set(table) - _KNOWN_KEYS)
    if unknown:
        raise AccountsFileError(
            f"{here}: unknown key {unknown[0]!r} (known: {', '.join(sorted(_KNOWN_KEYS))})"
        )
    options: dict[str, Any] = {}
    for key in (*_ENV_KEYS, *_URL_KEYS):
        value = table.get(key)
        if value is None:
            continue
        if not isinstance(value, str) or not value.strip():
            raise AccountsFileError(f"{here}.{key}: expected a non-empty string")
        if key in _ENV_KEYS and not _ENV_NAME.match(value):
            raise AccountsFileError(
                f"{here}.{key}: expected the NAME of an environment variable, got {value[:80]!r}"
            )
        options[key] = value.strip()
    for api, pair in (("Yeastar", _ENV_KEYS[:2]), ("CSSS", _ENV_KEYS[2:])):
        if (pair[0] in options) != (pair[1] in options):
            raise AccountsFileError(f"{here}: {api} credentials need both {pair[0]} and {pair[1]}")
    if not any(key in options for key in _ENV_KEYS):
        raise AccountsFileError(
            f"{here}: no credentials (set yeastar_client_id_env and "
            "yeastar_client_secret_env, or csss_access_code_env and "
            "csss_secret_env)"
        )
    base_url = options.pop("base_url", None)
    options.setdefault("yeastar_base_url", base_url)
    options.setdefault("csss_base_url", base_url)
    if "max_concurrency" in table:
        try:
            options["max_concurrency"] = require_positive_int(
                "max_concurrency", table["max_concurrency"]
            )
        except (TypeError, ValueError) as error:
            raise AccountsFileError(f"{here}.max_concurrency: {error}") from None
    if "timeout" in table:
        try:
            options["timeout"] = require_seconds("timeout", table["timeout"])
        except (TypeError, ValueError) as error:
            raise AccountsFileError(f"{here}.timeout: {error}") from None
    if "schedule" in table:
        options["schedules"] = _schedules(table["schedule"], f"{here}.schedule")
    return AccountConfig(name, **options)


def _schedules(tables: object, here: str) -> tuple[Schedule, ...]:
    if not isinstance(tables, list) or not all(isinstance(t, dict) for t in tables):
        raise AccountsFileError(f"{here}: expected [[{here.split(': ', 1)[-1]}]] tables")
    schedules = []
    for index, table in enumerate(tables):
        at = f"{here}[{index}]"
        unknown = sorted(set(table) - _SCHEDULE_KEYS)
        if unknown:
            raise AccountsFileError(f"{at}: unknown key {unknown[0]!r} (known: cron, list)")
        missing = sorted(_SCHEDULE_KEYS - set(table))
        if missing:
            raise AccountsFileError(f"{at}: {missing[0]!r} is missing")
        try:
            list_name = list_spec(str(table["list"])).name
        except ValueError as error:
            raise AccountsFileError(f"{at}.list: {error}") from None
        try:
            cron = check_cron(table["cron"])
        except ValueError as error:
            raise AccountsFileError(f"{at}.cron: {error}") from None
        schedule = Schedule(list_name, cron)
        if schedule in schedules:
            raise AccountsFileError(f"{at}: the same list and cron as an earlier schedule")
        schedules.append(schedule)
    return tuple(schedules)
