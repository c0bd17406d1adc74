"""Compiling the functions the library writes for each model (as attrs and cattrs write
theirs): the source is registered in :mod:`linecache` under a unique file name, so tracebacks,
``pdb`` and ``inspect.getsource`` show the generated lines."""

from __future__ import annotations

import itertools
import linecache
from typing import Any

__all__ = ["compile_function"]

_serial = itertools.count(1)


def compile_function(source: str, name: str, label: str, namespace: dict[str, Any]) -> Any:
    """Compile ``source`` (which defines function ``name``) with ``namespace`` as its
    globals, and return the function. ``label`` names it in tracebacks:
    ``<yeastar_csss_async generated LABEL>`` (with a serial number once the label is
    taken)."""
    filename = f"<yeastar_csss_async generated {label}>"
    if filename in linecache.cache:
        filename = f"<yeastar_csss_async generated {label} #{next(_serial)}>"
    if not source.endswith("\n"):
        source += "\n"
    code = compile(source, filename, "exec")
    linecache.cache[filename] = (len(source), None, source.splitlines(keepends=True), filename)
    exec(code, namespace)
    return namespace[name]
