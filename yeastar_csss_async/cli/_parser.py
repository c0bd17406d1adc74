"""The command line: every option, its checks and its help text (plain text, no markup)."""

from __future__ import annotations

import argparse
import math
import sys
import textwrap
import urllib.parse
from collections.abc import Callable
from typing import Any, NoReturn

from .._apis import ACCOUNTS_ENV, APIS, DB_ENV, REDIS_ENV
from .._lists import LISTS as _LIST_SPECS
from .._version import __version__
from ..exports import FORMATS
from ..sandbox import SandboxConfig
from ._ops_parser import OPS_HELP, add_result, add_status

__all__ = ["LISTS", "build_parser", "check_base_url"]

LISTS = tuple(_LIST_SPECS)
"""The list names the commands take, in the order ``export all`` writes them."""
_LIST_CHOICES = ", ".join(LISTS)

DESCRIPTION = """\
Bulk exports from the Yeastar Partner Portal and the Linksfield CSSS API, and a local
sandbox to try them on.

examples:
  yeastar-csss export orders --sandbox --output orders.jsonl
  yeastar-csss export products --product-id 13 --format csv --output products.csv
  yeastar-csss export package-orders --order-status 1 --output -
  yeastar-csss export all --output-dir exports --format xlsx
  yeastar-csss sync orders --db postgresql://user:password@host/db
  yeastar-csss worker --redis redis://localhost:6379/0 --accounts accounts.toml --db URL
  yeastar-csss enqueue sync orders --account acme --redis redis://localhost:6379/0
  yeastar-csss scheduler --accounts accounts.toml --redis redis://localhost:6379/0
  yeastar-csss result TASK_ID --redis redis://localhost:6379/0
  yeastar-csss status --redis redis://localhost:6379/0
  yeastar-csss sandbox --port 8080

{credentials}

{environment}

exit codes: 0 done; 1 API, network or I/O error (result: the job failed); 2 usage or
configuration; 75 try again later (sync: another sync of the account and list is running;
result and enqueue --wait: the job has not finished); 130 interrupted; 143 terminated
(SIGTERM); 141 the reader of the output went away (| head).
""".format(
    environment=textwrap.fill(
        f"{DB_ENV}, {REDIS_ENV} and {ACCOUNTS_ENV} are the defaults of --db, --redis and "
        "--accounts of every command that takes them (an option given wins), so no password "
        "has to be on a command line.",
        width=92,
    ),
    credentials=textwrap.fill(
        "credentials: "
        + "; ".join(
            f"{' and '.join(api.credential_env)} "
            f"({', '.join(spec.name for spec in _LIST_SPECS.values() if spec.api is api)})"
            for api in APIS.values()
        )
        + ", or none with --sandbox. "
        + " and ".join(api.base_url_env for api in APIS.values())
        + " set the APIs' addresses (--base-url wins).",
        width=92,
    ),
)

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
one runs is refused with exit code 75 (EX_TEMPFAIL: try again later); other failures exit 1.
"""


WORKER_DESCRIPTION = """\
Run sync and export jobs queued in Redis (taskiq; needs the [workers] extra: pip install
'yeastar-csss-async[workers]') until SIGTERM or Ctrl-C, then let running jobs finish and
exit 0. Jobs name an account of --accounts and a list, never a credential. Every client is
built with a Redis coordinator, so all workers share each account's token, concurrency
limit and 429 pause.

accounts file (TOML): per account, the NAMES of the environment variables holding its
credentials:

  [accounts.acme]
  yeastar_client_id_env = "ACME_YEASTAR_CLIENT_ID"
  yeastar_client_secret_env = "ACME_YEASTAR_CLIENT_SECRET"
  csss_access_code_env = "ACME_CSSS_ACCESS_CODE"   # optional
  csss_secret_env = "ACME_CSSS_SECRET"             # optional
  base_url = "https://..."                          # optional, both APIs
  max_concurrency = 8                               # optional, for the whole fleet
  timeout = 30                                      # optional, seconds per request attempt

A variable that is not set fails that account's jobs, naming the variable.
"""

ENQUEUE_DESCRIPTION = """\
Queue one job for the workers (yeastar-csss worker) and print its task id. The job holds
the account name and the list (and for export the file name), never a credential.

examples:
  yeastar-csss enqueue sync orders --account acme --redis redis://localhost:6379/0
  yeastar-csss enqueue export products --account acme --output acme-products.jsonl \\
      --redis redis://localhost:6379/0
  yeastar-csss enqueue sync orders --account acme --accounts accounts.toml --wait 600

