"""What several test modules share: small servers, seed pages, probes, throwaway services.

Import from the module that holds a helper (``from tests._support.servers import
serve_app``); fixtures live in ``tests/conftest.py``.
"""
