"""The redactor: fixed secrets for good, rotating ones (tokens) bounded."""

from __future__ import annotations

from urllib.parse import quote

from yeastar_csss_async._errors import ROTATING_KEPT, Redactor


def test_fixed_secrets_are_masked_for_good_and_rotating_ones_while_recent() -> None:
    redact = Redactor(["client/secret+1"])
    tokens = [f"token{n:04d}xyz" for n in range(ROTATING_KEPT + 40)]
    for token in tokens:
        redact.rotate(token)
    assert redact(f"a {quote('client/secret+1', safe='')} b") == "a *** b"
    assert redact(f"{tokens[-1]} {tokens[-ROTATING_KEPT]}") == "*** ***"
    # A long-running client does not keep every token it was ever issued.
    assert redact(tokens[0]) == tokens[0]


def test_an_empty_redactor_changes_nothing() -> None:
    assert Redactor()("nothing to hide") == "nothing to hide"
