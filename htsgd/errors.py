"""Errors that are the user's to fix: the command line prints their message alone, without a traceback."""


class UserError(Exception):
    """Bad input, a missing file or a refused action; the message says what to do."""
