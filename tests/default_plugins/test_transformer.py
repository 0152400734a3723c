import math

import pytest
import torch
from opacus.validators import ModuleValidator

from synthwear.default_plugins.transformer import (
    SPREAD_GAIN,
    DailyTransformer,
    Dropout,
    LevelLogits,
    RelativeLogits,
    SpreadHead,
    TransformerConfig,
    keep_mask,
    ordinal_features,
)
from synthwear.interfaces import GeneratorSpec

SPEC = GeneratorSpec(vocab_sizes=(100, 100, 100), max_days=21)
SUMMARY_SPEC = GeneratorSpec(vocab_sizes=(100, 100, 100), max_days=22, summary=True)
SPREAD_SPEC = GeneratorSpec(vocab_sizes=(100, 100, 100), max_days=23, summary=2)  # the level, then the spread


def model() -> DailyTransformer:
    torch.manual_seed(0)
    return DailyTransformer(SPEC, TransformerConfig()).eval()


def test_paper_shape():
    m = model()
    assert len(m.blocks) == 3 and m.blocks[0].attn.n_head == 4 and m.position_embedding.embedding_dim == 64
    logits = m(torch.randint(0, 100, (2, 21, 3)))
    assert [tuple(l.shape) for l in logits] == [(2, 21, 100)] * 3


def test_changing_day_t_plus_1_never_changes_predictions_up_to_t():
    m = model()
    tokens = torch.randint(0, 100, (4, 21, 3))
    before = m(tokens)
    for t in (0, 7, 19):
        changed = tokens.clone()
        changed[:, t + 1 :] = torch.randint(0, 102, changed[:, t + 1 :].shape)
        after = m(changed)
        for a, b in zip(before, after):
            torch.testing.assert_close(a[:, : t + 1], b[:, : t + 1])
            assert not torch.allclose(a[:, t + 1 :], b[:, t + 1 :])


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"ordinal": 8, "relative": 3},
        {"level": 4},
        {"relative": 3, "level": 4, "deviations": True},
        {"relative": 3, "level": 4, "deviations": True, "envelope": True},
        {"ordinal": 8, "relative": 3, "level": 4, "deviations": True, "chain": True},
    ],
)
@pytest.mark.parametrize("spec", [SUMMARY_SPEC, SPREAD_SPEC])
def test_opacus_can_compute_per_sample_gradients(options, spec):
    torch.manual_seed(0)
    generator = DailyTransformer(spec, TransformerConfig(**options)).train()
    assert ModuleValidator.validate(generator, strict=True) == []


def test_ordinal_features_make_a_kernel_in_the_distance_between_bins():
    features = ordinal_features(100, 16)
    similarity = features @ features.T
    assert features.shape == (100, 32)
    for a in (10, 50, 90):
        assert similarity[a].argmax() == a  # each bin is most like itself ...
        assert similarity[a, a + 1] > similarity[a, a + 5] > similarity[a, a + 9]  # ... then its near neighbours
    torch.testing.assert_close(similarity[20, 25], similarity[60, 65])  # the same distance, the same similarity


def test_relative_logits_land_around_the_previous_bin_and_nowhere_without_one():
    relative = RelativeLogits(n_bins=10, n_embd=1, width=2)
    with torch.no_grad():
        relative.kernel.weight.copy_(torch.tensor([[1.0], [2.0], [3.0], [4.0], [5.0]]))  # offsets -2..2
        relative.kernel.bias.zero_()
    x = torch.ones(1, 4, 1)
    previous = torch.tensor([[5, 0, 10, 11]])  # a bin, the lowest bin, "missing" (10), "start" (11)
    logits = relative(x, previous)[0]
    assert logits[0].tolist() == [0, 0, 0, 1, 2, 3, 4, 5, 0, 0]
    assert logits[1].tolist() == [3, 4, 5, 0, 0, 0, 0, 0, 0, 0]  # offsets below bin 0 fall off
    assert not logits[2:].any()


