import json

import numpy as np
import pytest
import torch

from synthwear.errors import SynthwearError
from synthwear.interfaces import MISSING
from synthwear.model import SynthesisModel
from synthwear.plugins import default_registry
from synthwear.recipe import load_recipe
from synthwear.steps import build_model
from synthwear.summary import window_summary


def tiny_model(tiny_recipe, summary: bool) -> SynthesisModel:
    from synthwear.recipe import parse_recipe

    raw = load_recipe(tiny_recipe).to_dict()
    raw["windows"]["summary"] = summary
    torch.manual_seed(0)
    return build_model(parse_recipe(raw), default_registry(), torch.device("cpu"))


@pytest.fixture
def model(tiny_recipe) -> SynthesisModel:
    torch.manual_seed(0)
    return build_model(load_recipe(tiny_recipe), default_registry(), torch.device("cpu"))


def test_save_load_round_trip_without_pickle(model, tmp_path):
    model.save(tmp_path / "m")
    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == ["model.json", "weights.safetensors"]
    json.loads((tmp_path / "m" / "model.json").read_text())
    loaded = SynthesisModel.load(tmp_path / "m", default_registry())
    values = np.array([[[60.0, 400.0, 8000.0]] * 7])
    for a, b in zip(model.next_day_probabilities(values), loaded.next_day_probabilities(values)):
        np.testing.assert_allclose(a, b)
    np.testing.assert_array_equal(model.generate(3, 7, seed=1), loaded.generate(3, 7, seed=1))


def test_a_fitted_persistence_is_saved_with_the_model_and_checked_when_read(model, tmp_path):
    model.persistence = [0.25, -0.1, 0.0]
    model.save(tmp_path / "m")
    assert SynthesisModel.load(tmp_path / "m", default_registry()).persistence == [0.25, -0.1, 0.0]
    meta = json.loads((tmp_path / "m" / "model.json").read_text())
    for wrong in ([0.25, -0.1], [1.0, 0.0, 0.0], "auto"):
        (tmp_path / "m" / "model.json").write_text(json.dumps({**meta, "persistence": wrong}))
        with pytest.raises(SynthwearError, match="persistence must be one correlation in .-1, 1. per channel"):
            SynthesisModel.load(tmp_path / "m", default_registry())


def test_weights_file_is_not_executed(model, tmp_path):
    model.save(tmp_path / "m")
    (tmp_path / "m" / "weights.safetensors").write_bytes(b"\x80\x04cos\nsystem\n")  # a pickle payload
    with pytest.raises(Exception) as err:
        SynthesisModel.load(tmp_path / "m", default_registry())
    assert "system" not in str(type(err.value))


def test_not_a_model_folder(tmp_path):
    with pytest.raises(SynthwearError, match=r"no model.json\)$"):
        SynthesisModel.load(tmp_path, default_registry())
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "model.json").write_text("{}")  # a run folder, given for its model
    with pytest.raises(SynthwearError, match=r"no model.json\) \(a run folder: its model is in model/\)"):
        SynthesisModel.load(tmp_path, default_registry())
    with pytest.raises(SynthwearError, match="missing: does not exist"):
        SynthesisModel.load(tmp_path / "missing", default_registry())


@pytest.mark.parametrize(
    ("damage", "expected"),
    [
        (lambda path: path.mkdir(), "model.json: cannot be read"),  # a folder in its place
        (lambda path: path.write_bytes(b"\xff\xfe\x00{"), "model.json: cannot be read"),  # not UTF-8 text
        (lambda path: path.write_text("[]"), "model.json: expected a JSON object, found list"),
    ],
)
def test_a_damaged_model_json_is_one_line(tmp_path, damage, expected):
    damage(tmp_path / "model.json")
    with pytest.raises(SynthwearError, match=expected):
        SynthesisModel.load(tmp_path, default_registry())


def test_generate_shapes_ranges_and_rounding(model):
    values = model.generate(50, 30, seed=0)  # longer than the 7-day context: the window slides
    assert values.shape == (50, 30, 3) and not np.isnan(values).any()
    for c, (low, high) in enumerate(model.ranges):
        assert values[..., c].min() >= low and values[..., c].max() <= high
    np.testing.assert_array_equal(values[..., 2], np.round(values[..., 2]))


