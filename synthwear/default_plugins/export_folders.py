"""Which entries of a device export hold a person, and the pseudonymous ids they get.

Every importer accepts one person's export, or a folder holding one export per person: a sub-folder
each (``anna/DI_CONNECT``, ``ben/DI_CONNECT``), or, where the importer reads a single file, a file
each (``anna.zip``, ``ben.zip`` for Apple Health); the importer's own test decides, entry by entry.
Export folders and files are usually named after the person ("jane.doe@example.com", "Jane's
watch"), and a person id ends up in run folders, reports and shared synthetic tables, so a name is
never used: persons are numbered in the sorted order of their entries (``person-1``, ``person-2``,
...). The same set of entries always gives the same ids; the mapping is never written anywhere.

An entry that is not an export is skipped. A sub-folder, or a file of a kind exports come as (an
archive, or the JSON, CSV or XML the importers read), gets a note naming it by its position (the
third sub-folder, the second file, in sorted order), because it may be an export the importer could
not recognise: a zip that was not unpacked, a folder one level too deep. Any other file (a README,
a spreadsheet) is skipped silently: it was never meant as an export, and a note about it in
every import would only hide the notes that matter. So are hidden entries (names starting with a
dot): the system writes them (``.DS_Store``, and ``._anna.zip`` beside ``anna.zip`` on a USB drive
written by a Mac), and reading one as an export would stop the import.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from synthwear.errors import SynthwearError

# the endings of files that may be a device export: archives, and the formats the importers read
EXPORT_LIKE = frozenset({".zip", ".tar", ".gz", ".tgz", ".json", ".csv", ".xml"})


def person_folders(
    path: Path, is_person: Callable[[Path], bool], expected: str
) -> tuple[list[tuple[Path, str]], list[str]]:
    """``path`` as one person's export, or its entries (sub-folders and files) that are one each.

    Args:
        path: the folder (or file) the user named.
        is_person: whether a folder or file holds one person's export (the importer's own test).
        expected: what the importer looks for, for notes and errors ("export.xml or export.zip").

    Returns:
        ``(entry, person_id)`` pairs in sorted order, and one note per skipped sub-folder or
        export-like file (by position, not by name, for the same reason the ids are pseudonyms).
    """
    path = Path(path)
    if not path.exists():
        raise SynthwearError(f"{path}: does not exist")
    if is_person(path):
        return [(path, pseudonym(0))], []
    if not path.is_dir():
        raise SynthwearError(f"{path}: not an export (expected {expected})")
    persons, notes, seen = [], [], {"sub-folder": 0, "file": 0}
    for entry in sorted(entry for entry in path.iterdir() if not entry.name.startswith(".")):
        kind = "sub-folder" if entry.is_dir() else "file"
        seen[kind] += 1
        if is_person(entry):
            persons.append(entry)
        elif kind == "sub-folder":
            notes.append(f"sub-folder {seen[kind]} of {path}: no {expected}, skipped")
        elif entry.suffix.lower() in EXPORT_LIKE:
            notes.append(f"file {seen[kind]} of {path}: not an export (expected {expected}), skipped")
    if not persons:
        raise SynthwearError(
            f"{path}: no export found (expected {expected} in the folder, or one export per person in it)"
        )
    return [(entry, pseudonym(i)) for i, entry in enumerate(persons)], notes


def unread_exports(path: Path, is_person: Callable[[Path], bool], read: list[Path]) -> list[str]:
    """Notes for the entries of a folder read as one person's export (``read``: its files) that hold
    an export themselves and are not read: a cohort folder with a stray export file at its top is
    read as that one person, and the note says so instead of leaving the others out in silence."""
    if not path.is_dir():
        return []
    entries = sorted(entry for entry in path.iterdir() if not entry.name.startswith("."))
    return [
        f"{path}: read as one person's export ({pseudonym(0)}); its {entry.name!r} holds an export too and was "
        f"not read (to import each as a person, move the export files at the top of {path} out of it)"
        for entry in entries
        if is_person(entry) and not any(file == entry or entry in file.parents for file in read)
    ]


def pseudonym(index: int) -> str:
    """The id of the ``index``-th person (0-based) of an import."""
    return f"person-{index + 1}"