def test_level_logits_are_a_kernel_in_the_distance_from_the_level_and_nothing_without_one():
    level = LevelLogits(n_bins=40, n_embd=1, n_frequencies=6)
    with torch.no_grad():  # weight only the cosines: an even kernel peaking at the level
        level.coefficients.weight.copy_(torch.tensor([[0.0] * 6 + [1.0] * 6]).T)
    logits = level(torch.ones(3, 2, 1), level.features(torch.tensor([10, 25, 40])))  # 40: "missing"
    assert logits[0, 0].argmax() == 10 and logits[1, 1].argmax() == 25
    torch.testing.assert_close(logits[0, 0, 10 - 4], logits[0, 0, 10 + 4])  # symmetric around it
    torch.testing.assert_close(logits[0, 0, 3:18], logits[1, 0, 18:33])  # the same shape at any level
    assert logits[0, 0, 11] > logits[0, 0, 14] > logits[0, 0, 17]
    assert not logits[2].any()


def test_level_logits_rotate_the_bins_features_into_the_offsets_features():
    """The per-sequence rotation equals the plain combination of sines and cosines of each bin's
    offset from the level."""
    torch.manual_seed(0)
    level = LevelLogits(n_bins=30, n_embd=4, n_frequencies=5)
    x, levels = torch.randn(3, 2, 4), torch.tensor([0, 13, 29])
    weights = level.coefficients(x)  # (3, 2, 10): sine weights, then cosine weights
    angles = (torch.arange(30)[None, :] - levels[:, None])[..., None].float() * level.frequencies  # (3, 30, 5)
    direct = weights @ torch.cat([angles.sin(), angles.cos()], dim=-1).transpose(1, 2)
    torch.testing.assert_close(level(x, level.features(levels)), direct, atol=1e-4, rtol=1e-4)


def test_envelopes_make_bins_less_likely_in_proportion_to_their_distance():
    relative = RelativeLogits(n_bins=10, n_embd=1, width=1, envelope=True)
    level = LevelLogits(n_bins=10, n_embd=1, n_frequencies=2, envelope=True)
    with torch.no_grad():  # only the envelopes' slopes, 2 and 3
        relative.kernel.weight.copy_(torch.tensor([[0.0], [0.0], [0.0], [2.0]]))
        relative.kernel.bias.zero_()
        level.coefficients.weight.copy_(torch.tensor([[3.0, 0.0, 0.0, 0.0, 0.0]]).T)
    distance = (torch.arange(10.0) - 4).abs() / math.sqrt(10)
    near = relative(torch.ones(1, 2, 1), torch.tensor([[4, 10]]))[0]  # bin 4, then "missing"
    torch.testing.assert_close(near[0], -2 * distance)  # far beyond the kernel's width too
    assert not near[1].any()
    around = level(torch.ones(2, 1, 1), level.features(torch.tensor([4, 10])))  # 10: no level
    torch.testing.assert_close(around[0, 0], -3 * distance)
    assert not around[1].any()
    assert level.features(torch.tensor([4, 10])).known.flatten().tolist() == [1.0, 0.0]


def test_the_level_reaches_every_day_after_the_summary_and_not_the_summary_itself():
    torch.manual_seed(0)
    m = DailyTransformer(SUMMARY_SPEC, TransformerConfig(level=4)).eval()
    tokens = torch.randint(0, 100, (2, 22, 3))
    tokens[:, 0] = 101
    moved = tokens.clone()
    moved[:, 1] = (tokens[:, 1] + 30) % 100  # another level
    torch.manual_seed(0)
    without = DailyTransformer(SUMMARY_SPEC, TransformerConfig()).eval()
    without.load_state_dict(m.state_dict(), strict=False)
    for a, b, c, d in zip(m(tokens), m(moved), without(tokens), without(moved)):
        torch.testing.assert_close(a[:, 0], b[:, 0])  # position 0 predicts the summary: no level yet
        level_effect = (a[:, 1:] - b[:, 1:]) - (c[:, 1:] - d[:, 1:])  # beyond what attention carries
        assert (level_effect.abs().amax(dim=-1) > 1e-3).all()


