"""synthwear: privacy-aware synthetic wearable data."""

from synthwear.errors import SynthwearError

__all__ = ["SynthwearError"]
