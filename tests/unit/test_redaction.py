"""The redactor: what it masks (the same as one regular expression of every form would), and
that its cost does not grow with the tokens a long-running client has seen."""

from __future__ import annotations

import base64
import re
import secrets
import string
from collections.abc import Iterable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from yeastar_csss_async import _redaction
from yeastar_csss_async._redaction import ROTATING_KEPT, Redactor, _encodings

TOKEN_CHARS = string.ascii_letters + string.digits + "-_+/=."
TEXT_CHARS = TOKEN_CHARS + "%&\\\"' :{}[],<>\n"


def _reference(kept: Iterable[str], text: str) -> str:
    """One regular expression of every form of every secret, longest first."""
    forms = set().union(*(_encodings(secret) for secret in kept))
    if not forms:
        return text
    pattern = re.compile("|".join(map(re.escape, sorted(forms, key=len, reverse=True))))
    return pattern.sub("***", text)


@st.composite
def _secrets_and_text(draw: Any, min_size: int) -> tuple[list[str], str]:
    kept = draw(
        st.lists(st.text(TOKEN_CHARS, min_size=min_size, max_size=40), min_size=1, max_size=4)
    )
    forms = sorted(set().union(*(_encodings(secret) for secret in kept)))
    pieces = []
    for _ in range(draw(st.integers(0, 8))):
        pieces.append(draw(st.text(TEXT_CHARS, max_size=12)))
        if forms and draw(st.booleans()):
            form = draw(st.sampled_from(forms))
            cut = draw(st.integers(1, len(form)))
            pieces.append(form if draw(st.booleans()) else form[:cut])  # whole or partial
    return kept, "".join(pieces)


@settings(max_examples=400, deadline=None)
@given(_secrets_and_text(min_size=_redaction.ANCHOR + _redaction.STRIDE - 1))
def test_long_secrets_are_masked_as_one_regular_expression_of_their_forms_would(
    case: tuple[list[str], str],
) -> None:
    kept, text = case
    redact = Redactor(kept[:1])
    for token in kept[1:]:
        redact.rotate(token)
    assert redact(text) == _reference(kept, text)


@settings(max_examples=400, deadline=None)
@given(_secrets_and_text(min_size=4))
def test_no_form_of_any_secret_survives_whatever_its_length(
    case: tuple[list[str], str],
) -> None:
    kept, text = case
    redact = Redactor(kept[:1])
    for token in kept[1:]:
        redact.rotate(token)
    masked = redact(text)
    for secret in kept:
        for form in _encodings(secret):
            assert form not in masked


def test_a_form_inside_a_longer_run_of_token_characters_is_masked() -> None:
    token = secrets.token_urlsafe(24)
    redact = Redactor(["pw"])
    redact.rotate(token)
    assert redact(f"xx{token}yy pw zz{token}") == "xx***yy *** zz***"


class _CountingDict(dict[str, Any]):
    lookups = 0

    def get(self, key: str, default: Any = None) -> Any:
        type(self).lookups += 1
        return super().get(key, default)


def test_masking_does_the_same_work_after_thousands_of_renewals() -> None:
    # The work depends on the text and on the characters the forms are made of (which one
    # issuer's tokens share after a few renewals), never on the number of tokens seen.
    text = "requestId 0123456789abcdef0123456789abcdef and a token-like run xxxxxxxxxxxxxxxxxx"
    fresh, renewed = Redactor(["client-secret"]), Redactor(["client-secret"])
    for _ in range(50):
        fresh.rotate(secrets.token_urlsafe(24))
    for _ in range(3 * ROTATING_KEPT):
        renewed.rotate(secrets.token_urlsafe(24))
    work = []
    for redact in (fresh, renewed):
        counting = _CountingDict(redact._index)
        redact._index = counting
        _CountingDict.lookups = 0
        assert redact(text) == text
        work.append(_CountingDict.lookups)
    assert work[0] == work[1] > 0
    # and only the newest ROTATING_KEPT tokens are indexed
    assert len(renewed._rotating) == ROTATING_KEPT


def test_a_renewal_compiles_nothing_once_its_characters_are_known(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    redact = Redactor(["client-secret"])
    for _ in range(20):  # learn the alphabet of these tokens' forms
        redact.rotate(secrets.token_urlsafe(24))
    compiled: list[str] = []
    real = re.compile

    def spy(pattern: str, flags: int = 0) -> re.Pattern[str]:
        compiled.append(pattern)
        return real(pattern, flags)

    monkeypatch.setattr(re, "compile", spy)  # the module the redactor compiles with
    tokens = [secrets.token_urlsafe(24) for _ in range(ROTATING_KEPT + 10)]
    for token in tokens:
        redact.rotate(token)
    assert compiled == []
    assert redact(tokens[-1]) == "***"
    assert redact(tokens[0]) == tokens[0]  # forgotten: more than ROTATING_KEPT came after


def test_a_form_two_kept_secrets_share_stays_masked_until_both_are_forgotten() -> None:
    first = "abcdefghijklmnop"
    second = base64.b64encode(first.encode()).decode()  # a form of `first`, and a secret
    assert second in _encodings(first)
    redact = Redactor()
    redact.rotate(first)
    redact.rotate(second)
    for n in range(ROTATING_KEPT - 1):  # forget `first` only
        redact.rotate(f"filler-token-{n:06d}")
    assert first not in redact._rotating
    assert second in redact._rotating
    assert redact(first) == first
    assert redact(second) == "***"
    redact.rotate("filler-token-last")  # and now `second`
    assert redact(second) == second
