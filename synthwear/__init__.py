"""synthwear: privacy-aware synthetic wearable data.

The front door is ``Synthesizer`` (fit on a daily table, sample, evaluate, save, load); plugins
implement the hooks marked with ``hookimpl``; bad input raises ``SynthwearError`` with one line.
"""

from typing import Any

from synthwear.errors import SynthwearError
from synthwear.hookspecs import hookimpl

__all__ = ["Synthesizer", "SynthwearError", "hookimpl"]


def __getattr__(name: str) -> Any:
    """``Synthesizer`` is imported on first use, so that ``synthwear --help`` does not wait for torch."""
    if name == "Synthesizer":
        from synthwear.synthesizer import Synthesizer

        return Synthesizer
    raise AttributeError(f"module 'synthwear' has no attribute {name!r}")
