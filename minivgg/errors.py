"""The errors minivgg raises for files it cannot use, so callers (and the CLI) catch one type.

Every loader that reads a user's file (CIFAR pickles, image folders, checkpoints, saved models)
raises ``FileNotFoundError`` for a path that is not there and ``CorruptFileError`` for a file that
is there but cannot be used: truncated, bit-flipped, malformed, hostile, or over a documented size
limit (``FileTooLargeError``). The message names the file and says what is wrong with it. Both are
ValueErrors, so code written against the older "ValueError naming the file" contract still works.
"""


class CorruptFileError(ValueError):
    """A file that is damaged, truncated, malformed or not what it claims to be."""


class FileTooLargeError(CorruptFileError):
    """A file (or what it declares inside) larger than a documented limit, refused before the
    memory is allocated; the message gives the limit and how to raise it where one can."""
