"""Errors a person can act on: one line, the file (and row), what is wrong, what to do."""


class InputError(Exception):
    """Bad input or usage (exit code 2): a missing path, an unreadable shard, a wrong column."""


class BuildError(Exception):
    """The build itself failed (exit code 1): a broken contract, a failed stage."""
