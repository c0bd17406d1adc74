"""The command line: every option, its checks and its help text (plain text, no markup)."""

from __future__ import annotations

import argparse
import math
import sys
import urllib.parse
from collections.abc import Callable
from typing import Any, NoReturn

from .._version import __version__
from ..sandbox import SandboxConfig
from ._writers import FORMATS

__all__ = ["LISTS", "build_parser", "check_base_url"]

LISTS = ("orders", "products", "package-orders")
"""What ``export`` can write, in the order ``export all`` writes them."""

DESCRIPTION = """\
Bulk exports from the Yeastar Partner Portal and the Linksfield CSSS API, and a local
sandbox to try them on.

examples:
  yeastar-csss export orders --sandbox --output orders.jsonl
  yeastar-csss export products --product-id 13 --format csv --output products.csv
  yeastar-csss export package-orders --order-status 1 --output -
  yeastar-csss export all --output-dir exports --format xlsx
  yeastar-csss sync orders --db postgresql://user:password@host/db
  yeastar-csss sandbox --port 8080

credentials: YEASTAR_CLIENT_ID and YEASTAR_CLIENT_SECRET (orders, products), CSSS_ACCESS_CODE
and CSSS_SECRET (package-orders), or none with --sandbox. YEASTAR_BASE_URL and CSSS_BASE_URL
set the APIs' addresses (--base-url wins).

exit codes: 0 done; 1 API, network or I/O error; 2 usage or configuration; 130 interrupted;
143 terminated (SIGTERM); 141 the reader of the output went away (| head).
"""

EXPORT_DESCRIPTION = """\
Export every record of a list. Files are written beside their name and renamed into place
only when complete, so a failed or interrupted export leaves the old file (or nothing).

formats:
  jsonl  one JSON object per record (default)
  csv    one column per attribute; with --excel, a spreadsheet layout: UTF-8 byte order
         mark, nested objects flattened into columns (end_user_info.company_name ->
         end_user_company_name), times as YYYY-MM-DD HH:MM:SS in UTC ("create_time (UTC)")
  xlsx   an Excel workbook (needs openpyxl: pip install 'yeastar-csss-async[xlsx]'): date
         cells, money as exact numbers, ids as text, the flattened columns, and products'
         services in a sheet of their own ("services", keyed by product_no)

"all" writes orders, products and (with CSSS credentials or --sandbox) package-orders into
--output-dir, one file each (orders.jsonl, products.jsonl, ...).
"""


SYNC_DESCRIPTION = """\
Keep a database in step with a list: every record is upserted page by page as it arrives
(an interrupted sync keeps what it read and can simply be run again), records whose values
changed are rewritten, unchanged ones are not, and only a complete sync marks the records it
did not see as gone. One summary line per list:

  orders: 600 seen, 100 new, 12 changed, 488 unchanged, 50 gone in 3.1s -> sqlite:///...

Tables: orders, products, package_orders (one column per field, plus payload,
first_seen_at, last_seen_at, changed_at, gone_at) and sync_runs. Needs the [sync] extra:
pip install 'yeastar-csss-async[sync]'. A second sync of the same account and list while
one runs is refused.
"""


class _Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line: what is wrong, and where to look."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def _number(parse: Callable[[str], float], low: float, high: float,
            expected: str) -> Callable[[str], Any]:
    """An argparse type: ``parse(text)`` if it lies in [low, high] (never NaN or infinite)."""

    def convert(text: str) -> Any:
        try:
            value = parse(text)
        except ValueError:
            value = math.nan
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text[:80]!r}")
        return value

    return convert


_positive = _number(int, 1, sys.maxsize, "a whole number >= 1")
_non_negative = _number(int, 0, sys.maxsize, "a whole number >= 0")
_seconds = _number(float, 0, sys.float_info.max, "seconds >= 0")
_share = _number(float, 0, 1, "a number from 0 to 1")
_port = _number(int, 0, 65535, "a port from 0 to 65535")


