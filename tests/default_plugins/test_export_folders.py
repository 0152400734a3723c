"""Finding the persons of an import: one person's export, or a folder holding one export per person
as sub-folders or as files side by side; pseudonymous ids in sorted order, notes by position only."""

import zipfile
from pathlib import Path

import pytest

from synthwear.default_plugins.apple_health import EXPECTED, read_apple_health
from synthwear.default_plugins.export_folders import person_folders
from synthwear.errors import SynthwearError

APPLE_SAMPLE = Path(__file__).resolve().parents[1] / "data" / "apple_health_sample" / "export.xml"


def has_acme_csv(entry: Path) -> bool:
    """A made-up importer's test of a person's folder: it holds acme.csv."""
    return (entry / "acme.csv").is_file()


def acme_person(folder: Path) -> Path:
    folder.mkdir(parents=True)
    (folder / "acme.csv").write_text("day,steps\n2024-01-01,5\n")
    return folder


def apple_zip(file: Path) -> Path:
    """An export.zip as the Health app writes it, holding the sample export."""
    with zipfile.ZipFile(file, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.write(APPLE_SAMPLE, "apple_health_export/export.xml")
    return file


def test_one_persons_folder_is_person_1_without_notes(tmp_path):
    folder = acme_person(tmp_path / "jane.doe@example.com")
    (folder / "README.md").write_text("not an export")
    assert person_folders(folder, has_acme_csv, "acme.csv") == ([(folder, "person-1")], [])


def test_folders_of_persons_are_numbered_in_sorted_order(tmp_path):
    zoe, adam = acme_person(tmp_path / "zoe"), acme_person(tmp_path / "adam")
    (tmp_path / "photos").mkdir()
    persons, notes = person_folders(tmp_path, has_acme_csv, "acme.csv")
    assert persons == [(adam, "person-1"), (zoe, "person-2")]
    assert notes == [f"sub-folder 2 of {tmp_path}: no acme.csv, skipped"]  # photos: the 2nd sub-folder


def test_files_of_persons_apple_zips_side_by_side(tmp_path):
    apple_zip(tmp_path / "bob.zip")
    apple_zip(tmp_path / "alice.zip")
    (tmp_path / "README.md").write_text("two exports")  # a stray file: skipped without a note
    (tmp_path / "._alice.zip").write_bytes(b"\x00\x05\x16\x07")  # a Mac's hidden resource file: not read
    result = read_apple_health(tmp_path)
    assert result.frame["person_id"].value_counts().to_dict() == {"person-1": 3, "person-2": 3}
    assert not any("skipped" in note for note in result.notes)


def test_mixed_folders_and_files(tmp_path):
    apple_zip(tmp_path / "anna.zip")
    (tmp_path / "ben").mkdir()
    (tmp_path / "ben" / "export.xml").write_bytes(APPLE_SAMPLE.read_bytes())
    (tmp_path / "carl").mkdir()  # an empty sub-folder: noted
    (tmp_path / "dora.csv").write_text("day,steps\n")  # a file of a kind exports come as: noted
    (tmp_path / "README.md").write_text("notes")  # any other file: skipped silently
    result = read_apple_health(tmp_path)
    assert result.frame["person_id"].unique().tolist() == ["person-1", "person-2"]  # anna.zip, ben
    skipped = [note for note in result.notes if "skipped" in note]
    # sorted: sub-folders ben, carl; files README.md, anna.zip, dora.csv (capitals sort first)
    assert skipped == [
        f"sub-folder 2 of {tmp_path}: no {EXPECTED}, skipped",
        f"file 3 of {tmp_path}: not an export (expected {EXPECTED}), skipped",
    ]


def test_nothing_found_is_a_one_line_error(tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "README.md").write_text("no exports here")
    with pytest.raises(SynthwearError) as raised:
        person_folders(tmp_path, has_acme_csv, "acme.csv")
    expected = f"{tmp_path}: no export found (expected acme.csv in the folder, or one export per person in it)"
    assert str(raised.value) == expected
    with pytest.raises(SynthwearError, match="does not exist$"):
        person_folders(tmp_path / "missing", has_acme_csv, "acme.csv")
    with pytest.raises(SynthwearError, match=r"README.md: not an export \(expected acme.csv\)$"):
        person_folders(tmp_path / "README.md", has_acme_csv, "acme.csv")


def test_names_never_reach_ids_or_notes(tmp_path):
    names = ["jane.doe@example.com", "Bob Smith", "Alex Quinn", "zed-quux"]
    apple_zip(tmp_path / f"{names[0]}.zip")
    apple_zip(tmp_path / f"{names[1]}.zip")
    (tmp_path / names[2]).mkdir()
    (tmp_path / f"{names[3]}.json").write_text("[]")
    result = read_apple_health(tmp_path)
    shown = " ".join([*result.frame["person_id"], *result.notes])
    assert set(result.frame["person_id"]) == {"person-1", "person-2"}
    assert len([note for note in result.notes if "skipped" in note]) == 2  # the folder and the .json
    assert not any(part in shown for name in names for part in name.split())