def test_generation_is_seeded_and_priming_keeps_the_given_days(model):
    np.testing.assert_array_equal(model.generate(5, 7, seed=3), model.generate(5, 7, seed=3))
    assert not np.array_equal(model.generate(5, 7, seed=3), model.generate(5, 7, seed=4))
    prime = np.full((5, 3, 3), np.nan)
    prime[:, :, 0] = 61.0
    out = model.generate(5, 7, prime=prime, seed=0)
    np.testing.assert_array_equal(out[:, :3], prime)
    assert not np.isnan(out[:, 3:]).any()


def test_temperature_zero_picks_the_same_bins_whatever_the_seed(model):
    a, b = (model.tokenize(model.generate(4, 7, temperature=0, seed=s))[0] for s in (1, 2))
    np.testing.assert_array_equal(a, b)


def test_next_day_probabilities_are_distributions(model):
    probs = model.next_day_probabilities(np.full((2, 7, 3), np.nan))
    for p in probs:
        np.testing.assert_allclose(p.sum(axis=-1), 1.0, rtol=1e-5)


@pytest.mark.parametrize(
    "edit, expected",
    [
        (lambda meta: meta["encoders"][0].update(bins=50), "edited after training"),
        (lambda meta: meta["ranges"].__setitem__(1, [0, 2000]), "edited after training"),
        (lambda meta: meta["channels"].append("spo2"), "edited after training"),
        (lambda meta: meta.pop("spec"), "edited after training"),
    ],
)
def test_an_edited_model_json_is_caught(model, tmp_path, edit, expected):
    model.save(tmp_path / "m")
    meta = json.loads((tmp_path / "m" / "model.json").read_text())
    edit(meta)
    (tmp_path / "m" / "model.json").write_text(json.dumps(meta))
    with pytest.raises(SynthwearError, match=expected):
        SynthesisModel.load(tmp_path / "m", default_registry())


def test_truncated_or_missing_weights_name_the_file(model, tmp_path):
    model.save(tmp_path / "m")
    weights = tmp_path / "m" / "weights.safetensors"
    weights.write_bytes(weights.read_bytes()[:-100])
    with pytest.raises(SynthwearError, match=r"weights.safetensors: damaged"):
        SynthesisModel.load(tmp_path / "m", default_registry())
    weights.unlink()
    with pytest.raises(SynthwearError, match=r"weights.safetensors: missing"):
        SynthesisModel.load(tmp_path / "m", default_registry())


def test_weights_of_another_model_do_not_load(model, tmp_path, tiny_recipe):
    """Without the checksum (models saved before it existed) the shapes still have to fit."""
    from safetensors.torch import load_file, save_file

    from synthwear.recipe import parse_recipe

    model.save(tmp_path / "m")
    raw = load_recipe(tiny_recipe).to_dict()
    raw["generator"]["n_embd"] = 32
    build_model(parse_recipe(raw), default_registry(), torch.device("cpu")).save(tmp_path / "other")
    save_file(load_file(tmp_path / "other" / "weights.safetensors"), tmp_path / "m" / "weights.safetensors")
    with pytest.raises(SynthwearError, match=r"weights.safetensors: the weights do not fit the generator"):
        SynthesisModel.load(tmp_path / "m", default_registry())


def test_temperature_per_channel(tiny_recipe):
    """Temperature 0 for one channel takes its most likely bin: the first day's bin is the same for
    every seed, while the channels still sampled at 1 vary (without a summary day, through which the
    first day would depend on the other channels' draws)."""
    model = tiny_model(tiny_recipe, summary=False)
    first_days = np.concatenate([model.generate(20, 1, temperature=[0.0, 1.0, 1.0], seed=s) for s in range(3)])
    bins = model.tokenize(first_days)[0][:, 0]
    assert np.unique(bins[:, 0]).size == 1 and np.unique(bins[:, 2]).size > 1
    with pytest.raises(SynthwearError, match="2 temperatures for 3 channels"):
        model.generate(2, 1, temperature=[1.0, 1.0])


