"""The simulated servers (``yeastar_csss_async.sandbox``): answers, signing, lists, revisions."""
