"""The library's logger: everything it logs goes to ``yeastar_csss_async`` (requests, retries
and token renewals at DEBUG), or to a child of it named after the layer (``.tasks``,
``.redis``, ``.cli``). No record carries a secret: texts are masked before they are logged."""

from __future__ import annotations

import logging

__all__ = ["LOGGER_NAME", "logger"]

LOGGER_NAME = "yeastar_csss_async"
logger = logging.getLogger(LOGGER_NAME)
