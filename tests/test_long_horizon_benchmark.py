"""benchmarks/long_horizon.py on a tiny trained model: a year's sampling per slide, and late windows
scored against day-by-day sliding."""

import sys

import numpy as np
import pytest
from cohorts import REPO

from synthwear import Synthesizer
from synthwear.recipe import load_recipe


@pytest.fixture
def long_horizon():
    sys.path.insert(0, str(REPO / "benchmarks"))
    try:
        import long_horizon

        return long_horizon
    finally:
        sys.path.remove(str(REPO / "benchmarks"))


def test_one_late_window_per_person_after_the_first_two_windows(long_horizon):
    values = np.arange(3 * 40, dtype=float).reshape(3, 40, 1)
    late = long_horizon.late_windows(values, 7)
    assert late.shape == (3, 7, 1)
    for person, window in enumerate(late[..., 0]):  # consecutive days of that person, starting on day 14 or later
        assert np.all(np.diff(window) == 1) and window[0] >= 40 * person + 14 and window[-1] < 40 * (person + 1)


def test_a_row_per_slide_with_its_speed_and_its_distance_from_day_by_day_sliding(
    long_horizon, tiny_recipe, tmp_path, capsys
):
    Synthesizer(load_recipe(tiny_recipe)).fit(progress=False).save(tmp_path / "model")
    long_horizon.main([str(tmp_path / "model"), "--persons", "60", "--days", "28"])
    table = capsys.readouterr().out
    cells = [line.strip("|").split("|") for line in table.splitlines() if line.startswith("| ")]
    rows = {row[0].strip(): [c.strip() for c in row[1:]] for row in cells[1:]}  # after the header
    assert list(rows) == ["1", "1 (another seed)", "3", "5", "6"]  # a 7-day window slides 1 to 6 days at once
    assert rows["1"][1:] == ["1.0×", "–", "–"]
    for label in ("1 (another seed)", "3", "5", "6"):
        speed, score, accuracy = float(rows[label][0].replace(",", "")), float(rows[label][2]), float(rows[label][3])
        assert speed > 0 and score == pytest.approx(abs(accuracy - 0.5), abs=1e-3)
    with pytest.raises(SystemExit):
        long_horizon.main([str(tmp_path / "model"), "--days", "20"])  # fewer than three windows
