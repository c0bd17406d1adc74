"""``yeastar-csss sandbox``: serve the simulated APIs on loopback until Ctrl-C."""

from __future__ import annotations

import argparse
import contextlib

import attrs

from ..sandbox import (
    SANDBOX_ACCESS_CODE,
    SANDBOX_CLIENT_ID,
    SANDBOX_CLIENT_SECRET,
    SANDBOX_SECRET,
    Sandbox,
    SandboxConfig,
    run_sandbox,
)

__all__ = ["format_stats", "run_sandbox_command"]


async def run_sandbox_command(args: argparse.Namespace) -> int:
    """Serve the sandbox with the options of `sandbox`; print its URL and credentials."""
    config = SandboxConfig(
        latency=args.latency,
        fault_rate=args.fault_rate,
        orders=args.orders,
        products_per_line=args.products_per_line,
        package_orders=args.package_orders,
        revision=args.revision,
    )
    serving: list[Sandbox] = []

    def ready(sandbox: Sandbox) -> None:
        serving.append(sandbox)
        print(
            f"sandbox serving on {sandbox.base_url} (Ctrl-C stops it)\n"
            f"  export YEASTAR_CLIENT_ID={SANDBOX_CLIENT_ID} "
            f"YEASTAR_CLIENT_SECRET={SANDBOX_CLIENT_SECRET} "
            f"YEASTAR_BASE_URL={sandbox.base_url}\n"
            f"  export CSSS_ACCESS_CODE={SANDBOX_ACCESS_CODE} CSSS_SECRET={SANDBOX_SECRET} "
            f"CSSS_BASE_URL={sandbox.base_url}\n"
            f"  yeastar-csss export all --output-dir exports",
            flush=True,
        )

    try:
        await run_sandbox(config, host=args.host, port=args.port, on_ready=ready)
    finally:
        if args.stats and serving:
            with contextlib.suppress(OSError, ValueError):  # stdout gone: nothing to say
                print(format_stats(serving[0].stats), flush=True)
    return 0


def format_stats(stats: attrs.AttrsInstance) -> str:
    """The sandbox's counters (any attrs instance), one ``name: value`` line each; clock
    readings (``*_at``) are left out."""
    lines = ["sandbox stats:"]
    for field in attrs.fields(type(stats)):
        if field.name.endswith("_at"):
            continue
        value = getattr(stats, field.name)
        if isinstance(value, dict):
            text = ", ".join(f"{key} {count}" for key, count in sorted(value.items())) or "-"
        elif isinstance(value, set | frozenset):
            text = ", ".join(sorted(map(str, value))) or "-"
        else:
            text = str(value)
        lines.append(f"  {field.name}: {text}")
    return "\n".join(lines)
