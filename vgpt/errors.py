"""One base class for the problems a user can fix.

The command line prints a `UserError` as one line (`vgpt train: error: ...`)
and exits with 2; every other exception is a bug somewhere (ours, torch's,
transformers') and keeps its traceback.
"""


class UserError(Exception):
    """Bad input, a missing file, an unreachable Hub: the message says what and where."""


class UsageError(UserError):
    """A command-line argument names something that is not there."""
