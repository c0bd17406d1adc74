"""JSON -> model structuring: cattrs converters, a generated fast path, located errors.

The hot path is one generated function per model class (``_fast_structure``), registered on
a cattrs converter. When a record does not fit, a second, detailed cattrs converter built from
the same field plans (``_schema``) and scalar hooks (``_scalars``) structures it again, only to
say *where* it went wrong: the path is given in JSON keys (``results[3].createTime``), not
attribute names.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any, TypeVar, get_args

import attrs
import cattrs
from cattrs.errors import ClassValidationError, IterableValidationError
from cattrs.gen import make_dict_structure_fn, override

from ._errors import ResponseFormatError
from ._fast_structure import structure_fn
from ._redaction import QUOTE_LIMIT, Redactor, shorten
from ._scalars import (
    BadValue,
    csss_date,
    enum_hook,
    epoch_ms,
    json_list,
    opt_decimal,
    opt_int,
    opt_str,
    reject,
    required_int,
    required_str,
    to_decimal,
    to_int,
    to_str,
)
from ._schema import FALLBACK_KEYS, MODELS, field_plans, json_key

__all__ = ["json_key", "structure_items", "structure_one"]

T = TypeVar("T")

_OPTIONAL_HOOKS: dict[type[Any], Callable[[object, object], object]] = {
    str: opt_str,
    int: opt_int,
    Decimal: opt_decimal,
    datetime: epoch_ms,
}


def _optional_scalar(tp: object) -> type[Any] | None:
    """``X`` of ``X | None`` for the scalars we structure ourselves, else None."""
    args = get_args(tp)
    if len(args) == 2 and type(None) in args:
        inner = args[0] if args[1] is type(None) else args[1]
        if inner in _OPTIONAL_HOOKS:
            return inner  # type: ignore[no-any-return]
    return None


def _detailed_converter() -> cattrs.Converter:
    """The converter that locates errors: cattrs' generated hooks with detailed validation,
    over the same field plans and scalar hooks as the fast path."""
    converter = cattrs.Converter(detailed_validation=True, forbid_extra_keys=False)
    for scalar, scalar_hook in (
        (str, to_str),
        (int, to_int),
        (Decimal, to_decimal),
        (datetime, epoch_ms),
    ):
        converter.register_structure_hook(scalar, scalar_hook)
    converter.register_structure_hook_factory(
        lambda tp: _optional_scalar(tp) is not None,
        lambda tp: _OPTIONAL_HOOKS[_optional_scalar(tp)],  # type: ignore[index]
    )
    for cls in MODELS:
        overrides: dict[str, Any] = {}
        for plan in field_plans(cls):
            hook: Callable[[object, object], object] | None = None
            if plan.kind == "csss_date":
                hook = csss_date
            elif plan.kind == "json_list":
                hook = json_list
            elif plan.kind == "enum":
                assert plan.target is not None
                hook = enum_hook(plan.target)
            elif plan.kind == "model_list":
                hook = _list_of(converter, plan.target)
            elif plan.required:
                hook = required_int if plan.kind == "int" else required_str
            overrides[plan.name] = override(rename=plan.key, struct_hook=hook)
        base = make_dict_structure_fn(cls, converter, **overrides)
        converter.register_structure_hook(cls, _mapping_guard(cls, base))
    return converter


def _list_of(converter: cattrs.Converter, item: Any) -> Callable[[object, object], object]:
    def structure(value: object, _: object = None) -> list[Any]:
        if value is None:
            return []
        if not isinstance(value, list):
            raise reject(value, "a list")
        return converter.structure(value, list[item])

    return structure


def _mapping_guard(
    cls: type[Any], base: Callable[[Mapping[str, Any], Any], Any]
) -> Callable[[object, Any], Any]:
    """Reject non-objects with a clear error, read the fallback keys (``deviceId``), and give
    an absent required key as null, so its hook says what is missing and where."""
    fallbacks = FALLBACK_KEYS.get(cls, {})
    required = [plan.key for plan in field_plans(cls) if plan.required]

    def structure(value: object, tp: Any) -> Any:
        if not isinstance(value, Mapping):
            raise reject(value, "a JSON object")
        for name, second in fallbacks.items():
            first = json_key(cls, name)
            if value.get(first) is None and value.get(second) is not None:
                value = {**value, first: value[second]}
        if any(key not in value for key in required):
            value = {**dict.fromkeys(required), **value}
        return base(value, tp)

    return structure


def _fast_converter() -> cattrs.Converter:
    """The hot-path converter: one generated function per model (see ``_fast_structure``)."""
    converter = cattrs.Converter(forbid_extra_keys=False)
    for cls in MODELS:
        converter.register_structure_hook(cls, structure_fn(cls))
    return converter


_FAST = _fast_converter()
_DETAILED = _detailed_converter()


# --- error paths ----------------------------------------------------------------------------


def _first_failure(exc: BaseException, cls: Any) -> tuple[str, BaseException]:
    """Walk cattrs' exception groups down to the first leaf; return (path, leaf)."""
    if isinstance(exc, ClassValidationError | IterableValidationError):
        for sub in exc.exceptions:
            step, next_cls = "", None
            for note in getattr(sub, "__notes__", ()):
                name = getattr(note, "name", None)
                if name is not None and attrs.has(cls):
                    step = "." + json_key(cls, name)
                    next_cls = getattr(note, "type", None)
                    break
                index = getattr(note, "index", None)
                if index is not None:
                    step = f"[{index}]"
                    next_cls = getattr(note, "type", None)
                    break
            inner_path, leaf = _first_failure(sub, _model_in(next_cls))
            return step + inner_path, leaf
    return "", exc


