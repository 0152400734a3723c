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
