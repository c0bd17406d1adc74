"""``python -m yeastar_csss_async``: the same as the ``yeastar-csss`` command."""

from .cli import main

raise SystemExit(main())
