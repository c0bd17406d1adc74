"""Keeping secrets out of every text the library makes: :class:`Redactor` masks known secrets
in any of their usual encodings; :func:`shorten`, :func:`quote_value` and :func:`kept_body`
bound what an error message or an error's body quotes, masking first and cutting after, so a
secret cut in half cannot show.
"""

from __future__ import annotations

import base64
import html
import json
import re
import reprlib
from collections.abc import Iterable
from urllib.parse import quote, quote_plus

__all__ = [
    "BODY_KEPT",
    "QUOTE_LIMIT",
    "ROTATING_KEPT",
    "Redactor",
    "kept_body",
    "quote_value",
    "shorten",
]

_MASK = "***"
QUOTE_LIMIT = 80
"""Characters of a bad value (or of a body) quoted in an error message, at most."""
BODY_KEPT = 8192
"""Characters of an error answer's body kept on :attr:`APIError.body`, at most."""


def _encodings(secret: str) -> set[str]:
    """The forms a secret can take when a server echoes it back: raw, in a form or URL, in
    JSON, in HTML, in a Python repr, and Base64."""
    raw = secret.encode("utf-8")
    forms = {
        secret,
        quote(secret, safe=""),
        quote(secret),  # "/" kept, as in a URL path
        quote_plus(secret, safe=""),
        json.dumps(secret)[1:-1],
        json.dumps(secret, ensure_ascii=False)[1:-1],
        html.escape(secret),
        repr(secret)[1:-1],
        base64.b64encode(raw).decode("ascii"),
        base64.urlsafe_b64encode(raw).decode("ascii"),
    }
    forms |= {re.sub(r"%[0-9A-F]{2}", lambda m: m.group(0).lower(), f) for f in forms}
    forms |= {f.rstrip("=") for f in forms}
    return {f for f in forms if f}


ROTATING_KEPT = 512
"""Rotating secrets (tokens) a :class:`Redactor` keeps masking: the newest 512, at least 256
renewals. Even at the shortest token lifetime the client trusts (1 s) that outlasts any
request still holding one of them; at the documented 30 minutes it is days."""

ANCHOR = 8
STRIDE = 4
"""How long forms are found: each form of ``ANCHOR + STRIDE - 1`` characters or more is
indexed by its ``ANCHOR``-character windows at offsets 0 to ``STRIDE - 1``, and masking
looks up the text's windows at every ``STRIDE``-th position (any occurrence of such a form
covers one of them). The work per character of text is constant, whatever the number of
secrets; shorter forms go into one regular expression."""
_INDEXED = ANCHOR + STRIDE - 1