@pytest.fixture
def summary_model(tiny_recipe) -> SynthesisModel:
    return tiny_model(tiny_recipe, summary=True)


def test_the_summary_day_is_each_channels_mean_bin_or_missing(summary_model):
    windows = torch.tensor([[[1, 4, -1], [2, -1, -1], [4, 6, -1]]])  # (1, 3 days, 3 channels)
    sequences = summary_model.with_summary(windows)
    assert sequences.shape == (1, 4, 3)
    assert sequences[0, 0].tolist() == [2, 5, -1]  # means 7/3 and 5 rounded; a channel never observed
    assert torch.equal(sequences[:, 1:], windows)


def test_a_hidden_summary_is_seen_as_missing(summary_model):
    windows = torch.randint(0, 20, (50, summary_model.window_days, 3))
    inputs, targets = summary_model.training_pair(windows)
    assert torch.equal(inputs[:, 1], targets[:, 0])  # the summary is the first input after the start day
    hidden, _ = summary_model.training_pair(windows, hide_summary=1.0)
    assert (hidden[:, 1] == torch.tensor(summary_model.spec.vocab_sizes)).all()
    torch.manual_seed(0)
    some, _ = summary_model.training_pair(windows, hide_summary=0.5)
    share = (some[:, 1] != inputs[:, 1]).any(dim=1).float().mean()
    assert 0.2 < share < 0.8
    assert torch.equal(some[:, 2:], inputs[:, 2:])


def test_given_levels_are_the_summary_day_and_covariates_are_read_before_them(tiny_recipe):
    model = gap_calendar_model(tiny_recipe, summary=True)
    days = model.window_days
    values = np.random.default_rng(0).uniform(50, 70, (4, days, 3))
    dates = np.datetime64("2024-01-01") + np.arange(days).astype("timedelta64[D]")
    tokens = torch.from_numpy(model.day_tokens(values, np.broadcast_to(dates, (4, days)))[0])
    levels = torch.randint(0, 20, (4, 1, model.n_scored)).expand(-1, days, -1)
    inputs, targets = model.training_pair(torch.cat([tokens, levels], dim=-1))
    plain_inputs, plain_targets = model.training_pair(tokens)
    assert torch.equal(targets[:, 0], levels[:, 0])  # the summary is the given level, not the window's mean
    assert not torch.equal(plain_targets[:, 0], levels[:, 0])
    assert torch.equal(targets[:, 1:], plain_targets[:, 1:]) and torch.equal(inputs[:, 2:], plain_inputs[:, 2:])


def test_a_spread_model_opens_with_the_level_then_the_spread_and_hides_both(tiny_recipe):
    from synthwear.recipe import parse_recipe

    raw = load_recipe(tiny_recipe).to_dict()
    raw["windows"]["spread"] = True
    model = build_model(parse_recipe(raw), default_registry(), torch.device("cpu"))
    assert model.summary == 2 and model.spec.max_days == model.window_days + 2
    windows = torch.randint(0, 20, (50, model.window_days, 3))
    inputs, targets = model.training_pair(windows)
    assert torch.equal(targets[:, :2], window_summary(windows, 2, [20, 20, 20]))
    assert torch.equal(inputs[:, 1:3], targets[:, :2]) and torch.equal(targets[:, 2:], windows)
    hidden, _ = model.training_pair(windows, hide_summary=1.0)
    assert (hidden[:, 1:3] == torch.tensor(model.spec.vocab_sizes)).all() and torch.equal(hidden[:, 3:], inputs[:, 3:])
    prime = model.generate(3, 2, seed=2)
    continued = model.generate(3, model.window_days + 4, seed=3, prime=prime)
    np.testing.assert_array_equal(continued[:, :2], prime)
    assert not np.isnan(model.generate(4, model.window_days + 4, seed=1)).any()


