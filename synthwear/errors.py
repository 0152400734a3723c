"""The one exception type users see: a one-line message naming the file, field or row at fault."""


class SynthwearError(Exception):
    """Bad input or configuration; the CLI prints the message alone, without a traceback."""


class NotEstimable(Exception):
    """An evaluator's metric that the data at hand cannot support (too few persons, a constant
    channel, ...). The message says why; the run records it as the metric's value instead of a
    made-up number, and this is not a failure of the run."""


def one_line(cause: object) -> str:
    """Any message folded onto one line: the causes libraries give (YAML, JSON, safetensors) span several."""
    return " ".join(str(cause).split())


def described(err: BaseException) -> str:
    """An exception as ``Type: message`` on one line, for a record of what went wrong in someone's code."""
    return f"{type(err).__name__}: {one_line(err) or '(no message)'}"


def shown(value: object, limit: int = 80) -> str:
    """A value as a message quotes it: a numpy scalar as the Python value it holds (``'007'``, not
    ``np.str_('007')``), and cut to ``limit`` characters, since one YAML alias can expand a value to
    megabytes and a message stays one readable line."""
    if getattr(value, "ndim", None) == 0 and hasattr(value, "item"):
        value = value.item()
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"
