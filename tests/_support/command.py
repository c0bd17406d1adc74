"""The ``yeastar-csss`` command as the CLI tests run it: a subprocess with a clean environment."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from yeastar_csss_async.sandbox import SandboxConfig, SandboxData

COMMAND = [sys.executable, "-m", "yeastar_csss_async"]
CLEAN_ENV = {k: v for k, v in os.environ.items() if not k.startswith(("YEASTAR_", "CSSS_"))}


def run(
    *args: str, env: dict[str, str] | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*COMMAND, *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=env or CLEAN_ENV,
        cwd=cwd,
        check=False,
        encoding="utf-8",
    )


def default_data() -> SandboxData:
    config = SandboxConfig()
    return SandboxData(
        seed=config.seed,
        orders=config.orders,
        products_per_line=config.products_per_line,
        package_orders=config.package_orders,
        generated=False,
    )
