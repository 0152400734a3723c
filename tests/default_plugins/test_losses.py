import pytest
import torch

from synthwear.default_plugins.losses import LossConfig, MeanLoss, ShakeShakeLoss, channel_losses
from synthwear.interfaces import MISSING


def batch():
    torch.manual_seed(0)
    logits = [torch.randn(4, 5, 10, requires_grad=True) for _ in range(3)]
    targets = torch.randint(0, 10, (4, 5, 3))
    return logits, targets


def test_alpha_is_a_unit_vector_that_changes_every_step():
    loss = ShakeShakeLoss()
    logits, targets = batch()
    alphas = []
    for _ in range(5):
        value = loss(logits, targets, training=True)
        alphas.append(loss.last_alpha.clone())
        torch.testing.assert_close(value, (loss.last_alpha * channel_losses(logits, targets)).sum())
    for alpha in alphas:
        assert torch.isclose(alpha.norm(), torch.tensor(1.0)) and (alpha >= 0).all()
    assert len({tuple(a.tolist()) for a in alphas}) == 5


def test_evaluation_is_the_plain_mean():
    logits, targets = batch()
    expected = channel_losses(logits, targets).mean()
    torch.testing.assert_close(ShakeShakeLoss()(logits, targets, training=False), expected)
    torch.testing.assert_close(MeanLoss()(logits, targets, training=True), expected)


def test_missing_targets_are_masked_out():
    logits, targets = batch()
    masked = targets.clone()
    masked[:, 2:, 0] = MISSING
    changed = [l.detach().clone() for l in logits]
    changed[0][:, 2:] += 100 * torch.randn_like(changed[0][:, 2:])
    torch.testing.assert_close(channel_losses(changed, masked)[0], channel_losses(logits, masked)[0].detach())
    none_observed = targets.clone()
    none_observed[..., 1] = MISSING
    assert channel_losses(logits, none_observed)[1] == 0


def test_smoothing_rewards_near_misses_in_training_only():
    n = 50
    targets = torch.full((1, 1, 1), 20)
    near = [torch.full((1, 1, n), -10.0)]
    near[0][..., 21] = 10.0  # confident, one bin off
    far = [torch.full((1, 1, n), -10.0)]
    far[0][..., 45] = 10.0  # confident, 25 bins off
    hard_near, hard_far = channel_losses(near, targets), channel_losses(far, targets)
    torch.testing.assert_close(hard_near, hard_far)  # one-hot cross-entropy cannot tell them apart
    assert channel_losses(near, targets, smoothing=1.5) < channel_losses(far, targets, smoothing=1.5) - 1
    loss = MeanLoss(LossConfig(smoothing=1.5))
    torch.testing.assert_close(loss(near, targets, training=False), hard_near.mean())
    assert not torch.isclose(loss(near, targets, training=True), hard_near.mean())


def test_smoothing_per_channel_widens_only_the_channels_named():
    torch.manual_seed(0)
    logits = [torch.randn(2, 5, 20) for _ in range(2)]
    targets = torch.randint(0, 20, (2, 5, 2))
    loss = MeanLoss(LossConfig(smoothing={"b": 2.0}))
    loss.bind(["a", "b"])
    assert loss.widths == [0.0, 2.0]
    hard, wide = channel_losses(logits, targets), channel_losses(logits, targets, smoothing=2.0)
    torch.testing.assert_close(loss(logits, targets, training=True), torch.stack([hard[0], wide[1]]).mean())
    torch.testing.assert_close(loss(logits, targets, training=False), hard.mean())  # scored on hard targets
    with pytest.raises(ValueError, match="3 widths for 2 channels"):
        channel_losses(logits, targets, smoothing=[0.0, 1.0, 1.0])


def test_smoothing_names_channels_of_the_recipe(tiny_recipe):
    """A misspelled channel would silently leave its channel unsmoothed (as per-channel temperatures refuse)."""
    from synthwear.errors import SynthwearError
    from synthwear.plugins import default_registry
    from synthwear.recipe import load_recipe, parse_recipe
    from synthwear.steps import build_loss

    raw = load_recipe(tiny_recipe).to_dict()
    raw["loss"] = {"name": "shake_shake", "smoothing": {"resting_hr": 1.0}}
    assert build_loss(parse_recipe(raw, tiny_recipe), default_registry()).widths == [1.0, 0.0, 0.0]
    raw["loss"]["smoothing"]["stepz"] = 1.5
    with pytest.raises(SynthwearError, match=r"loss: smoothing names 'stepz', which is not a channel \(resting_hr"):
        build_loss(parse_recipe(raw, tiny_recipe), default_registry())


@pytest.mark.parametrize(
    "smoothing, message",
    [
        (-1.0, "smoothing must be numbers >= 0"),
        ({"a": -0.5}, "smoothing must be numbers >= 0"),
        ({"a": float("nan")}, "smoothing must be numbers >= 0"),
        ({"a": "wide"}, "option 'smoothing': Input should be a valid number"),  # the type, checked by pydantic
    ],
)
def test_impossible_smoothing_is_a_one_line_error(smoothing, message):
    from synthwear.errors import SynthwearError
    from synthwear.plugins import default_registry

    with pytest.raises(SynthwearError, match=message):
        default_registry().build("losses", "shake_shake", {"smoothing": smoothing}, where="r.yaml")
