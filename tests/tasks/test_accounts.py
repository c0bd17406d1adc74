"""The accounts file of a worker fleet (``tasks/_accounts``): its mistakes are named."""

from __future__ import annotations

from typing import Any

import pytest

pytest.importorskip("taskiq_redis", reason="needs the [workers] extra")

from yeastar_csss_async.tasks import AccountsFileError, parse_accounts


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ({}, "no accounts"),
        ({"accounts": {"a": {"yeastar_client_id_env": "X"}}}, "need both"),
        (
            {
                "accounts": {
                    "a": {
                        "yeastar_client_id_env": "X",
                        "yeastar_client_secret_env": "Y",
                        "client_secret": "hunter2",
                    }
                }
            },
            "unknown key 'client_secret'",
        ),
        (
            {
                "accounts": {
                    "a": {"yeastar_client_id_env": "not a name", "yeastar_client_secret_env": "Y"}
                }
            },
            "expected the NAME",
        ),
        ({"accounts": {"a": {"base_url": "http://x"}}}, "no credentials"),
        ({"accounts": {"a b": {}}}, "an account name is"),
        (
            {
                "accounts": {
                    "a": {"csss_access_code_env": "X", "csss_secret_env": "Y", "max_concurrency": 0}
                }
            },
            "max_concurrency",
        ),
        ({"accounts": {}, "database": "x"}, "unknown top-level key 'database'"),
    ],
)
def test_accounts_file_mistakes_are_named(document: dict[str, Any], message: str) -> None:
    with pytest.raises(AccountsFileError, match="accounts") as caught:
        parse_accounts(document, "accounts.toml")
    assert message in str(caught.value)
