"""Which folders of a device export hold a person, and the pseudonymous ids they get.

Every importer accepts one person's export or a folder with one sub-folder per person. Export
folders are usually named after the person ("jane.doe@example.com", "Jane's watch"), and a person
id ends up in run folders, reports and shared synthetic tables, so the folder's name is never used:
persons are numbered in the sorted order of their folders (``person-1``, ``person-2``, ...). The
same set of folders always gives the same ids; the mapping is never written anywhere.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from synthwear.errors import SynthwearError


def person_folders(
    path: Path, is_person: Callable[[Path], bool], expected: str
) -> tuple[list[tuple[Path, str]], list[str]]:
    """``path`` as one person's export, or its sub-folders that are one each.

    Args:
        path: the folder the user named.
        is_person: whether a folder holds one person's export (the importer's own test).
        expected: what the importer looks for, for the error message ("export.xml or export.zip").

    Returns:
        ``(folder, person_id)`` pairs in sorted folder order, and one note per skipped sub-folder
        (by position, not by name, for the same reason the ids are pseudonyms).
    """
    path = Path(path)
    if not path.exists():
        raise SynthwearError(f"{path}: does not exist")
    if is_person(path):
        return [(path, pseudonym(0))], []
    if not path.is_dir():
        raise SynthwearError(f"{path}: not an export (expected {expected})")
    folders, notes = [], []
    for position, folder in enumerate(sorted(entry for entry in path.iterdir() if entry.is_dir()), start=1):
        if is_person(folder):
            folders.append(folder)
        else:
            notes.append(f"sub-folder {position} of {path}: no {expected}, skipped")
    if not folders:
        raise SynthwearError(
            f"{path}: no export found (expected {expected} in the folder or in one sub-folder per person)"
        )
    return [(folder, pseudonym(i)) for i, folder in enumerate(folders)], notes


def pseudonym(index: int) -> str:
    """The id of the ``index``-th person (0-based) of an import."""
    return f"person-{index + 1}"
