"""One test module per core module of the package: its promises, tested directly or through
a client against a mock (aioresponses) or a small hand-written server on 127.0.0.1."""