def test_a_spread_scales_the_kernels_of_the_days_after_the_summary_by_its_sharpness():
    torch.manual_seed(0)
    m = DailyTransformer(SPREAD_SPEC, TransformerConfig(relative=3, level=4, deviations=True, envelope=True)).eval()
    tokens = torch.randint(0, 100, (3, 23, 3))
    tokens[:, 0], tokens[:, 2, 0], tokens[2, 2] = 101, torch.tensor([0, 40, 80]), 100  # spreads; the last unknown
    flat = DailyTransformer(SPREAD_SPEC, TransformerConfig(relative=3, level=4, deviations=True, envelope=True)).eval()
    flat.load_state_dict(m.state_dict())
    with torch.no_grad():
        for model in (m, flat):  # the absolute part's weight ~ 0: a day is the kernels' distribution
            model.mixture_heads[0].weight.zero_(), model.mixture_heads[0].bias.fill_(-30.0)
        m.spread_heads[0].slope.weight[0].fill_(1.0 / SPREAD_GAIN)  # factor exp(-log1p(d)) = 1 / (1 + d)
        sharp, plain = m(tokens)[0], flat(tokens)[0]
    torch.testing.assert_close(sharp[:, :2], plain[:, :2])  # the level and the spread themselves
    factor = torch.tensor([1.0, math.exp(-40 * math.log1p(100) / 100), 1.0])[:, None, None]  # unknown: 1
    torch.testing.assert_close(sharp[:, 2:], (plain[:, 2:] * factor).log_softmax(-1), atol=1e-4, rtol=1e-4)
    assert not torch.allclose(sharp[1, 2:], plain[1, 2:])


def test_a_spread_shifts_the_absolute_parts_weight_in_the_mixture():
    torch.manual_seed(0)
    m = DailyTransformer(SPREAD_SPEC, TransformerConfig(relative=3, level=4, deviations=True)).eval()
    tokens = torch.randint(0, 100, (2, 23, 3))
    tokens[:, 0], tokens[:, 2, 1] = 101, 50
    with torch.no_grad():
        m.heads[1].weight.zero_(), m.heads[1].bias.zero_()  # the absolute part: uniform
        m.mixture_heads[1].weight.zero_(), m.mixture_heads[1].bias.zero_()  # even odds without a spread
        m.spread_heads[1].slope.bias[1].fill_(math.log(3) / SPREAD_GAIN)  # shifted: odds 3 : 1
        logits = m(tokens)[1]
    uniform = torch.full_like(logits[:, 2:], -math.log(100)).exp()
    around = logits[:, 2:].exp() - 0.75 * uniform  # what the kernels add beside the absolute part's share
    torch.testing.assert_close(around.sum(dim=-1), torch.full_like(around[..., 0], 0.25))
    assert (around > -1e-6).all()


def test_spread_sharpness_is_one_and_no_shift_where_the_spread_is_unknown():
    head = SpreadHead()
    head.slope.weight.data.fill_(2.0 / SPREAD_GAIN), head.slope.bias.data.fill_(0.5 / SPREAD_GAIN)
    features = LevelLogits(100, 8, 2).features(torch.tensor([3, 7])).with_spread(torch.tensor([10, 100]), 100)
    factor, shift = (out.flatten() for out in head(features))
    torch.testing.assert_close(factor, torch.tensor([math.exp(-(2 * 10 * math.log1p(100) / 100 + 0.5)), 1.0]))
    torch.testing.assert_close(shift, torch.tensor([2 * 10 * math.log1p(100) / 100 + 0.5, 0.0]))


def test_with_a_spread_day_no_relative_kernel_centres_on_a_summary_but_the_levels_predecessor():
    m = DailyTransformer(SPREAD_SPEC, TransformerConfig(relative=3, level=4))
    tokens = torch.randint(0, 100, (2, 6, 3))
    previous = m.previous_days(tokens, 0)
    assert (previous[:, 1:3] == 100).all() and torch.equal(previous[:, 3:], tokens[:, 3:])
    assert torch.equal(m.previous_days(tokens[:, 2:], 2)[:, 1:], tokens[:, 3:])  # a cache's later read
    assert (m.previous_days(tokens[:, 2:], 2)[:, 0] == 100).all()
    single = DailyTransformer(SUMMARY_SPEC, TransformerConfig(relative=3, level=4))
    assert torch.equal(single.previous_days(tokens, 0), tokens)  # the level is the first day's yesterday


def test_the_level_option_needs_a_summary_day():
    with pytest.raises(ValueError, match="'level' needs a summary day"):
        DailyTransformer(SPEC, TransformerConfig(level=4))
    with pytest.raises(ValueError, match="'deviations' needs 'level'"):
        DailyTransformer(SUMMARY_SPEC, TransformerConfig(deviations=True))


