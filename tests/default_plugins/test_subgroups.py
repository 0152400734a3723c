"""Subgroup fidelity on cohorts whose subgroups are known to be right, or swapped."""

import numpy as np
import pandas as pd
import pytest
from fidelity_fixtures import context, persons

from synthwear.attributes import AttributeModel
from synthwear.default_plugins.subgroups import SubgroupFidelity
from synthwear.errors import NotEstimable
from synthwear.interfaces import Windows


def with_groups(windows: Windows, groups: np.ndarray, shift: float, shifted: int = 1) -> Windows:
    """Windows whose person's group (code 0 or 1) moves resting HR by ``shift`` for group ``shifted``."""
    values = windows.values.copy()
    values[..., 0] += np.where(groups == shifted, shift, 0.0)[:, None]
    return Windows(values, windows.person, windows.start, groups[:, None])


@pytest.fixture
def grouped_context():
    ctx = context(persons(60, 14, 9))
    model = AttributeModel.fit(pd.DataFrame({"person_id": ["a", "b", "c", "d"], "group": ["x", "y", "x", "y"]}))
    ctx.model.attributes = model
    ctx.holdout = with_groups(ctx.holdout, np.arange(len(ctx.holdout.values)) % 2, 15.0)
    return ctx


def test_swapped_subgroups_score_worse_than_faithful_ones_though_the_whole_cohort_looks_alike(grouped_context):
    ctx, n = grouped_context, 200
    groups = np.arange(n) % 2
    ctx.synthetic = with_groups(persons(n, 14, 5), groups, 15.0)
    faithful = SubgroupFidelity().evaluate(ctx)
    ctx.synthetic = with_groups(persons(n, 14, 5), groups, 15.0, shifted=0)  # the shift on the wrong group
    swapped = SubgroupFidelity().evaluate(ctx)
    assert (
        abs(faithful["whole"]["ks_complement"]["resting_hr"] - swapped["whole"]["ks_complement"]["resting_hr"]) < 0.05
    )
    for found, wrong in zip(faithful["subgroups"], swapped["subgroups"]):
        assert found["column"] == "group" and found["value"] in ("x", "y")
        assert found["ks_complement"]["resting_hr"] > wrong["ks_complement"]["resting_hr"] + 0.3
        assert found["discriminative"] < wrong["discriminative"]
    assert faithful["attribute_table"]["column_shapes"]["group"] == pytest.approx(1.0, abs=0.02)
    assert "group = x" in SubgroupFidelity().report_section(faithful, {})


def test_small_subgroups_are_left_out_and_no_attributes_is_not_estimable(grouped_context):
    ctx = grouped_context
    ctx.synthetic = with_groups(persons(12, 14, 5), np.r_[np.zeros(11, int), 1], 15.0)
    found = SubgroupFidelity().evaluate(ctx)
    assert [g["value"] for g in found["subgroups"]] == ["x"]  # 'y' has one synthetic window
    ctx.model.attributes = None
    with pytest.raises(NotEstimable):
        SubgroupFidelity().evaluate(ctx)
