import numpy as np
from fidelity_fixtures import context, persons

from synthwear.default_plugins.quality_report import SDMetricsQuality


def test_scores_are_defined_on_weakly_correlated_days_and_gapless_lengths_differ():
    results = SDMetricsQuality().evaluate(context(persons(100, 14, 3)))
    scores = results["scores"]
    assert all(np.isfinite(v) for v in scores["column_pair_trends"].values())
    # real windows have missing days, the synthetic ones none: sequence lengths differ, the ceiling's do not
    assert scores["sequence_length_similarity"]["synthetic"] < scores["sequence_length_similarity"]["ceiling"]
    assert {r["metric"] for r in results["verdict"]} >= {"quality_score", "inter_row_msas", "statistic_msas_mean"}
