"""Training windows moved to new persons (training.augment): what moves, by how much, and when."""

from __future__ import annotations

import pytest
import torch
import yaml
from cohorts import REPO
from test_train import tiny_setup

from synthwear.augment import Augmentation, augmentation, level_spread
from synthwear.errors import SynthwearError
from synthwear.recipe import AugmentSection, parse_recipe
from synthwear.summary import spread_id, spread_of_id
from synthwear.train import epoch_plan, train_model

BINS = [20, 30]


def windows_with_summary(levels: list[int], spreads: list[int] | None = None) -> torch.Tensor:
    """Four windows of 5 days, 2 channels (a gap on day 2 of channel 0), then the person's summary
    days every day carries: the level and (with ``spreads``) the spread."""
    days = torch.tensor([[5, 9], [7, 11], [-1, 10], [6, 12], [8, 8]])
    summary = torch.tensor(levels + (spreads or []))
    row = torch.cat([days, summary.expand(5, -1)], dim=1)
    return row.expand(4, -1, -1).clone()


def moving(shift_sd: list[float], *, scale_sd: float = 0.0, share: float = 1.0, summary_days: int = 1):
    return Augmentation(torch.tensor(shift_sd), scale_sd, share, BINS, 2, 2, summary_days)


def test_a_shift_moves_days_and_level_by_one_offset_per_window_and_channel_and_keeps_gaps():
    torch.manual_seed(0)
    windows = windows_with_summary([7, 10])
    moved = moving([1.5, 1.5])(windows)  # small enough that no bin reaches an end
    offsets = moved[:, 0, :2] - windows[:, 0, :2]
    assert offsets.abs().sum() > 0
    observed = windows[..., :2] != -1
    assert torch.equal((moved[..., :2] - windows[..., :2])[observed], offsets[:, None].expand(-1, 5, -1)[observed])
    assert (moved[:, 2, 0] == -1).all()  # a gap stays a gap
    assert torch.equal(moved[..., 2:4] - windows[..., 2:4], offsets[:, None].expand(-1, 5, -1))  # the level too


def test_moved_bins_stay_within_the_channels_bins():
    torch.manual_seed(1)
    moved = moving([50.0, 50.0])(windows_with_summary([7, 10]).repeat(50, 1, 1))
    for c, bins in enumerate(BINS):
        values = moved[..., c][moved[..., c] != -1]
        assert values.min() >= 0 and values.max() <= bins - 1
        assert {0, bins - 1} <= set(values.tolist())  # pushed against both ends


def test_only_the_share_asked_for_is_moved():
    torch.manual_seed(2)
    windows = windows_with_summary([7, 10]).repeat(500, 1, 1)
    moved = moving([5.0, 5.0], share=0.3)(windows)
    changed = (moved != windows).flatten(1).any(dim=1).float().mean()
    assert 0.2 < changed < 0.35  # a few moved by an offset that rounds to 0


def test_a_scale_stretches_deviations_from_the_level_and_the_spread_day_with_them():
    torch.manual_seed(3)
    spreads = [int(spread_id(torch.tensor(2.0), b)) for b in BINS]
    windows = windows_with_summary([7, 10], spreads).repeat(200, 1, 1)
    moved = moving([0.0, 0.0], scale_sd=0.5, summary_days=2)(windows)
    assert torch.equal(moved[..., 2:4], windows[..., 2:4])  # no offset: the level stays
    deviation = lambda w: (w[:, [0, 1, 3, 4], 1] - 10).abs().float().mean(dim=1)  # noqa: E731
    stretch = deviation(moved) / deviation(windows)
    spread = torch.expm1(spread_of_id(moved[:, 0, 5], BINS[1])) / torch.expm1(spread_of_id(windows[:, 0, 5], BINS[1]))
    assert stretch.std() > 0.2  # calm and volatile versions of the person
    assert torch.corrcoef(torch.stack([stretch, spread]))[0, 1] > 0.9  # the spread day says which


def test_the_offsets_are_a_share_of_the_spread_of_window_levels():
    model, _, train, _, _ = tiny_setup()
    sample = train.batch(torch.arange(len(train)))
    spread = level_spread(sample, len(model.channels))
    window_means = [
        torch.tensor([w[w[:, c] != -1, c].float().mean() for w in sample if (w[:, c] != -1).any()])
        for c in range(len(model.channels))
    ]
    assert torch.allclose(spread, torch.stack([m.std() for m in window_means]))
    built = augmentation(model, train, AugmentSection(shift=0.5))  # 30 windows: every one measured
    assert torch.allclose(built.shift_sd, 0.5 * spread)
    assert augmentation(model, train, AugmentSection()) is None  # off by default


def test_training_moves_its_batches_and_validation_does_not(monkeypatch):
    model, loss, train, validation, config = tiny_setup()
    config = config.model_copy(update={"epochs": 1, "batch_size": 10, "augment": AugmentSection(shift=1.0)})
    calls = []
    original = Augmentation.__call__
    monkeypatch.setattr(Augmentation, "__call__", lambda self, w: calls.append(len(w)) or original(self, w))
    train_model(model, loss, train, validation, config, seed=0)
    assert calls == [10, 10, 10]  # the 30 training windows once; the 9 validation windows never
    plain = config.model_copy(update={"augment": AugmentSection()})
    assert epoch_plan(model, loss, train, plain, 0, None, 1).augment is None


def test_privacy_refuses_augmentation_and_bad_values_are_refused():
    raw = yaml.safe_load((REPO / "recipes" / "tiny.yaml").read_text())
    raw["training"]["augment"] = {"shift": 0.5}
    assert parse_recipe(raw).training.augment.shift == 0.5
    with pytest.raises(SynthwearError, match="training.augment does not apply with privacy"):
        parse_recipe({**raw, "privacy": {"target_epsilon": 4.0}})
    for bad in ({"shift": -1}, {"scale": 2}, {"share": 0}, {"shift": 0.5, "by": 1}):
        with pytest.raises(SynthwearError, match="training.augment"):
            parse_recipe({**raw, "training": {**raw["training"], "augment": bad}})