def _model_in(tp: Any) -> Any:
    """The attrs class inside ``X | None`` or ``list[X]``, if any."""
    if tp is not None and attrs.has(tp):
        return tp
    for arg in get_args(tp):
        if attrs.has(arg):
            return arg
    return None


def _describe_leaf(leaf: BaseException, redact: Redactor | None) -> str:
    if isinstance(leaf, BadValue):
        return leaf.describe(redact)
    text = str(leaf) or type(leaf).__name__
    return shorten(redact(text) if redact is not None else text, 2 * QUOTE_LIMIT)


def _format_error(
    document: object, cls: type[Any], path: str, redact: Redactor | None
) -> ResponseFormatError:
    """The error for a record that did not fit: where (in JSON keys) and why, redacted."""
    failure: tuple[str, BaseException] | None = None
    try:
        _DETAILED.structure(document, cls)
    except Exception as exc:
        failure = _first_failure(exc, cls)
    # Built outside the handler, so nothing chains the cattrs errors (they hold the values).
    if failure is None:
        return ResponseFormatError(f"{cls.__name__}: value did not fit", path=path)
    sub_path, leaf = failure
    return ResponseFormatError(
        f"{cls.__name__}: {_describe_leaf(leaf, redact)}", path=path + sub_path
    )


def structure_one(
    document: object, cls: type[T], *, path: str, redact: Redactor | None = None
) -> T:
    """Structure one JSON object into ``cls``; raise ResponseFormatError naming the path."""
    try:
        return _FAST.structure(document, cls)
    except Exception:
        pass
    raise _format_error(document, cls, path, redact)


def structure_items(
    documents: object, cls: type[T], *, path: str, redact: Redactor | None = None
) -> list[T]:
    """Structure a JSON list of objects; ``None`` is an empty list.

    A record that does not fit raises :class:`ResponseFormatError` naming its path
    (``result.results[3].createTime``) and quoting the bad value, secrets masked by ``redact``.
    """
    if documents is None:
        return []
    if not isinstance(documents, list):
        raise ResponseFormatError(
            f"expected a list of {cls.__name__}, got {type(documents).__name__}", path=path
        )
    structure = _FAST.get_structure_hook(cls)
    try:
        return [structure(document, cls) for document in documents]
    except Exception:
        pass
    for index, document in enumerate(documents):  # rare: find which record failed, and where
        failed = False
        try:
            structure(document, cls)
        except Exception:
            failed = True
        if failed:
            raise _format_error(document, cls, f"{path}[{index}]", redact)
    raise ResponseFormatError(f"{cls.__name__}: value did not fit", path=path)  # pragma: no cover