def test_deviations_mix_the_kernels_and_the_absolute_heads_where_the_level_is_known():
    torch.manual_seed(0)
    m = DailyTransformer(SUMMARY_SPEC, TransformerConfig(relative=3, level=4, deviations=True)).eval()
    tokens = torch.randint(0, 100, (3, 22, 3))
    tokens[:, 0], tokens[2, 1, 0] = 101, 100  # the start; the third sequence's first channel has no level
    plain = DailyTransformer(SUMMARY_SPEC, TransformerConfig(relative=3, level=4)).eval()
    plain.load_state_dict(m.state_dict(), strict=False)
    with torch.no_grad():
        mixed, summed = m(tokens), plain(tokens)
        for c in range(3):
            torch.testing.assert_close(mixed[c][:, 0], summed[c][:, 0])  # the summary itself: the plain sum
            normalised = mixed[c][:2, 1:].logsumexp(dim=-1)  # the mixture's log-probabilities
            torch.testing.assert_close(normalised, torch.zeros_like(normalised))
        torch.testing.assert_close(mixed[0][2], summed[0][2])  # no level: the plain sum
        for model in (m, plain):  # absolute heads that say nothing: the plain sum is the kernels alone
            model.heads[1].weight.zero_(), model.heads[1].bias.zero_()
        m.mixture_heads[1].weight.zero_()
        m.mixture_heads[1].bias.fill_(-30.0)  # the absolute part's weight ~ 0: the kernels' distribution
        torch.testing.assert_close(m(tokens)[1][:, 1:], plain(tokens)[1][:, 1:].log_softmax(-1))
        m.mixture_heads[1].bias.fill_(30.0)  # ~ 1: the absolute heads' (here uniform) distribution
        uniform = torch.full_like(m(tokens)[1][:, 1:], -math.log(100))
        torch.testing.assert_close(m(tokens)[1][:, 1:], uniform)


@pytest.mark.parametrize(
    "options",
    [
        {"ordinal": 8},
        {"relative": 3},
        {"level": 4},
        {"level": 4, "deviations": True},
        {"relative": 3, "envelope": True},
    ],
)
def test_ordinal_and_relative_heads_stay_causal(options):
    torch.manual_seed(0)
    m = DailyTransformer(SUMMARY_SPEC, TransformerConfig(**options)).eval()
    tokens = torch.randint(0, 100, (2, 21, 3))
    before = m(tokens)
    changed = tokens.clone()
    changed[:, 11:] = torch.randint(0, 100, changed[:, 11:].shape)
    for a, b in zip(before, m(changed)):
        torch.testing.assert_close(a[:, :11], b[:, :11])


def test_input_dropout_hides_values_in_training_only():
    torch.manual_seed(0)
    m = DailyTransformer(SPEC, TransformerConfig(dropout=0.0, input_dropout=1.0))
    tokens = torch.randint(0, 100, (3, 21, 3))
    tokens[:, 0] = 101  # start tokens are never hidden
    all_missing = torch.full_like(tokens, 100)
    all_missing[:, 0] = 101
    m.train()
    for a, b in zip(m(tokens), m(all_missing)):
        torch.testing.assert_close(a, b)
    m.eval()
    assert not torch.allclose(m(tokens)[0], m(all_missing)[0])


def test_channel_dropout_hides_whole_channels_of_a_window_in_training_only():
    torch.manual_seed(0)
    m = DailyTransformer(SPEC, TransformerConfig(channel_dropout=0.3))
    tokens = torch.randint(0, 100, (2000, 21, 3))
    tokens[:, 0] = 101  # start tokens are never hidden
    hidden = m.train().dropped(tokens)[:, 1:] == 100  # (B, T - 1, C)
    whole = hidden.all(dim=1)  # (B, C): the channel is hidden on every day of the window
    assert torch.equal(hidden.any(dim=1), whole)  # a channel is hidden on all days or on none
    assert abs(whole.float().mean().item() - 0.3) < 0.02
    assert 0.2 < (whole[:, 0] & whole[:, 1]).float().mean().item() / 0.3 < 0.4  # channels drawn independently
    assert torch.equal(m.dropped(tokens)[:, 0], tokens[:, 0])
    assert torch.equal(m.eval().dropped(tokens), tokens)


@pytest.mark.parametrize("option", ["input_dropout", "channel_dropout"])
def test_dropout_shares_outside_zero_to_one_are_refused(option):
    with pytest.raises(ValueError, match=f"option '{option}' must be in \\[0, 1\\]"):
        TransformerConfig(**{option: 1.5})


