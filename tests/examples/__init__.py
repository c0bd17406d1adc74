"""The programs in ``examples/``, run against the sandbox and type-checked."""
