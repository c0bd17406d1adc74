"""The pytest plugin (``yeastar_csss_async.pytest_plugin``) as a user's test suite meets it."""