@pytest.mark.parametrize("p", [0.1, 0.2, 0.5])
def test_keep_masks_keep_the_share_asked_for_independently_and_reproducibly(p):
    torch.manual_seed(3)
    mask = keep_mask(torch.Size((1000, 1000)), p, torch.device("cpu"))
    n = mask.numel()
    assert abs(mask.float().mean().item() - (1 - p)) < 4 * (p * (1 - p) / n) ** 0.5
    neighbours = (mask[:, 1:] & mask[:, :-1]).float().mean().item()  # pairs within one 64-bit draw too
    assert abs(neighbours - (1 - p) ** 2) < 0.005
    torch.manual_seed(3)
    assert torch.equal(keep_mask(torch.Size((1000, 1000)), p, torch.device("cpu")), mask)


def test_dropout_zeroes_and_rescales_in_training_and_is_the_identity_in_evaluation():
    dropout = Dropout(0.2)
    x = torch.ones(200_000)
    y = dropout.train()(x)
    assert torch.unique(y).tolist() == pytest.approx([0.0, 1 / 0.8], rel=1e-4)
    assert abs(y.mean().item() - 1) < 0.01  # the expectation is kept
    assert torch.equal(dropout.eval()(x), x)


def test_the_written_out_training_attention_is_the_fused_one():
    m = model()
    tokens = torch.randint(0, 100, (4, 21, 3))
    fused = m(tokens)  # evaluation: scaled_dot_product_attention
    for module in m.modules():
        if isinstance(module, Dropout):
            module.p = 1e-9  # > 0 takes the written-out path; rounds to keeping everything
    m.train()
    m.config.input_dropout = 0.0
    for a, b in zip(fused, m(tokens)):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(
    "options, expected",
    [
        ({"dropout": 1.0}, "'dropout' must be in"),
        ({"n_embd": 30}, "multiple of 'n_head'"),
        ({"n_layer": 0}, "at least 1"),
        ({"ordinal": -1}, "'ordinal' must be at least 0"),
        ({"relative": -2}, "'relative' must be at least 0"),
        ({"level": -1}, "'level' must be at least 0"),
        ({"envelope": True}, "'envelope' needs 'relative' or 'level'"),
        ({"chain": "summary"}, "chain: summary needs a summary day"),
        ({"chain": "days"}, "option 'chain'"),
    ],
)
def test_impossible_options_are_one_line_errors(options, expected):
    from synthwear.errors import SynthwearError
    from synthwear.interfaces import GeneratorSpec
    from synthwear.plugins import default_registry

    with pytest.raises(SynthwearError, match=expected):
        default_registry().build("generators", "transformer", options, GeneratorSpec((10,), 7), where="r.yaml")


def test_load_base_takes_shared_weights_and_maps_channels_by_slot():
    torch.manual_seed(0)
    base = DailyTransformer(GeneratorSpec((100, 50), 21), TransformerConfig(ordinal=4, relative=2))
    torch.manual_seed(1)
    fresh = DailyTransformer(GeneratorSpec((50, 100, 7), 21), TransformerConfig(ordinal=4, relative=2))
    new = fresh.load_base(base, [1, 0, None], 2)  # channel 0 is the base's channel 1, channel 2 is new
    torch.testing.assert_close(fresh.blocks[0].attn.c_attn.weight, base.blocks[0].attn.c_attn.weight)
    torch.testing.assert_close(fresh.channel_embeddings[0].weight, base.channel_embeddings[1].weight)
    torch.testing.assert_close(fresh.heads[1].weight, base.heads[0].weight)
    torch.testing.assert_close(fresh.relative_heads[0].kernel.weight, base.relative_heads[1].kernel.weight)
    assert set(new) == {
        "channel_embeddings.2.weight",
        "heads.2.weight",
        "heads.2.bias",
        "ordinal_embeddings.2.projection.weight",
        "ordinal_heads.2.coefficients.weight",
        "relative_heads.2.kernel.weight",
        "relative_heads.2.kernel.bias",
    }


def test_a_base_channel_the_model_lacks_reads_as_missing_throughout():
    torch.manual_seed(0)
    base = DailyTransformer(GeneratorSpec((20, 30, 7), 10), TransformerConfig(ordinal=4, relative=2)).eval()
    subset = DailyTransformer(GeneratorSpec((30,), 10), TransformerConfig(ordinal=4, relative=2)).eval()
    subset.load_base(base, [1], base_scored=2)  # keeps the base's second channel; the third is a covariate
    tokens = torch.randint(0, 30, (3, 10, 1))
    tokens[:, 0] = 31  # the start token
    full = torch.cat([torch.full((3, 10, 1), 20), tokens, torch.full((3, 10, 1), 7)], dim=-1)  # missing, unknown
    full[:, 0, 0] = 21  # the first channel's start token; a covariate has none
    torch.testing.assert_close(subset(tokens)[0], base(full)[1])


