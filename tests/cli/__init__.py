"""The ``yeastar-csss`` command (``yeastar_csss_async.cli``): subcommands, outputs, writers."""
