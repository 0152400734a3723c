"""synthwear: privacy-aware synthetic wearable data."""

from synthwear.errors import SynthwearError
from synthwear.hookspecs import hookimpl

__all__ = ["SynthwearError", "hookimpl"]