def check_base_url(text: str) -> str:
    """An argparse type: ``text`` if it is an http(s) URL with a host."""
    try:
        parts = urllib.parse.urlsplit(text)
        valid = parts.scheme in ("http", "https") and bool(parts.hostname)
        parts.port  # noqa: B018 - raises ValueError for a port out of range
    except ValueError:
        valid = False
    if not valid:
        raise argparse.ArgumentTypeError(
            f"expected an http:// or https:// URL with a host, got {text[:80]!r}")
    return text


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (kept separate so tests and docs can read it)."""
    parser = _Parser(prog="yeastar-csss", description=DESCRIPTION,
                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}",
                        help="print the version and exit")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_export(commands.add_parser(
        "export", help="export every record of a list to a file or stdout",
        description=EXPORT_DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter))
    _add_sync(commands.add_parser(
        "sync", help="keep a database in step with a list (new, changed, gone records)",
        description=SYNC_DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter))
    _add_sandbox(commands.add_parser(
        "sandbox", help="serve the simulated APIs on loopback until Ctrl-C",
        description="Serve the simulated Yeastar Partner Portal and CSSS API until Ctrl-C "
                    "or SIGTERM, printing its URL and its (public, sandbox-only) "
                    "credentials."))
    return parser


def _add_export(export: argparse.ArgumentParser) -> None:
    export.add_argument("kind", choices=(*LISTS, "all"), metavar="LIST",
                        help="what to export: orders, products, package-orders, or all")
    _add_export_output(export)
    _add_source(export, "export")


def _add_sync(sync: argparse.ArgumentParser) -> None:
    sync.add_argument("kind", choices=(*LISTS, "all"), metavar="LIST",
                      help="what to sync: orders, products, package-orders, or all")
    sync.add_argument("--db", default="sqlite:///yeastar-csss.db", metavar="URL",
                      help="the database: sqlite:///FILE (default sqlite:///yeastar-csss.db, "
                           "in the working directory) or postgresql://USER:PASSWORD@HOST/DB")
    sync.add_argument("--account", default="default", metavar="NAME",
                      help="whose data this is, so one database holds many accounts "
                           "(default: default)")
    _add_source(sync, "sync")


def _add_export_output(export: argparse.ArgumentParser) -> None:
    export.add_argument("--format", choices=FORMATS, default="jsonl",
                        help="jsonl (default), csv or xlsx")
    export.add_argument("--excel", action="store_true",
                        help="csv only: the spreadsheet layout (byte order mark, flattened "
                             "columns, UTC times) that Excel opens correctly")
    export.add_argument("--output", "-o", default=None,
                        help="file to write, or - for stdout (default: stdout; not with all)")
    export.add_argument("--output-dir", default=None, metavar="DIR",
                        help="all only: the directory to write LIST.FORMAT files into")
    export.add_argument("--unordered", action="store_true",
                        help="write records as pages land, not in page order")


def _add_source(export: argparse.ArgumentParser, verb: str) -> None:
    """The options that say where records come from (shared by export and sync)."""
    export.add_argument("--page-size", type=_positive, default=None,
                        help="records per page (default 100; package-orders 50)")
    export.add_argument("--concurrency", type=_positive, default=8,
                        help="requests in flight at most, per API (default 8)")
    export.add_argument("--base-url", type=check_base_url, default=None,
                        help="API base URL (default: the vendor's); with all, the Yeastar "
                             "one (the CSSS API keeps its default)")
    export.add_argument("--product-id", type=_positive, action="append", default=None,
                        help="products only: a product line id, repeatable (default: every "
                             "line the account may see)")
    filters = export.add_argument_group("package-orders filters")
    for name, what in (("device-id", "a device"), ("order-id", "one order"),
                       ("order-status", "an order status code"),
                       ("order-type", "an order type code")):
        filters.add_argument(f"--{name}", default=None, metavar="VALUE",
                             help=f"only the package orders of {what}")
    export.add_argument("--quiet", "-q", action="store_true",
                        help="no progress line and no summary line")
    export.add_argument("--verbose", "-v", action="store_true",
                        help="also log each retry on stderr (which list and page, and why)")
    export.add_argument("--sandbox", action="store_true",
                        help=f"{verb} from the embedded sandbox (no credentials needed)")
    sizes = export.add_argument_group("sandbox (with --sandbox)")
    sizes.add_argument("--sandbox-size", type=_positive, default=None, metavar="N",
                       help=f"records in each {verb}ed sandbox list (products: per line)")
    sizes.add_argument("--sandbox-latency", type=_seconds, default=0.0, metavar="SECONDS",
                       help="seconds added to every sandbox request (default 0)")
    sizes.add_argument("--sandbox-fault-rate", type=_share, default=0.0, metavar="SHARE",
                       help="share of sandbox requests that fail transiently, 0 to 1 "
                            "(default 0)")
    sizes.add_argument("--sandbox-revision", type=_non_negative, default=0, metavar="N",
                       help="serve the sandbox data N revision steps later; each step "
                            "removes about 1%%, changes about 3%% and adds about 2%% of "
                            "every list, the same way every time (default 0)")


def _add_sandbox(sandbox: argparse.ArgumentParser) -> None:
    defaults = SandboxConfig()
    sandbox.add_argument("--host", default="127.0.0.1",
                         help="address to listen on (default 127.0.0.1)")
    sandbox.add_argument("--port", type=_port, default=8080,
                         help="port to listen on, 0 for any free one (default 8080)")
    sandbox.add_argument("--latency", type=_seconds, default=0.0, metavar="SECONDS",
                         help="seconds added to every request (default 0)")
    sandbox.add_argument("--fault-rate", type=_share, default=0.0, metavar="SHARE",
                         help="share of requests that fail transiently (5xx, 429, dropped "
                              "connections), 0 to 1 (default 0)")
    sandbox.add_argument("--orders", type=_positive, default=defaults.orders, metavar="N",
                         help=f"orders served (default {defaults.orders})")
    sandbox.add_argument("--products-per-line", type=_positive,
                         default=defaults.products_per_line, metavar="N",
                         help=f"products per product line (default "
                              f"{defaults.products_per_line})")
    sandbox.add_argument("--package-orders", type=_positive,
                         default=defaults.package_orders, metavar="N",
                         help=f"CSSS package orders served (default "
                              f"{defaults.package_orders})")
    sandbox.add_argument("--revision", type=_non_negative, default=defaults.revision,
                         metavar="N",
                         help="serve the data N revision steps later; each step removes "
                              "about 1%%, changes about 3%% and adds about 2%% of every list, "
                              f"the same way every time (default {defaults.revision})")
    sandbox.add_argument("--stats", action="store_true",
                         help="print the requests served, faults injected and token grants "
                              "when stopped")