def test_a_spread_of_some_channels_leaves_the_others_unknown_in_training_sampling_and_the_saved_model(
    tiny_recipe, tmp_path
):
    from synthwear.recipe import parse_recipe

    raw = load_recipe(tiny_recipe).to_dict()
    raw["windows"]["spread"] = ["steps"]
    model = build_model(parse_recipe(raw), default_registry(), torch.device("cpu"))
    assert model.summary == 2 and model.without_spread == ("resting_hr", "sleep_minutes")
    windows = torch.randint(0, 20, (50, model.window_days, 3))
    _, targets = model.training_pair(windows)
    full = window_summary(windows, 2, [20, 20, 20])
    assert (targets[:, 1, :2] == MISSING).all() and torch.equal(targets[:, 1, 2], full[:, 1, 2])
    assert torch.equal(targets[:, 0], full[:, 0])  # the level is every channel's
    seen = []
    model.generator.encode = lambda x, encode=model.generator.encode: seen.append(x.clone()) or encode(x)
    model.generate(4, 3, seed=0, use_cache=False)
    spread_day = seen[-1][:, 2]  # the start, the level, then the spread day
    assert (spread_day[:, :2] == torch.tensor(model.spec.vocab_sizes[:2])).all() and (spread_day[:, 2] < 20).all()
    model.save(tmp_path / "m")
    loaded = SynthesisModel.load(tmp_path / "m", default_registry())
    assert loaded.without_spread == model.without_spread
    np.testing.assert_array_equal(loaded.generate(2, 5, seed=0), model.generate(2, 5, seed=0))
    meta = json.loads((tmp_path / "m" / "model.json").read_text())
    meta["without_spread"] = []
    (tmp_path / "m" / "model.json").write_text(json.dumps(meta))
    with pytest.raises(SynthwearError, match="edited after training"):
        SynthesisModel.load(tmp_path / "m", default_registry())


def test_a_summary_model_samples_the_days_asked_for_within_and_past_its_window(summary_model):
    days = summary_model.window_days
    assert summary_model.spec.max_days == days + 1
    for n_days in (days, days + 5):
        values = summary_model.generate(4, n_days, seed=1)
        assert values.shape == (4, n_days, 3) and not np.isnan(values).all(axis=(0, 1)).any()
    prime = summary_model.generate(3, 2, seed=2)
    continued = summary_model.generate(3, days + 2, seed=3, prime=prime)
    np.testing.assert_array_equal(continued[:, :2], prime)


def test_a_summary_model_scores_real_days_causally(summary_model):
    """The next-day distributions of days 1..t never see day t+1 or later, through the summary or otherwise."""
    values = summary_model.generate(2, summary_model.window_days, seed=4)
    before = summary_model.next_day_probabilities(values)
    changed = values.copy()
    changed[:, 4:] = changed[::-1, 4:]
    after = summary_model.next_day_probabilities(changed)
    for a, b in zip(before, after):
        assert a.shape == (2, summary_model.window_days, a.shape[-1])
        np.testing.assert_allclose(a[:, :5], b[:, :5], rtol=1e-5, atol=1e-7)


def test_a_summary_model_round_trips_and_its_flag_is_in_the_checksum(summary_model, tmp_path):
    summary_model.save(tmp_path / "m")
    loaded = SynthesisModel.load(tmp_path / "m", default_registry())
    assert loaded.summary and loaded.window_days == summary_model.window_days
    np.testing.assert_array_equal(loaded.generate(2, 5, seed=0), summary_model.generate(2, 5, seed=0))
    meta = json.loads((tmp_path / "m" / "model.json").read_text())
    meta["summary"] = False
    (tmp_path / "m" / "model.json").write_text(json.dumps(meta))
    with pytest.raises(SynthwearError, match="edited after training"):
        SynthesisModel.load(tmp_path / "m", default_registry())


