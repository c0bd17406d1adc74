"""The tests, laid out by what they test.

* ``unit/``: one module per core module of the package (``test_paging.py`` for
  ``_paging.py``, ...): its promises, tested directly or through a client against a mock
  (aioresponses) or a small hand-written server on 127.0.0.1.
* ``clients/``: the clients end to end against the sandbox on 127.0.0.1.
* ``hostile/``: hostile servers and careless callers against the README's guarantees.
* ``cli/``, ``sync/``, ``tasks/``, ``redis/``, ``sandbox/``, ``plugin/``, ``examples/``: one
  folder per layer of the package (and for ``examples/``).
* ``harness/``: the test harness's own services (the throwaway PostgreSQL server).
* ``_support/``: what several test modules share (servers, seeds, throwaway services);
  ``conftest.py`` holds the fixtures, ``data/`` the seed pages.
"""