With --accounts (or YEASTAR_CSSS_ACCOUNTS), an account the file does not define is refused
(exit 2) and nothing is queued. With --wait, the task id is printed, then the job's summary
line once it is done: exit 0 done, 1 the job failed (its error on stderr), 75 not finished
within SECONDS (--wait alone waits as long as it takes).
"""

SCHEDULER_DESCRIPTION = """\
Queue sync jobs for the workers (yeastar-csss worker) whenever a schedule of the accounts
file is due, until SIGTERM or Ctrl-C (exit 0). Needs the [workers] extra. Schedules are
tables of an account, any number each; cron rules have 5 fields and are read in UTC:

  [[accounts.acme.schedule]]
  list = "orders"          # orders, products or package-orders
  cron = "*/15 * * * *"    # minute hour day-of-month month day-of-week (0 = Sunday)

Run one scheduler per node: any number may run at once, and each due job is queued exactly
once (the first scheduler to claim the due time in Redis queues it; the others skip it). A
scheduler that starts or wakes late queues only the latest due time of the last minute, if
no scheduler did. A send that takes more than 10 seconds is given up and logged; a Redis
failure ends the scheduler (exit 1).
"""


class _Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line: what is wrong, and where to look."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def _number(
    parse: Callable[[str], float], low: float, high: float, expected: str
) -> Callable[[str], Any]:
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
_positive_seconds = _number(float, 0.001, sys.float_info.max, "seconds > 0")
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
            f"expected an http:// or https:// URL with a host, got {text[:80]!r}"
        )
    return text


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (kept separate so tests and docs can read it)."""
    parser = _Parser(
        prog="yeastar-csss",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--version",
        action="version",
        version=f"%(prog)s {__version__}",
        help="print the version and exit",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_export(
        commands.add_parser(
            "export",
            help="export every record of a list to a file or stdout",
            description=EXPORT_DESCRIPTION,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
    )
    _add_sync(
        commands.add_parser(
            "sync",
            help="keep a database in step with a list (new, changed, gone records)",
            description=SYNC_DESCRIPTION,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
    )
    _add_sandbox(
        commands.add_parser(
            "sandbox",
            help="serve the simulated APIs on loopback until Ctrl-C",
            description="Serve the simulated Yeastar Partner Portal and CSSS API until Ctrl-C "
            "or SIGTERM, printing its URL and its (public, sandbox-only) "
            "credentials.",
        )
    )
    _add_worker(
        commands.add_parser(
            "worker",
            help="run sync and export jobs from Redis (taskiq) until SIGTERM",
            description=WORKER_DESCRIPTION,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
    )
    _add_enqueue(
        commands.add_parser(
            "enqueue",
            help="queue one sync or export job for the workers; prints its id",
            description=ENQUEUE_DESCRIPTION,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
    )
    _add_scheduler(
        commands.add_parser(
            "scheduler",
            help="queue the accounts file's scheduled syncs until SIGTERM (one per node)",
            description=SCHEDULER_DESCRIPTION,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
    )
    for name, add in (("result", add_result), ("status", add_status)):
        ops = commands.add_parser(name, **OPS_HELP[name])  # type: ignore[arg-type]
        _add_jobs_queue(ops)
        add(ops)
    return parser


def check_redis_url(text: str) -> str:
    """An argparse type: ``text`` if it is a redis://, rediss:// or unix:// URL."""
    scheme = urllib.parse.urlsplit(text).scheme if "://" in text else ""
    if scheme not in ("redis", "rediss", "unix"):
        raise argparse.ArgumentTypeError(
            f"expected a redis://, rediss:// or unix:// URL, got {text.split('@')[-1][:80]!r}"
        )  # no password in the message
    return text


def _add_jobs_queue(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--redis",
        default=None,
        type=check_redis_url,
        metavar="URL",
        help="the Redis the jobs go through: redis://[:PASSWORD@]HOST:PORT/DB "
        f"(default: ${REDIS_ENV})",
    )
    parser.add_argument(
        "--queue",
        default="yeastar-csss:jobs",
        metavar="NAME",
        help="the Redis stream of the jobs (default yeastar-csss:jobs)",
    )


def _add_worker(worker: argparse.ArgumentParser) -> None:
    _add_jobs_queue(worker)
    worker.add_argument(
        "--accounts",
        default=None,
        metavar="FILE",
        help=f"the accounts file (TOML; see above; default: ${ACCOUNTS_ENV})",
    )
    worker.add_argument(
        "--db",
        default=None,
        metavar="URL",
        help="the database syncs write to: sqlite:///FILE or postgresql://USER:PASSWORD@HOST/DB "
        f"(default: ${DB_ENV})",
    )
    worker.add_argument(
        "--workers",
        type=_positive,
        default=1,
        metavar="N",
        help="worker processes to run (default 1)",
    )
    worker.add_argument(
        "--jobs",
        type=_positive,
        default=4,
        metavar="N",
        help="jobs each process runs at once (default 4)",
    )
    worker.add_argument(
        "--namespace",
        default="yeastar-csss",
        metavar="NAME",
        help="key prefix of the shared token, limits and pauses in Redis; "
        "the same for every worker of one fleet (default yeastar-csss)",
    )
    worker.add_argument(
        "--export-dir",
        default=".",
        metavar="DIR",
        help="where export jobs write their files (default: the working "
        "directory); a job cannot write outside it",
    )
    worker.add_argument(
        "--shutdown-timeout",
        type=_seconds,
        default=30.0,
        metavar="SECONDS",
        help="on SIGTERM, how long running jobs may take to finish before "
        "they are cancelled and handed back for another worker (default 30)",
    )
    worker.add_argument(
        "--claim-timeout",
        type=_positive_seconds,
        default=30.0,
        metavar="SECONDS",
        help="a job whose worker stopped renewing its claim (killed, lost) for this long is "
        "taken over by another worker; a running job's worker renews it every quarter of "
        "this (default 30; the same for every worker of one queue)",
    )
    _add_worker_observability(worker)


def _add_worker_observability(worker: argparse.ArgumentParser) -> None:
    worker.add_argument(
        "--metrics-port",
        type=_port,
        default=None,
        metavar="PORT",
        help="serve Prometheus metrics at http://HOST:PORT/metrics (0: any free port, "
        "printed at start); with --workers N, one port for all N processes",
    )
    worker.add_argument(
        "--metrics-host",
        default="127.0.0.1",
        metavar="HOST",
        help="the address the metrics listen on (default 127.0.0.1)",
    )
    worker.add_argument(
        "--log-format",
        choices=("text", "json"),
        default="text",
        help="stderr lines as text or as one JSON object each; every line has its UTC time "
        "and level, a job's lines its task id, account and list (default text)",
    )


def _add_scheduler(scheduler: argparse.ArgumentParser) -> None:
    scheduler.add_argument(
        "--accounts",
        required=True,
        metavar="FILE",
        help="the accounts file (TOML) with the schedules; the workers' file",
    )
    _add_jobs_queue(scheduler)


def _add_enqueue(enqueue: argparse.ArgumentParser) -> None:
    actions = enqueue.add_subparsers(dest="action", required=True, metavar="JOB")
    sync = actions.add_parser("sync", help="sync a list of an account into the workers' database")
    export = actions.add_parser(
        "export",
        help="export a list of an account to a JSON lines file in the workers' --export-dir",
    )
    for parser, verb in ((sync, "sync"), (export, "export")):
        parser.add_argument(
            "kind",
            choices=LISTS,
            metavar="LIST",
            help=f"what to {verb}: {_LIST_CHOICES}",
        )
        parser.add_argument(
            "--account",
            required=True,
            metavar="NAME",
            help="an account of the workers' accounts file",
        )
        _add_jobs_queue(parser)
        parser.add_argument(
            "--accounts",
            default=None,
            metavar="FILE",
            help="refuse an account this accounts file does not define (default: "
            f"${ACCOUNTS_ENV}; without either, any name is queued)",
        )
        parser.add_argument(
            "--wait",
            nargs="?",
            type=_seconds,
            const=math.inf,
            default=None,
            metavar="SECONDS",
            help="then wait for the job and print its summary line: exit 0 done, 1 failed, "
            "75 not finished within SECONDS (default: as long as it takes)",
        )
    export.add_argument(
        "--output",
        "-o",
        required=True,
        metavar="FILE",
        help="file name inside the workers' --export-dir",
    )


def _add_export(export: argparse.ArgumentParser) -> None:
    export.add_argument(
        "kind",
        choices=(*LISTS, "all"),
        metavar="LIST",
        help=f"what to export: {_LIST_CHOICES}, or all",
    )
    _add_export_output(export)
    _add_source(export, "export")


def _add_sync(sync: argparse.ArgumentParser) -> None:
    sync.add_argument(
        "kind",
        choices=(*LISTS, "all"),
        metavar="LIST",
        help=f"what to sync: {_LIST_CHOICES}, or all",
    )
    sync.add_argument(
        "--db",
        default=None,
        metavar="URL",
        help="the database: sqlite:///FILE or postgresql://USER:PASSWORD@HOST/DB "
        f"(default: ${DB_ENV}, else sqlite:///yeastar-csss.db in the working directory)",
    )
    sync.add_argument(
        "--account",
        default="default",
        metavar="NAME",
        help="whose data this is, so one database holds many accounts (default: default)",
    )
    _add_source(sync, "sync")


def _add_export_output(export: argparse.ArgumentParser) -> None:
    export.add_argument(
        "--format", choices=FORMATS, default="jsonl", help="jsonl (default), csv or xlsx"
    )
    export.add_argument(
        "--excel",
        action="store_true",
        help="csv only: the spreadsheet layout (byte order mark, flattened "
        "columns, UTC times) that Excel opens correctly",
    )
    export.add_argument(
        "--output",
        "-o",
        default=None,
        help="file to write, or - for stdout (default: stdout; not with all)",
    )
    export.add_argument(
        "--output-dir",
        default=None,
        metavar="DIR",
        help="all only: the directory to write LIST.FORMAT files into",
    )
    export.add_argument(
        "--unordered", action="store_true", help="write records as pages land, not in page order"
    )


def _add_source(export: argparse.ArgumentParser, verb: str) -> None:
    """The options that say where records come from (shared by export and sync)."""
    export.add_argument(
        "--page-size",
        type=_positive,
        default=None,
        help="records per page (default 100; package-orders 50)",
    )
    export.add_argument(
        "--concurrency",
        type=_positive,
        default=8,
        help="requests in flight at most, per API (default 8)",
    )
    export.add_argument(
        "--base-url",
        type=check_base_url,
        default=None,
        help="API base URL (default: the vendor's); with all, the Yeastar "
        "one (the CSSS API keeps its default)",
    )
    export.add_argument(
        "--product-id",
        type=_positive,
        action="append",
        default=None,
        help="products only: a product line id, repeatable (default: every "
        "line the account may see)",
    )
    filters = export.add_argument_group("package-orders filters")
    for name, what in (
        ("device-id", "a device"),
        ("order-id", "one order"),
        ("order-status", "an order status code"),
        ("order-type", "an order type code"),
    ):
        filters.add_argument(
            f"--{name}", default=None, metavar="VALUE", help=f"only the package orders of {what}"
        )
    export.add_argument(
        "--quiet", "-q", action="store_true", help="no progress line and no summary line"
    )
    export.add_argument(
        "--verbose",
        "-v",
        action="store_true",
        help="also log each retry on stderr (which list and page, and why)",
    )
    export.add_argument(
        "--sandbox",
        action="store_true",
        help=f"{verb} from the embedded sandbox (no credentials needed)",
    )
    sizes = export.add_argument_group("sandbox (with --sandbox)")
    sizes.add_argument(
        "--sandbox-size",
        type=_positive,
        default=None,
        metavar="N",
        help=f"records in each {verb}ed sandbox list (products: per line)",
    )
    sizes.add_argument(
        "--sandbox-latency",
        type=_seconds,
        default=0.0,
        metavar="SECONDS",
        help="seconds added to every sandbox request (default 0)",
    )
    sizes.add_argument(
        "--sandbox-fault-rate",
        type=_share,
        default=0.0,
        metavar="SHARE",
        help="share of sandbox requests that fail transiently, 0 to 1 (default 0)",
    )
    sizes.add_argument(
        "--sandbox-revision",
        type=_non_negative,
        default=0,
        metavar="N",
        help="serve the sandbox data N revision steps later; each step "
        "removes about 1%%, changes about 3%% and adds about 2%% of "
        "every list, the same way every time (default 0)",
    )


def _add_sandbox(sandbox: argparse.ArgumentParser) -> None:
    defaults = SandboxConfig()
    sandbox.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)"
    )
    sandbox.add_argument(
        "--port",
        type=_port,
        default=8080,
        help="port to listen on, 0 for any free one (default 8080)",
    )
    sandbox.add_argument(
        "--latency",
        type=_seconds,
        default=0.0,
        metavar="SECONDS",
        help="seconds added to every request (default 0)",
    )
    sandbox.add_argument(
        "--fault-rate",
        type=_share,
        default=0.0,
        metavar="SHARE",
        help="share of requests that fail transiently (5xx, 429, dropped "
        "connections), 0 to 1 (default 0)",
    )
    sandbox.add_argument(
        "--orders",
        type=_positive,
        default=defaults.orders,
        metavar="N",
        help=f"orders served (default {defaults.orders})",
    )
    sandbox.add_argument(
        "--products-per-line",
        type=_positive,
        default=defaults.products_per_line,
        metavar="N",
        help=f"products per product line (default {defaults.products_per_line})",
    )
    sandbox.add_argument(
        "--package-orders",
        type=_positive,
        default=defaults.package_orders,
        metavar="N",
        help=f"CSSS package orders served (default {defaults.package_orders})",
    )
    sandbox.add_argument(
        "--revision",
        type=_non_negative,
        default=defaults.revision,
        metavar="N",
        help="serve the data N revision steps later; each step removes "
        "about 1%%, changes about 3%% and adds about 2%% of every list, "
        f"the same way every time (default {defaults.revision})",
    )
    sandbox.add_argument(
        "--stats",
        action="store_true",
        help="print the requests served, faults injected and token grants when stopped",
    )
