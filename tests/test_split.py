import pytest
from cohorts import CHANNELS, make_daily_frame

from synthwear.datasets import get_dataset
from synthwear.errors import SynthwearError
from synthwear.split import find_duplicate_persons, split_persons
from synthwear.tables import read_daily_table


def test_lifesnaps_known_duplicates_are_found():
    frame = read_daily_table(get_dataset("lifesnaps").path, CHANNELS)
    assert find_duplicate_persons(frame, CHANNELS) == [
        ["621e2ed667b776a24085d8d1", "621e346f67b776a24081744f"],
        ["621e341067b776a24037b105", "621e367e67b776a24087d75d"],
    ]


def test_duplicates_stay_on_one_side_for_every_seed():
    frame = make_daily_frame(persons=12)
    clone = frame[frame.person_id == "p03"].assign(person_id="p99")
    frame = __import__("pandas").concat([frame, clone], ignore_index=True)
    groups = find_duplicate_persons(frame, CHANNELS)
    assert groups == [["p03", "p99"]]
    persons = sorted(frame.person_id.unique())
    for seed in range(20):
        split = split_persons(persons, validation=0.2, holdout=0.2, seed=seed, duplicate_groups=groups)
        sides = [name for name in ("train", "validation", "holdout") if "p03" in getattr(split, name)]
        assert "p99" in getattr(split, sides[0])
        everyone = split.train + split.validation + split.holdout
        assert sorted(everyone) == persons and len(set(everyone)) == len(everyone)


def test_split_is_seeded_and_nonempty():
    persons = [f"p{i}" for i in range(20)]
    a = split_persons(persons, validation=0.15, holdout=0.15, seed=1)
    b = split_persons(persons, validation=0.15, holdout=0.15, seed=1)
    c = split_persons(persons, validation=0.15, holdout=0.15, seed=2)
    assert a == b and a.holdout != c.holdout
    assert len(a.holdout) == 3 and len(a.validation) == 3 and len(a.train) == 14


def test_too_few_persons():
    with pytest.raises(SynthwearError, match="needs at least 3"):
        split_persons(["a", "b"], validation=0.2, holdout=0.2, seed=0, source="x.csv")


def test_persons_sharing_identical_days_count_once_and_the_message_says_so():
    with pytest.raises(SynthwearError, match=r"4 person\(s\) with a usable window \(2 once those sharing identical"):
        split_persons(
            ["a", "b", "c", "d"], validation=0.2, holdout=0.2, seed=0, duplicate_groups=[["a", "b"], ["c", "d"]]
        )


def test_person_folds_cover_every_person_once_and_keep_duplicates_together():
    from synthwear.split import person_folds

    persons = [f"p{i:02d}" for i in range(23)]
    folds = person_folds(persons, 5, seed=3, duplicate_groups=[["p01", "p02", "p03"], ["p10", "p11"]])
    assert sorted(p for fold in folds for p in fold) == persons
    assert max(map(len, folds)) - min(map(len, folds)) <= 3  # dealt to the smallest fold first
    for group in (["p01", "p02", "p03"], ["p10", "p11"]):
        assert sum(bool(set(group) & set(fold)) for fold in folds) == 1
    assert folds == person_folds(persons, 5, seed=3, duplicate_groups=[["p01", "p02", "p03"], ["p10", "p11"]])
    with pytest.raises(SynthwearError, match="folds need between 2 and"):
        person_folds(persons[:3], 4, seed=0)


def test_a_fixed_holdout_is_kept_and_the_rest_dealt():
    persons = [f"p{i:02d}" for i in range(20)]
    split = split_persons(persons, validation=0.15, holdout=0.15, seed=1, holdout_persons=["p05", "p06", "p07"])
    assert split.holdout == ["p05", "p06", "p07"]
    assert not set(split.train) & set(split.holdout) and not set(split.validation) & set(split.holdout)
    assert sorted(split.train + split.validation + split.holdout) == persons and len(split.validation) == 3