@pytest.mark.parametrize(
    ("config", "days", "message"),
    [({"n_embd": 32}, 21, "n_embd 64, this one 32"), ({}, 22, "context is 21 days, this model's 22")],
)
def test_load_base_refuses_another_architecture(config, days, message):
    base = DailyTransformer(GeneratorSpec((100,), 21), TransformerConfig())
    other = DailyTransformer(GeneratorSpec((100,), days), TransformerConfig(**config))
    with pytest.raises(ValueError, match=message):
        other.load_base(base, [0], 1)


def test_adapters_start_at_the_base_train_few_values_and_merge_into_the_plain_layers():
    m = model()
    tokens = torch.randint(0, 100, (2, 21, 3))
    before = [logits.detach() for logits in m(tokens)]
    names = m.add_adapters(rank=2)
    assert len(names) == 3 * 4 * 2 and all(".down." in n or ".up." in n for n in names)
    assert not m.blocks[0].attn.c_attn.layer.weight.requires_grad  # the base's matrix stays fixed
    for a, b in zip(before, m(tokens)):
        torch.testing.assert_close(a, b)  # the up factor starts at zero: exactly the base
    with torch.no_grad():
        for name, parameter in m.named_parameters():
            if name.endswith("up.weight"):
                parameter.normal_()
    adapted = [logits.detach() for logits in m(tokens)]
    m.merge_adapters()
    assert isinstance(m.blocks[0].attn.c_attn, torch.nn.Linear) and "blocks.0.attn.c_attn.weight" in m.state_dict()
    for a, b in zip(adapted, m(tokens)):
        torch.testing.assert_close(a, b, atol=1e-4, rtol=1e-4)  # merged: the same function, the plain module
    assert m.blocks[0].attn.c_attn.weight.requires_grad


def test_fine_tuning_parameters_name_the_heads_and_the_last_block():
    m = model()
    heads, last = m.fine_tuning_parameters("heads"), m.fine_tuning_parameters("last_layers")
    assert "heads.0.weight" in heads and "ln_f.weight" in heads and not any(n.startswith("blocks.") for n in heads)
    assert set(heads) < set(last) and any(n.startswith("blocks.2.") for n in last)
    assert not any(n.startswith(("blocks.0.", "blocks.1.", "channel_embeddings")) for n in last)


def test_a_chained_channel_reads_the_same_days_channels_before_it_and_none_after():
    torch.manual_seed(0)
    m = DailyTransformer(SPEC, TransformerConfig(ordinal=8, relative=3, chain=True)).eval()
    assert m.chained and not DailyTransformer(SPEC, TransformerConfig()).chained
    tokens, same_day = torch.randint(0, 100, (2, 21, 3)), torch.randint(0, 100, (2, 21, 3))
    before = m(tokens, same_day=same_day)
    for changed_channel in (0, 1):
        changed = same_day.clone()
        changed[..., changed_channel] = (changed[..., changed_channel] + 50) % 100
        after = m(tokens, same_day=changed)
        for c, (a, b) in enumerate(zip(before, after)):
            if c <= changed_channel:
                torch.testing.assert_close(a, b)
            else:
                assert not torch.allclose(a, b)
    hidden = m.encode(tokens)  # the sampler's path: heads of chosen channels only, the last position
    torch.testing.assert_close(m.logits(hidden.last(), same_day[:, -1:], [2])[0], before[2][:, -1:])


def test_chaining_the_summary_only_leaves_the_days_as_they_were():
    torch.manual_seed(0)
    m = DailyTransformer(SUMMARY_SPEC, TransformerConfig(level=4, chain="summary")).eval()
    tokens, same_day = torch.randint(0, 100, (2, 22, 3)), torch.randint(0, 100, (2, 22, 3))
    changed = same_day.clone()
    changed[..., 0] = (changed[..., 0] + 50) % 100  # another resting HR on every day, the summary's too
    for c, (a, b) in enumerate(zip(m(tokens, same_day=same_day), m(tokens, same_day=changed))):
        torch.testing.assert_close(a[:, 1:], b[:, 1:])  # the days
        assert torch.allclose(a[:, :1], b[:, :1]) == (c == 0)  # the summary: sleep and steps read it
