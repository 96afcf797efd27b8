"""The one exception type for mistakes a user can fix.

The CLI prints a UserError as a single line and exits non-zero, without a traceback;
anything else is a bug and keeps its traceback.
"""


class UserError(Exception):
    """A problem with the user's input: says what, where, and what to do."""