class Redactor:
    """Replaces every known secret, in any of its usual encodings, with ``***``.

    Encodings covered: as is, percent-encoded (``quote``/``quote_plus``, either hex case), JSON
    string escapes (ASCII or not), HTML escapes, Python repr escapes and Base64 (standard and
    URL-safe, padded or not). Fixed secrets (a client secret) are kept for good; rotating ones
    (tokens, see :meth:`rotate`) only the newest ``ROTATING_KEPT``.

    The cost does not grow with the secrets it knows: long forms are indexed by a few windows
    of their text (see :data:`STRIDE`), and masking looks up windows of the runs of the text
    made of the characters that forms hold (found by one regular expression over that
    alphabet). A client that renewed its token a thousand times masks a text as fast as a new
    one, and a renewal indexes the new token's forms only. Where forms overlap, the leftmost
    is masked, and of those starting at one place the longest, as a regular expression of
    the forms, longest first, would.
    """

    __slots__ = ("_alphabet", "_fixed", "_index", "_rotating", "_runs", "_short", "_shorts")

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        # window -> (offset of the window in the form, form), leftmost start first, then longest
        self._index: dict[str, list[tuple[int, str]]] = {}
        self._shorts: dict[str, int] = {}  # forms too short to index -> secrets holding them
        self._short: re.Pattern[str] | None = None
        self._alphabet: set[str] = set()
        self._runs: re.Pattern[str] | None = None
        self._fixed: set[str] = set()
        self._rotating: dict[str, set[str]] = {}  # secret -> its forms, oldest first
        for secret in secrets:
            if secret:
                forms = _encodings(secret) - self._fixed
                self._fixed |= forms
                self._add(forms)

    def rotate(self, secret: str | None) -> None:
        """Mask a rotating secret (a new access or refresh token) from now on; forget the
        oldest once more than ``ROTATING_KEPT`` are kept. The work is that of the new
        secret's forms (and the forgotten one's), never of the others."""
        if not secret or secret in self._rotating:
            return
        forms = _encodings(secret) - self._fixed
        self._rotating[secret] = forms
        self._add(forms)
        while len(self._rotating) > ROTATING_KEPT:
            self._remove(self._rotating.pop(next(iter(self._rotating))))

    def _add(self, forms: set[str]) -> None:
        shorts_changed = False
        for form in forms:
            if len(form) < _INDEXED:
                self._shorts[form] = self._shorts.get(form, 0) + 1
                shorts_changed = True
                continue
            # a form two kept secrets share is indexed twice, and removed once per secret
            for offset in range(STRIDE):
                entries = self._index.setdefault(form[offset : offset + ANCHOR], [])
                entries.append((offset, form))
                entries.sort(key=lambda entry: (-entry[0], -len(entry[1])))
            new_chars = set(form) - self._alphabet
            if new_chars:
                self._alphabet |= new_chars
                self._runs = re.compile(
                    "[" + "".join(map(_class_char, sorted(self._alphabet))) + f"]{{{ANCHOR},}}"
                )
        if shorts_changed:
            self._compile_short()

    def _remove(self, forms: set[str]) -> None:
        shorts_changed = False
        for form in forms:
            if len(form) < _INDEXED:
                left = self._shorts.pop(form, 1) - 1
                if left:
                    self._shorts[form] = left
                shorts_changed = True
                continue
            for offset in range(STRIDE):
                window = form[offset : offset + ANCHOR]
                entries = self._index.get(window, [])
                if (offset, form) in entries:
                    entries.remove((offset, form))
                if not entries:
                    self._index.pop(window, None)
        # The alphabet is never shrunk: a character no form holds any more only makes some
        # runs longer, never a form missed (and the tokens of one issuer share their alphabet).
        if shorts_changed:
            self._compile_short()

    def _compile_short(self) -> None:
        # Longest first, so a form that contains another is masked whole.
        alternatives = sorted(self._shorts, key=len, reverse=True)
        self._short = re.compile("|".join(map(re.escape, alternatives))) if alternatives else None

    def __call__(self, text: str) -> str:
        runs = self._runs
        if runs is not None and self._index:
            text = self._mask_indexed(text, runs)
        short = self._short
        return text if short is None else short.sub(_MASK, text)

    def _mask_indexed(self, text: str, runs: re.Pattern[str]) -> str:
        index = self._index
        pieces: list[str] = []
        kept = 0  # text[kept:] is not in pieces yet (and nothing before it may match)
        for run in runs.finditer(text):
            run_start, run_end = run.span()
            position = -(-run_start // STRIDE) * STRIDE  # the first grid point in the run
            while position + ANCHOR <= run_end:
                entries = index.get(text[position : position + ANCHOR])
                if entries is not None:
                    floor = max(kept, run_start)
                    for offset, form in entries:
                        start = position - offset
                        if start >= floor and text.startswith(form, start):
                            pieces += (text[kept:start], _MASK)
                            kept = start + len(form)
                            position = -(-kept // STRIDE) * STRIDE - STRIDE
                            break
                position += STRIDE
        if not pieces:
            return text
        pieces.append(text[kept:])
        return "".join(pieces)

    def __repr__(self) -> str:
        return "Redactor(<secrets hidden>)"


def _class_char(char: str) -> str:
    """``char`` as it stands inside a regular expression's character class."""
    return "\\" + char if char in "\\]^-[" else char


def _no_redaction(text: str) -> str:
    return text


def shorten(text: str, limit: int = QUOTE_LIMIT) -> str:
    """One line of at most ``limit`` characters (``...`` marks a cut)."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


_repr = reprlib.Repr()
_repr.maxlevel = 3  # a value nested 100k deep is shown as [[[...]]], never recursed into
_repr.maxstring = _repr.maxother = _repr.maxlong = 4096  # cut after redaction, not before
_repr.maxlist = _repr.maxdict = _repr.maxtuple = _repr.maxset = 20


def quote_value(value: object, redact: Redactor | None = None, limit: int = QUOTE_LIMIT) -> str:
    """A bad value for an error message: bounded in depth, secrets masked, then cut to
    ``limit`` characters (masking first, so a secret cut in half cannot show)."""
    return shorten((redact or _no_redaction)(_repr.repr(value)), limit)


def kept_body(body: bytes, redact: Redactor | None) -> str:
    """What :attr:`APIError.body` keeps of an answer: text, masked, then cut.

    A JSON body is decoded and every string in it (keys too) masked before it is written back
    (compact, non-ASCII as is), so a secret escaped inside a string inside a string is found
    like one sent plainly. Other bodies are masked as text over their first
    ``8 * BODY_KEPT`` bytes: the kept characters are at most ``4 * BODY_KEPT`` bytes, so only
    a secret longer than that could straddle the cut."""
    text: str | None = None
    if redact is not None and len(body) <= _JSON_BODY_MASKED:
        try:
            text = json.dumps(
                _mask_strings(json.loads(body), redact), ensure_ascii=False, separators=(",", ":")
            )
        except (ValueError, RecursionError):  # not JSON, or nested too deep: mask as text
            text = None
    if text is None:
        text = body[: 8 * BODY_KEPT].decode("utf-8", "replace")
    if redact is not None:
        text = redact(text)
    return text[:BODY_KEPT]


_JSON_BODY_MASKED = 1 << 20
"""Error bodies up to this size are decoded to be masked string by string."""


_NESTED_JSON_DEPTH = 4
"""Levels of JSON inside JSON strings that :func:`kept_body` decodes to mask."""


def _mask_strings(value: object, redact: Redactor, depth: int = 0) -> object:
    if isinstance(value, str):
        return _mask_text(value, redact, depth)
    if isinstance(value, list):
        return [_mask_strings(item, redact, depth) for item in value]
    if isinstance(value, dict):
        return {redact(key): _mask_strings(item, redact, depth) for key, item in value.items()}
    return value


def _mask_text(text: str, redact: Redactor, depth: int) -> str:
    """A string masked; when it is itself JSON (a body quoted in a body), its strings are
    masked too, so a secret escaped twice is found as well."""
    masked = redact(text)
    if depth >= _NESTED_JSON_DEPTH or masked.lstrip()[:1] not in ("{", "[", '"'):
        return masked
    try:
        inner = json.loads(masked)
    except (ValueError, RecursionError):
        return masked
    inner_masked = _mask_strings(inner, redact, depth + 1)
    if inner_masked == inner:
        return masked  # nothing more to hide: keep the text as it was sent
    return json.dumps(inner_masked, ensure_ascii=False, separators=(",", ":"))
