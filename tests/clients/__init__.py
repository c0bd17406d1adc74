"""The clients end to end against the sandbox on 127.0.0.1, and at the HTTP boundary."""
