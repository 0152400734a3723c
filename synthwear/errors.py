"""The one exception type users see: a one-line message naming the file, field or row at fault."""


class SynthwearError(Exception):
    """Bad input or configuration; the CLI prints the message alone, without a traceback."""
