"""Errors that reach a user as one clear line instead of a traceback."""


class UserError(Exception):
    """Bad input or configuration: the message names the file, column or field at fault."""
