import numpy as np
from fidelity_fixtures import context, persons

from synthwear.default_plugins.traces import ExampleTraces, TracesConfig


def test_real_examples_are_the_most_complete_holdout_windows():
    ctx = context(persons(20, 14, 3))
    ctx.holdout.values[:, 0, 0] = np.nan
    ctx.holdout.values[5] = persons(1, 14, 9).values[0]  # the one window without a gap
    results = ExampleTraces(TracesConfig(examples=2)).evaluate(ctx)
    assert np.array_equal(np.array(results["holdout"][0], dtype=float), ctx.holdout.values[5])
    assert len(results["synthetic"]) == 2
    html = ExampleTraces().report_section(results, {})
    assert "holdout persons" in html and "plotly-graph-div" in html