def test_the_summary_day_is_drawn_at_its_own_temperature(summary_model, monkeypatch):
    import synthwear.model as model_module

    same = summary_model.generate(6, 5, temperature=[1.0, 0.8, 1.0], seed=3)
    np.testing.assert_array_equal(
        summary_model.generate(6, 5, temperature=[1.0, 0.8, 1.0], summary_temperature=[1.0, 0.8, 1.0], seed=3), same
    )  # unset means the days' temperatures, draw for draw
    used, draw = [], model_module.sample_token
    monkeypatch.setattr(model_module, "sample_token", lambda logits, t, g, u: used.append(t) or draw(logits, t, g, u))
    summary_model.generate(6, 5, temperature=[1.0, 0.8, 1.0], summary_temperature=[1.5, 2.0, 0.0], seed=3)
    assert used[:3] == [1.5, 2.0, 0.0]  # the summary day, first
    assert used[3:] == [1.0, 0.8, 1.0] * 5  # then every day at the days' temperatures
    used.clear()
    summary_model.generate(2, 5, summary_temperature=2.0, prime=same[:2, :2], seed=3)
    assert 2.0 not in used  # a continuation draws no summary: its level comes from the given days


# --- gaps and calendar covariates ---------------------------------------------------------------
def gap_calendar_model(tiny_recipe, **windows) -> SynthesisModel:
    from synthwear.recipe import parse_recipe

    raw = load_recipe(tiny_recipe).to_dict()
    raw["windows"].update(gaps=True, calendar=["weekday"], **windows)
    torch.manual_seed(0)
    return build_model(parse_recipe(raw), default_registry(), torch.device("cpu"))


@pytest.fixture
def gap_model(tiny_recipe) -> SynthesisModel:
    return gap_calendar_model(tiny_recipe)


def test_day_tokens_hold_bins_observed_flags_and_weekdays(gap_model):
    values = np.array([[60.0, np.nan, 8000.0], [np.nan, 420.0, np.nan]])
    dates = np.array(["2026-11-28", "2026-11-29"], dtype="datetime64[D]")
    tokens, _ = gap_model.day_tokens(values, dates)
    assert tokens.shape == (2, 3 + 3 + 1)
    assert tokens[:, 3:6].tolist() == [[10, 0, 10], [0, 10, 0]]  # observed flags (OBSERVED = 10)
    assert tokens[:, 6].tolist() == [5, 6]  # Saturday, Sunday
    assert tokens[0, 1] == tokens[1, 0] == -1  # missing bins stay MISSING: never scored
    assert gap_model.spec.vocab_sizes == (20, 20, 20, 11, 11, 11, 7)
    assert gap_model.scored_names() == [
        "resting_hr", "sleep_minutes", "steps", "resting_hr observed", "sleep_minutes observed", "steps observed"
    ]  # fmt: skip


def test_each_position_reads_the_weekday_of_the_day_it_predicts(gap_model):
    days = gap_model.window_days
    windows = torch.from_numpy(
        gap_model.day_tokens(
            np.full((1, days, 3), 60.0), np.datetime64("2026-11-28") + np.arange(days)[None].astype("timedelta64[D]")
        )[0]
    )
    inputs, targets = gap_model.training_pair(windows)
    assert targets.shape == (1, days + 1, 6) and inputs.shape == (1, days + 1, 7)
    # the start and summary positions predict the summary and day 0 (a Saturday); then one day each
    assert inputs[0, :, 6].tolist() == [5, 5, 6, 0, 1, 2, 3, 4][: days + 1]


def test_gaps_are_generated_only_where_observed_is_drawn_zero(gap_model):
    with torch.no_grad():  # "observed" certain: 0 for sleep (every value becomes a gap), 1 for the others
        for channel, observed in ((3, 1), (4, 0), (5, 1)):
            head = gap_model.generator.heads[channel]
            head.weight.zero_()
            head.bias.fill_(-10.0)
            head.bias[10 if observed else 0] = 10.0
    values = gap_model.generate(20, 10, seed=0)
    assert np.isnan(values[..., 1]).all() and not np.isnan(values[..., [0, 2]]).any()
    complete = gap_model.generate(20, 10, seed=0, complete=True)
    assert not np.isnan(complete).any()


