"""The transformer's KV cache: the sampler's fast path must sample exactly what the plain forward would."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from synthwear.default_plugins import transformer as transformer_module
from synthwear.default_plugins.binning import BinningConfig, BinningEncoder
from synthwear.default_plugins.transformer import SPREAD_GAIN, DailyTransformer, TransformerConfig
from synthwear.errors import SynthwearError
from synthwear.interfaces import GeneratorSpec
from synthwear.model import SynthesisModel

SPEC = GeneratorSpec((10, 12, 8), max_days=6)
SUMMARY_SPEC = GeneratorSpec((10, 12, 8), max_days=6, summary=True)
SPREAD_SPEC = GeneratorSpec((10, 12, 8), max_days=7, summary=2)


def transformer(spec: GeneratorSpec, **options) -> DailyTransformer:
    """A small transformer; a spread's heads get weights, which start at zero (no effect), of the size
    training gives them (their output has a gain: unit weights would scale logits by e^20)."""
    generator = DailyTransformer(spec, TransformerConfig(n_layer=2, n_head=2, n_embd=8, **options))
    for head in getattr(generator, "spread_heads", []):
        torch.nn.init.normal_(head.slope.weight, std=0.5 / SPREAD_GAIN)
    return generator


class ForwardOnly(torch.nn.Module):
    """A generator with only the plain ``forward`` contract (no ``extend``)."""

    def __init__(self, inner: torch.nn.Module):
        super().__init__()
        self.inner = inner

    def forward(self, tokens: torch.Tensor) -> list[torch.Tensor]:
        return self.inner(tokens)

    @property
    def chained(self) -> bool:
        return self.inner.chained

    def encode(self, tokens: torch.Tensor):
        return self.inner.encode(tokens)

    def logits(self, hidden, same_day, channels):
        return self.inner.logits(hidden, same_day, channels)


class RecomputedCache(torch.nn.Module):
    """``extend`` without a KV cache: the "cache" is the ids read so far and every call re-runs the plain
    forward over them, so whatever window the sampler feeds is read as a fresh pass reads it. Records
    how many positions each read saw."""

    def __init__(self, inner: torch.nn.Module):
        super().__init__()
        self.inner, self.seen = inner, []

    def forward(self, tokens: torch.Tensor) -> list[torch.Tensor]:
        return self.inner(tokens)

    chained = False

    def extend(self, tokens: torch.Tensor, cache: torch.Tensor | None) -> tuple[list[torch.Tensor], torch.Tensor]:
        seen = tokens if cache is None else torch.cat([cache, tokens], dim=1)
        self.seen.append(seen.size(1))
        return [logits[:, -tokens.size(1) :] for logits in self.inner(seen)], seen


def make_model(generator: torch.nn.Module, spec: GeneratorSpec = SPEC) -> SynthesisModel:
    encoders = [BinningEncoder(0, 100, BinningConfig(bins=n)) for n in spec.vocab_sizes]
    return SynthesisModel(
        ["a", "b", "c"], [0, 0, 0], [(0, 100)] * 3, encoders, generator, "transformer", spec, {}, spec.summary
    )


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"ordinal": 4, "relative": 2},
        {"level": 3},
        {"level": 3, "deviations": True},
        {"relative": 2, "level": 3, "envelope": True},
        {"ordinal": 4, "relative": 2, "level": 3, "deviations": True, "chain": True},
    ],
)
@pytest.mark.parametrize("prefix", [1, 2, 3])  # the start alone, with the level, with the level and the spread
@pytest.mark.parametrize("spec", [SUMMARY_SPEC, SPREAD_SPEC])
def test_extending_day_by_day_gives_the_logits_of_the_full_forward(options, prefix, spec):
    torch.manual_seed(0)
    generator = transformer(spec, **options).eval()
    tokens = torch.stack([torch.randint(0, n, (3, spec.max_days)) for n in spec.vocab_sizes], dim=-1)
    full = generator(tokens)
    first, cache = generator.extend(tokens[:, :prefix], None)  # a primed prefix, then one day at a time
    pieces = [first] + [generator.extend(tokens[:, t : t + 1], cache)[0] for t in range(prefix, spec.max_days)]
    for c in range(len(SPEC.vocab_sizes)):
        assert torch.allclose(torch.cat([p[c] for p in pieces], dim=1), full[c], atol=1e-5)


@pytest.mark.parametrize("rows", [1, 8, 20])  # 4 days each: one person per slice, two, all five at once
def test_a_many_day_refill_sliced_by_persons_gives_the_logits_and_cache_of_one_pass(monkeypatch, rows):
    torch.manual_seed(0)
    spec = SPREAD_SPEC
    generator = transformer(spec, ordinal=4, relative=2, level=3, deviations=True, envelope=True).eval()
    tokens = torch.stack([torch.randint(0, n, (5, spec.max_days)) for n in spec.vocab_sizes], dim=-1)
    whole, whole_cache = generator.extend(tokens[:, :4], None)
    monkeypatch.setattr(transformer_module, "REFILL_ROWS", rows)  # 5 persons x 4 days = 20 positions
    sliced, sliced_cache = generator.extend(tokens[:, :4], None)
    for c in range(len(spec.vocab_sizes)):
        torch.testing.assert_close(sliced[c], whole[c])
    for sliced_keys, keys in zip(sliced_cache.keys + sliced_cache.values, whole_cache.keys + whole_cache.values):
        torch.testing.assert_close(sliced_keys[:, :, :4], keys[:, :, :4])
    following = tokens[:, 4:5]  # the next day reads the sliced refill's cache as it reads one pass's
    torch.testing.assert_close(
        generator.extend(following, sliced_cache)[0], generator.extend(following, whole_cache)[0]
    )


@pytest.mark.parametrize(
    ("spec", "options", "primed"),
    [
        (SPEC, {}, 2),
        (SUMMARY_SPEC, {"level": 3}, 0),
        (SUMMARY_SPEC, {"relative": 2, "level": 3, "deviations": True}, 0),
        (SUMMARY_SPEC, {"relative": 2, "level": 3, "deviations": True, "envelope": True}, 0),
        (SPEC, {"chain": True}, 2),
        (SUMMARY_SPEC, {"ordinal": 4, "relative": 2, "level": 3, "deviations": True, "chain": True}, 0),
        (SPREAD_SPEC, {"relative": 2, "level": 3, "deviations": True, "envelope": True}, 0),
        (SPREAD_SPEC, {"relative": 2, "level": 3, "deviations": True}, 2),
    ],
)
def test_cached_sampling_draws_the_same_sequences_as_the_plain_forward_also_past_the_context(spec, options, primed):
    torch.manual_seed(0)
    generator = transformer(spec, **options)
    prime = np.random.default_rng(0).uniform(0, 100, (5, primed, 3)) if primed else None
    days = spec.max_days + 3  # the last days slide the context
    cached = make_model(generator, spec).generate(5, days, seed=3, prime=prime, batch_size=2, slide=1)
    plain = make_model(ForwardOnly(generator), spec).generate(5, days, seed=3, prime=prime, batch_size=2)
    assert cached.shape == (5, days, 3)
    np.testing.assert_array_equal(cached, plain)
    uncached = make_model(generator, spec).generate(5, days, seed=3, prime=prime, batch_size=2, use_cache=False)
    np.testing.assert_array_equal(cached, uncached)


@pytest.mark.parametrize(
    ("spec", "options"),
    [
        (SPEC, {}),
        (SUMMARY_SPEC, {"ordinal": 4, "relative": 2, "level": 3, "deviations": True, "envelope": True}),
        (SPREAD_SPEC, {"ordinal": 4, "relative": 2, "level": 3, "deviations": True, "envelope": True}),
    ],
)
@pytest.mark.parametrize("slide", [2, 4])
def test_past_the_context_the_cache_is_refilled_every_slide_days_from_the_most_recent_days(spec, options, slide):
    """Each refill reads the start (and summary) and the recent days, then the cache grows day by day
    until it holds the whole context: the KV cache samples what fresh passes over those windows do."""
    torch.manual_seed(0)
    generator = transformer(spec, **options)
    days = 3 * spec.max_days
    cached = make_model(generator, spec).generate(4, days, seed=5, batch_size=4, slide=slide)
    recomputed = RecomputedCache(generator)
    np.testing.assert_array_equal(
        cached, make_model(recomputed, spec).generate(4, days, seed=5, batch_size=4, slide=slide)
    )
    sliding = recomputed.seen[spec.max_days :]  # the reads once the window is full (a summary is one read)
    assert max(recomputed.seen) == spec.max_days
    assert sliding[0] == spec.max_days + 1 - slide  # the first refill, then one more position a day
    assert sliding[:slide] == list(range(spec.max_days + 1 - slide, spec.max_days + 1))
    assert sliding.count(spec.max_days + 1 - slide) == -(-len(sliding) // slide)


@pytest.mark.parametrize("slide", [0, SPEC.max_days])
def test_a_slide_beyond_the_window_is_refused(slide):
    model = make_model(DailyTransformer(SPEC, TransformerConfig(n_layer=1, n_head=1, n_embd=4)))
    with pytest.raises(SynthwearError, match=f"slide must be 1 to {SPEC.max_days - 1} days .*got {slide}"):
        model.generate(1, 30, slide=slide)
