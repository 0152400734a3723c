"""The transformer's KV cache: the sampler's fast path must sample exactly what the plain forward would."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from synthwear.default_plugins.binning import BinningConfig, BinningEncoder
from synthwear.default_plugins.transformer import DailyTransformer, TransformerConfig
from synthwear.interfaces import GeneratorSpec
from synthwear.model import SynthesisModel

SPEC = GeneratorSpec((10, 12, 8), max_days=6)
SUMMARY_SPEC = GeneratorSpec((10, 12, 8), max_days=6, summary=True)


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
@pytest.mark.parametrize("prefix", [1, 2])  # the start alone, or with the summary day (the level)
def test_extending_day_by_day_gives_the_logits_of_the_full_forward(options, prefix):
    torch.manual_seed(0)
    generator = DailyTransformer(SUMMARY_SPEC, TransformerConfig(n_layer=2, n_head=2, n_embd=8, **options)).eval()
    tokens = torch.stack([torch.randint(0, n, (3, SPEC.max_days)) for n in SPEC.vocab_sizes], dim=-1)
    full = generator(tokens)
    first, cache = generator.extend(tokens[:, :prefix], None)  # a primed prefix, then one day at a time
    pieces = [first] + [generator.extend(tokens[:, t : t + 1], cache)[0] for t in range(prefix, SPEC.max_days)]
    for c in range(len(SPEC.vocab_sizes)):
        assert torch.allclose(torch.cat([p[c] for p in pieces], dim=1), full[c], atol=1e-5)


@pytest.mark.parametrize(
    ("spec", "options", "primed"),
    [
        (SPEC, {}, 2),
        (SUMMARY_SPEC, {"level": 3}, 0),
        (SUMMARY_SPEC, {"relative": 2, "level": 3, "deviations": True}, 0),
        (SUMMARY_SPEC, {"relative": 2, "level": 3, "deviations": True, "envelope": True}, 0),
        (SPEC, {"chain": True}, 2),
        (SUMMARY_SPEC, {"ordinal": 4, "relative": 2, "level": 3, "deviations": True, "chain": True}, 0),
    ],
)
def test_cached_sampling_draws_the_same_sequences_as_the_plain_forward_also_past_the_context(spec, options, primed):
    torch.manual_seed(0)
    generator = DailyTransformer(spec, TransformerConfig(n_layer=2, n_head=2, n_embd=8, **options))
    prime = np.random.default_rng(0).uniform(0, 100, (5, primed, 3)) if primed else None
    days = spec.max_days + 3  # the last days slide the context
    cached = make_model(generator, spec).generate(5, days, seed=3, prime=prime, batch_size=2)
    plain = make_model(ForwardOnly(generator), spec).generate(5, days, seed=3, prime=prime, batch_size=2)
    assert cached.shape == (5, days, 3)
    np.testing.assert_array_equal(cached, plain)
    uncached = make_model(generator, spec).generate(5, days, seed=3, prime=prime, batch_size=2, use_cache=False)
    np.testing.assert_array_equal(cached, uncached)