def test_persons_start_on_their_first_days_and_the_calendar_follows(gap_model):
    gap_model.start_dates = {"2026-11-28": 3, "2026-12-01": 1}
    first = gap_model.first_days(4000, seed=1)
    assert set(first.astype(str)) == {"2026-11-28", "2026-12-01"}
    assert 0.7 < (first == np.datetime64("2026-11-28")).mean() < 0.8
    np.testing.assert_array_equal(gap_model.first_days(50, seed=1), first[:50])  # seeded
    assert (gap_model.first_days(3, seed=1, start_date="2020-02-02") == np.datetime64("2020-02-02")).all()
    gap_model.start_dates = None  # as under differential privacy
    assert (gap_model.first_days(3, seed=1) == np.datetime64("2000-01-01")).all()


def test_a_weekday_changes_what_is_predicted(gap_model):
    values = gap_model.generate(3, gap_model.window_days, seed=5, complete=True)
    monday = gap_model.next_day_probabilities(values, np.full(3, np.datetime64("2026-11-30")))
    sunday = gap_model.next_day_probabilities(values, np.full(3, np.datetime64("2026-11-29")))
    assert not np.allclose(monday[2], sunday[2])


def test_generation_past_the_window_keeps_the_calendar(gap_model, monkeypatch):
    """Beyond the context the window slides; every position still reads its own day's weekday."""
    seen = []
    encode = type(gap_model.generator).encode  # what the sampler has the transformer read
    monkeypatch.setattr(type(gap_model.generator), "encode", lambda self, x: seen.append(x.clone()) or encode(self, x))
    start = np.array(["2026-11-28"], dtype="datetime64[D]")
    gap_model.generate(1, gap_model.window_days + 4, seed=0, start=start, use_cache=False)
    last = seen[-1][0, :, 6].tolist()  # the last slid window: start, summary, then the latest days
    total = gap_model.window_days + 4
    newest = [(5 + d) % 7 for d in range(total - (len(last) - 2), total)]  # weekdays of the days predicted
    assert last[2:] == newest
    assert last[0] == last[1] == (newest[0] - 1) % 7  # the opening positions: the first kept day's weekday


def test_a_gap_calendar_model_round_trips_and_both_are_in_the_checksum(gap_model, tmp_path):
    gap_model.start_dates = {"2026-11-28": 2}
    gap_model.save(tmp_path / "m")
    loaded = SynthesisModel.load(tmp_path / "m", default_registry())
    assert loaded.gaps and loaded.calendar == ("weekday",) and loaded.start_dates == {"2026-11-28": 2}
    np.testing.assert_array_equal(loaded.generate(4, 9, seed=0), gap_model.generate(4, 9, seed=0))
    for key, value in (("gaps", False), ("calendar", ["month"])):
        meta = json.loads((tmp_path / "m" / "model.json").read_text())
        meta[key] = value
        (tmp_path / "m" / "model.json").write_text(json.dumps(meta))
        with pytest.raises(SynthwearError, match="edited after training"):
            SynthesisModel.load(tmp_path / "m", default_registry())
        gap_model.save(tmp_path / "m")


@pytest.mark.parametrize(
    "bad", [{"someday": 3}, {"2026-11-28": 0}, ["2026-11-28"], {"2021-01-01": 10**30}, {"1000-01-01": 1}]
)
def test_edited_start_dates_are_one_line(gap_model, tmp_path, bad):
    gap_model.save(tmp_path / "m")
    meta = json.loads((tmp_path / "m" / "model.json").read_text())
    meta["start_dates"] = bad
    (tmp_path / "m" / "model.json").write_text(json.dumps(meta))
    with pytest.raises(SynthwearError, match="start_dates must (map ISO dates to counts|lie within 1677-09-22)"):
        SynthesisModel.load(tmp_path / "m", default_registry())


