import numpy as np
from fidelity_fixtures import context, persons

from synthwear.default_plugins.marginals import Marginals
from synthwear.interfaces import Windows


def test_faithful_cohort_scores_near_the_ceiling_and_a_shifted_one_poorly():
    faithful = Marginals().evaluate(context(persons(200, 14, 3)))
    shifted_values = persons(200, 14, 3).values + np.array([12.0, 0.0, 0.0])  # resting HR two person-sds too high
    shifted = Marginals().evaluate(context(Windows(shifted_values, np.arange(200))))
    hr, shifted_hr = faithful["channels"]["resting_hr"], shifted["channels"]["resting_hr"]
    assert abs(hr["ks_complement"]["synthetic"] - hr["ks_complement"]["ceiling"]) < 0.1
    assert shifted_hr["ks_complement"]["synthetic"] < hr["ks_complement"]["synthetic"] - 0.3
    assert shifted_hr["wasserstein_sd"]["synthetic"] > 1.0 > 0.3 > hr["wasserstein_sd"]["synthetic"]
    verdicts = {(r["metric"], r["channel"]): r["verdict"] for r in shifted["verdict"]}
    assert verdicts[("ks_complement", "resting_hr")] == "poor"
    assert verdicts[("ks_complement", "steps")] != "poor"  # untouched channel


def test_histograms_share_edges_and_report_section_draws_them():
    results = Marginals().evaluate(context(persons(50, 14, 3)))
    h = results["histograms"]["steps"]
    assert len(h["edges"]) == len(h["holdout"]) + 1 == len(h["synthetic"]) + 1
    html = Marginals().report_section(results, {})
    assert "plotly-graph-div" in html and "ks_complement" in html
