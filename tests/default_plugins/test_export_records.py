"""The readers every device importer shares: their failures are one-line errors naming the file."""

import pytest

from synthwear.default_plugins.export_records import read_csv, read_json
from synthwear.errors import SynthwearError


def test_json_nested_deeper_than_the_parser_recurses_is_a_one_line_error(tmp_path):
    file = tmp_path / "steps.json"
    file.write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(SynthwearError) as raised:
        read_json(file)
    assert str(raised.value) == f"{file}: not an export's JSON (nested too deeply to read)"


def test_csv_naming_a_column_twice_is_a_one_line_error(tmp_path):
    file = tmp_path / "trends.csv"
    file.write_text("date,Steps,Steps\n2024-01-01,5,6\n")
    with pytest.raises(SynthwearError) as raised:
        read_csv(file, ("date",))
    assert str(raised.value) == f"{file}: the header names the column 'Steps' more than once"
    file.write_text("date,Steps\n2024-01-01,5\n")
    assert read_csv(file, ("date",)).to_dict("records") == [{"date": "2024-01-01", "Steps": "5"}]