def two_channel_model(**options) -> SynthesisModel:
    from synthwear.default_plugins.binning import BinningConfig, BinningEncoder
    from synthwear.default_plugins.transformer import DailyTransformer, TransformerConfig
    from synthwear.interfaces import GeneratorSpec

    spec = GeneratorSpec((10, 10), max_days=6)
    torch.manual_seed(0)
    generator = DailyTransformer(spec, TransformerConfig(n_layer=1, n_head=2, n_embd=16, dropout=0.0, **options))
    encoders = [BinningEncoder(0, 100, BinningConfig(bins=10)) for _ in range(2)]
    return SynthesisModel(["a", "b"], [1, 1], [(0, 100)] * 2, encoders, generator, "transformer", spec, {})


@pytest.mark.parametrize(("chain", "same_bin_share"), [(True, (0.8, 1.0)), (False, (0.0, 0.3))])
def test_a_chained_generator_learns_and_draws_a_days_channels_jointly(chain, same_bin_share):
    """Channel b is channel a of the same day; days are independent. Independent heads can only learn
    each channel's uniform marginal; chained, b's head reads the a just drawn."""
    model = two_channel_model(chain=chain)
    a = torch.randint(0, 10, (512, 6), generator=torch.Generator().manual_seed(1))
    windows = torch.stack([a, a], dim=-1)
    optimizer = torch.optim.Adam(model.generator.parameters(), lr=3e-3)
    model.generator.train()
    for _ in range(150):
        inputs, targets = model.training_pair(windows)
        logits = model.predict(model.generator, inputs, targets)
        loss = sum(
            torch.nn.functional.cross_entropy(x.flatten(0, 1), targets[..., c].flatten()) for c, x in enumerate(logits)
        )
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    bins, _ = model.tokenize(model.generate(200, 6, seed=2))
    share = float(np.mean(bins[..., 0] == bins[..., 1]))
    assert same_bin_share[0] <= share <= same_bin_share[1]
    b_given_a = model.next_day_probabilities(model.generate(50, 6, seed=3))[1]  # b's distribution, a known
    assert (b_given_a.max(axis=-1).mean() > 0.8) == chain


def test_progress_is_told_as_each_day_is_drawn_and_ends_at_every_person(model):
    told: list[float] = []
    model.generate(3, 10, seed=1, on_progress=told.append, batch_size=2)
    assert len(told) == 2 * 10  # two batches, ten days each
    assert told == sorted(told) and told[9] == 2 and told[-1] == 3  # exactly: a bar ends full
    told.clear()
    model.generate(2, 4, seed=1, prime=np.full((2, 4, 3), 60.0), on_progress=told.append)  # nothing left to draw
    assert told == [2]


def test_persistent_quantiles_are_uniform_with_the_asked_lag_one_correlation():
    from scipy.stats import kstest, norm

    from synthwear.model import Quantiles

    quantiles = Quantiles(torch.tensor([0.0, 0.6, -0.4]), 20000, torch.Generator().manual_seed(0))
    days = torch.stack([quantiles.next() for _ in range(4)], dim=1).numpy()  # (batch, days, channels)
    for c, rho in enumerate([0.0, 0.6, -0.4]):
        assert kstest(days[:, 2, c], "uniform").pvalue > 0.01  # each day still drawn from its distribution
        scores = norm.ppf(days[:, :, c])
        assert np.corrcoef(scores[:, 1], scores[:, 2])[0, 1] == pytest.approx(rho, abs=0.03)


def test_persistence_makes_the_days_of_a_channel_follow_each_other_and_zero_draws_as_before(model):
    plain = model.generate(400, 7, seed=2)
    np.testing.assert_array_equal(model.generate(400, 7, seed=2, persistence=0.0), plain)
    with torch.no_grad():  # every day's distribution uniform over the bins, whatever came before
        for parameter in model.generator.parameters():
            parameter.zero_()
    independent = model.generate(400, 7, seed=2)
    persistent = model.generate(400, 7, seed=2, persistence=[0.95, 0.0, 0.0])

    def consecutive(values: np.ndarray, c: int) -> float:  # across persons: day 4 against day 5
        return float(np.corrcoef(values[:, 3, c], values[:, 4, c])[0, 1])

    assert abs(consecutive(independent, 0)) < 0.15 and consecutive(persistent, 0) > 0.8
    assert abs(consecutive(persistent, 1)) < 0.15  # the other channels' days stay independent
