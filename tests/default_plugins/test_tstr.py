import pytest
from fidelity_fixtures import context, persons

from synthwear.default_plugins.tstr import TrainSyntheticTestReal, TSTRConfig, next_day_samples


def test_training_on_a_faithful_cohort_beats_training_on_independent_days():
    results = TrainSyntheticTestReal().evaluate(context(persons(200, 14, 3)))
    assert results["mae"]["synthetic"] < results["mae"]["floor"]
    assert results["verdict"][0]["persistence"] == results["persistence_mae"]
    assert "persistence" in TrainSyntheticTestReal().report_section(results, {})


def test_samples_use_only_the_previous_days():
    values = persons(2, 5, 0).values
    inputs, targets, previous = next_day_samples(values, 0, 2)
    assert inputs.shape == (6, 6)
    assert targets[0] == values[0, 2, 0] and previous[0] == values[0, 1, 0] == inputs[0, 3]


def test_unknown_target_is_an_error_of_the_options():
    with pytest.raises(ValueError, match="target 'weight' is not a channel"):
        TrainSyntheticTestReal(TSTRConfig(target="weight")).evaluate(context(persons(10, 14, 3)))
