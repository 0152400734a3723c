"""Base models shipped inside the package: trained on public data, the starting point for private fine-tuning.

A base is an ordinary model folder (``model.json``, ``weights.safetensors``) with a ``MODEL_CARD.md``
that says what it was trained on, under which licence, and how well it does on persons it never saw.
``synthwear export-base`` writes one from any finished run.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from synthwear.errors import SynthwearError

_ROOT = Path(str(files("synthwear") / "bases"))


def shipped_bases() -> dict[str, Path]:
    """Name -> folder of every base shipped with synthwear."""
    return {folder.name: folder for folder in sorted(_ROOT.iterdir()) if (folder / "model.json").is_file()}


def base_folder(name_or_path: str, resolve_path) -> Path:
    """A recipe's ``base.model``: a shipped base's name, else a model folder (``resolve_path`` makes it
    relative to the recipe)."""
    shipped = shipped_bases()
    if name_or_path in shipped:
        return shipped[name_or_path]
    folder = resolve_path(name_or_path)
    if not (folder / "model.json").is_file():
        names = ", ".join(shipped) or "none"
        raise SynthwearError(
            f"base.model {name_or_path!r}: neither a shipped base (shipped: {names}) nor a model folder "
            f"({folder} has no model.json)"
        )
    return folder
