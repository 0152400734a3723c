"""The paper's generator: a small decoder-only transformer over days, one softmax head per channel.

Read top to bottom: config -> dropout -> causal self-attention -> MLP -> block -> model. Attention
is built from ``nn.Linear`` and ``scaled_dot_product_attention`` (not ``nn.MultiheadAttention``) so
that Opacus can compute per-sample gradients for DP-SGD.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, NamedTuple

import torch
import torch.nn as nn
import torch.nn.functional as F

from synthwear.hookspecs import hookimpl
from synthwear.interfaces import GeneratorSpec
from synthwear.summary import spread_of_id

# Positions (persons x days) the blocks take at once when a sampler refills its cache with many days.
# A year's sampling refills every few days; one pass over 4,096 persons x 13 days makes ~50 MB
# tensors that the allocator maps fresh each time, and first touching their pages costs more than the
# arithmetic. Slices the size of one day's step for 4,096 persons: 365 days for 4,096 persons on 2 CPU
# cores 91 and 101 -> 110 and 107 persons/s, the same samples (docs/benchmarks.md, session 25).
REFILL_ROWS = 4096


@dataclass
class TransformerConfig:
    n_layer: int = 3  # paper: 3 decoder blocks
    n_head: int = 4  # paper: 4 attention heads
    n_embd: int = 64  # paper: 64-dimensional embeddings
    dropout: float = 0.1  # the cohorts are small; some regularisation keeps early stopping honest
    # Share of input values hidden as "missing" while training. Small cohorts are memorised day by
    # day otherwise; hiding inputs also teaches the model to work through real gaps.
    input_dropout: float = 0.0
    # Share of a training window's channels hidden as "missing" on every day of it. A base model
    # fine-tuned on a cohort that lacks one of its channels reads that channel as missing throughout
    # (``absent_inputs``), which input dropout alone almost never shows it; trained with whole
    # channels hidden now and then, it has learned what its other channels do without it.
    channel_dropout: float = 0.0
    # Bins are ordered values. With ``ordinal`` > 0 each channel's bin embeddings and output logits
    # get a shared term in that many sine/cosine features of the bin index (``ordinal_features``),
    # so "about yesterday's value" is one linear map for every bin instead of a hundred separate
    # ones to learn; 0 keeps the paper's free embeddings and heads.
    ordinal: int = 0
    # With ``relative`` > 0 each channel's logits also get a learned, context-dependent kernel over
    # the bins within that many bins of the previous day's bin ("today is about yesterday, give or
    # take"), the structure of slowly varying channels that free heads learn only from much data.
    relative: int = 0
    # With ``level`` > 0 and a summary day, each channel's logits also get a learned, context-dependent
    # function of every bin's distance from the sequence's level (its summary bin), in that many
    # sine/cosine frequencies: "today is about this person's level, give or take", which attention
    # alone learns only partly from a small cohort (days drift towards the cohort's mean).
    level: int = 0
    # With ``deviations`` (and a level), a day after the summary is drawn from a mixture: with a
    # learned, context-dependent weight from the level and relative kernels alone (a deviation from
    # this person's level and yesterday), else from the absolute heads (the cohort's marginal: rare
    # days far from any level). Added together, as without it, the absolute heads pull every person
    # towards the cohort's mean: synthetic persons then differ half as much as real ones.
    deviations: bool = False
    # With ``envelope``, the relative and level kernels each also get a learned, context-dependent
    # slope times every bin's distance from yesterday's bin / the level (a Laplace envelope). A kernel
    # of a few bins, or of sines and cosines, cannot make far bins unlikely: the relative kernel
    # pushes the bins at its edge down and leaves those just beyond it at zero, and resting HR then
    # jumped 8 bins or more on 1.4% of predicted days against 0.04% of real ones.
    envelope: bool = False
    # With ``chain``, a day's channels are predicted one after another: each channel's heads also read
    # the same day's channels before it (resting HR, then sleep given it, then steps given both). Three
    # independent heads draw a day's channels, and a person's levels on the summary day, as if they
    # were unrelated; chained, a day is drawn from the joint distribution the data has. ``summary``:
    # only the summary day is chained (a person's levels drawn jointly), the days as without it.
    chain: bool | Literal["summary"] = False

    def __post_init__(self):
        for name in ("n_layer", "n_head", "n_embd"):
            if getattr(self, name) < 1:
                raise ValueError(f"option {name!r} must be at least 1, got {getattr(self, name)}")
        if self.n_embd % self.n_head:
            raise ValueError(f"option 'n_embd' ({self.n_embd}) must be a multiple of 'n_head' ({self.n_head})")
        if not 0 <= self.dropout < 1:  # 1 would scale the kept nothing by 1/0
            raise ValueError(f"option 'dropout' must be in [0, 1), got {self.dropout}")
        for name in ("input_dropout", "channel_dropout"):
            if not 0 <= getattr(self, name) <= 1:
                raise ValueError(f"option {name!r} must be in [0, 1], got {getattr(self, name)}")
        for name in ("ordinal", "relative", "level"):
            if getattr(self, name) < 0:
                raise ValueError(f"option {name!r} must be at least 0, got {getattr(self, name)}")


def keep_mask(shape: torch.Size, p: float, device: torch.device) -> torch.Tensor:
    """True with probability 1 - p (p rounded to a multiple of 1/65536), independently per element.

    Why not ``nn.Dropout``: on CPU torch draws one random number per element, which made dropout
    masks a quarter of a training step of this small model. Here each 64-bit draw of torch's
    generator gives four uniform 16-bit values: the same seeded generator, a quarter of the draws.
    """
    n = math.prod(shape)
    bits = torch.empty((n + 3) // 4, dtype=torch.int64, device=device).random_(-(2**63), None)  # the whole int64 range
    return bits.view(torch.int16)[:n].view(shape) >= -32768 + round(p * 65536)


class Dropout(nn.Module):
    """``nn.Dropout``'s contract (zero with probability p while training, scale the rest by
    1 / (1 - p)) with ``keep_mask``'s masks."""

    def __init__(self, p: float):
        super().__init__()
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0:
            return x
        return x * keep_mask(x.shape, self.p, x.device) * (65536 / (65536 - round(self.p * 65536)))


class CausalSelfAttention(nn.Module):
    def __init__(self, config: TransformerConfig):
        super().__init__()
        if config.n_embd % config.n_head:
            raise ValueError(f"transformer n_embd ({config.n_embd}) must be divisible by n_head ({config.n_head})")
        self.c_attn = nn.Linear(config.n_embd, 3 * config.n_embd)  # query, key, value in one matmul
        self.c_proj = nn.Linear(config.n_embd, config.n_embd)
        self.attn_dropout, self.resid_dropout = Dropout(config.dropout), Dropout(config.dropout)
        self.n_head, self.n_embd = config.n_head, config.n_embd

    def split_heads(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Query, key and value of every position, each (B, nh, T, hs)."""
        B, T, C = x.size()
        q, k, v = self.c_attn(x).split(self.n_embd, dim=2)
        return tuple(t.view(B, T, self.n_head, C // self.n_head).transpose(1, 2) for t in (q, k, v))

    def merge_heads(self, y: torch.Tensor) -> torch.Tensor:
        """(B, nh, T, hs) attention output -> (B, T, C), projected."""
        B, _, T, _ = y.size()
        return self.resid_dropout(self.c_proj(y.transpose(1, 2).contiguous().view(B, T, self.n_embd)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q, k, v = self.split_heads(x)
        if not (self.training and self.attn_dropout.p > 0):
            # is_causal masks the upper triangle of the attention weights: day t sees days <= t only
            return self.merge_heads(F.scaled_dot_product_attention(q, k, v, is_causal=True))
        # training with dropout: the same attention written out, so its weights take keep_mask's dropout
        T = q.size(2)
        weights = (q @ k.transpose(-2, -1)) / math.sqrt(k.size(-1))
        weights = weights.masked_fill(torch.ones(T, T, dtype=torch.bool, device=x.device).triu(1), float("-inf"))
        return self.merge_heads(self.attn_dropout(weights.softmax(dim=-1)) @ v)

    def extend(self, x: torch.Tensor, keys: torch.Tensor, values: torch.Tensor, length: int) -> torch.Tensor:
        """Attention for new positions ``x`` after ``length`` cached ones (inference only); their
        keys and values are written into the (B, nh, max_days, hs) buffers in place."""
        q, k, v = self.split_heads(x)
        seen = length + q.size(2)
        keys[:, :, length:seen], values[:, :, length:seen] = k, v
        # new position i sits at length + i and sees every position up to itself
        causal = torch.arange(seen, device=x.device)[None, :] <= torch.arange(length, seen, device=x.device)[:, None]
        y = F.scaled_dot_product_attention(q, keys[:, :, :seen], values[:, :, :seen], attn_mask=causal)
        return self.merge_heads(y)


class MLP(nn.Module):
    def __init__(self, config: TransformerConfig):
        super().__init__()
        self.c_fc = nn.Linear(config.n_embd, 4 * config.n_embd)
        self.c_proj = nn.Linear(4 * config.n_embd, config.n_embd)
        self.dropout = Dropout(config.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.c_proj(F.gelu(self.c_fc(x))))


class Block(nn.Module):
    def __init__(self, config: TransformerConfig):
        super().__init__()
        self.ln_1 = nn.LayerNorm(config.n_embd)
        self.attn = CausalSelfAttention(config)
        self.ln_2 = nn.LayerNorm(config.n_embd)
        self.mlp = MLP(config)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))

    def extend(self, x: torch.Tensor, keys: torch.Tensor, values: torch.Tensor, length: int) -> torch.Tensor:
        x = x + self.attn.extend(self.ln_1(x), keys, values, length)
        return x + self.mlp(self.ln_2(x))


def ordinal_frequencies(n_bins: int, n_frequencies: int) -> torch.Tensor:
    """(n_frequencies,) angular frequencies per bin, periods spaced geometrically from 3 bins (a
    day-to-day step) to twice the range (a level)."""
    periods = torch.logspace(math.log10(3.0), math.log10(2.0 * n_bins), n_frequencies, dtype=torch.float64)
    return 2 * math.pi / periods


def ordinal_features(n_bins: int, n_frequencies: int) -> torch.Tensor:
    """(n_bins, 2 * n_frequencies) sines and cosines of the bin index. Products of two such features
    give cos(ω (a - b)), a kernel in the distance between bins, which is how a linear map turns
    "yesterday was bin a" into "today is near bin a"."""
    angles = torch.arange(n_bins, dtype=torch.float64)[:, None] * ordinal_frequencies(n_bins, n_frequencies)[None, :]
    return torch.cat([angles.sin(), angles.cos()], dim=1).float()


class OrdinalEmbedding(nn.Module):
    """A channel's input ids -> a learned projection of their bins' ordinal features, added to the
    free embedding of each id ("missing" and "start" have no place on the scale: zero features)."""

    def __init__(self, n_bins: int, n_embd: int, n_frequencies: int):
        super().__init__()
        self.register_buffer("features", F.pad(ordinal_features(n_bins, n_frequencies), (0, 0, 0, 2)), persistent=False)
        self.projection = nn.Linear(2 * n_frequencies, n_embd, bias=False)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.projection(self.features[ids])


class OrdinalLogits(nn.Module):
    """Vectors -> logits over a channel's bins that are a learned combination of the bins' ordinal
    features, added to the free head's logits."""

    def __init__(self, n_bins: int, n_embd: int, n_frequencies: int):
        super().__init__()
        self.register_buffer("features", ordinal_features(n_bins, n_frequencies).T.contiguous(), persistent=False)
        self.coefficients = nn.Linear(n_embd, 2 * n_frequencies, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.coefficients(x) @ self.features


def envelope_feature(offsets: torch.Tensor, n_bins: int) -> torch.Tensor:
    """Bin offsets -> minus their distance, scaled so that the whole range is sqrt(n_bins): a learned
    coefficient on it is the slope of a Laplace envelope that makes far bins unlikely. In float32: under
    bfloat16 autocast the logits it is added to are promoted to float32, which the loss reads anyway."""
    return -offsets.abs().float() / math.sqrt(n_bins)


class RelativeLogits(nn.Module):
    """Vectors and the previous day's ids -> logits for the bins within ``width`` of the previous
    day's bin, one learned value per offset and position (with ``envelope``, also a learned slope
    times every bin's distance from it); nothing where the previous day is missing or the start."""

    def __init__(self, n_bins: int, n_embd: int, width: int, envelope: bool = False):
        super().__init__()
        self.n_bins, self.width, self.envelope = n_bins, width, envelope
        self.kernel = nn.Linear(n_embd, 2 * width + 1 + envelope)

    def forward(self, x: torch.Tensor, previous: torch.Tensor) -> torch.Tensor:
        offsets = torch.arange(-self.width, self.width + 1, device=x.device)
        target = previous[..., None] + offsets  # (B, T, 2w+1) bins the kernel lands on
        valid = (previous[..., None] < self.n_bins) & (target >= 0) & (target < self.n_bins)
        coefficients = self.kernel(x)
        kernel = coefficients[..., : 2 * self.width + 1] * valid
        logits = kernel.new_zeros(*x.shape[:-1], self.n_bins + 1)  # the last column takes what falls off the ends
        logits = logits.scatter_add(-1, torch.where(valid, target, self.n_bins), kernel)[..., : self.n_bins]
        if not self.envelope:
            return logits
        distance = envelope_feature(torch.arange(self.n_bins, device=x.device) - previous[..., None], self.n_bins)
        return logits + coefficients[..., -1:] * distance * (previous[..., None] < self.n_bins)


class LevelFeatures(NamedTuple):
    """What ``LevelLogits`` needs of each sequence's level, computed once per sequence."""

    rotation: torch.Tensor  # (B, 1, 2F): sine and cosine of each frequency times the level
    distance: torch.Tensor  # (B, 1, n_bins): every bin's ``envelope_feature`` from the level
    known: torch.Tensor  # (B, 1, 1): 1 where the sequence's level is known, else 0
    spread: torch.Tensor | None = None  # (B, 1, 1) with a spread summary day: log1p of it (``spread_of_id``)
    spread_known: torch.Tensor | None = None  # (B, 1, 1): 1 where the sequence's spread is known, else 0

    def with_spread(self, ids: torch.Tensor, n_bins: int) -> LevelFeatures:
        """These features with the sequence's spread summary ids (B,) (``n_bins`` or more: unknown)."""
        known = ids < n_bins
        spread = torch.where(known, spread_of_id(ids.clamp(max=n_bins - 1), n_bins), 0.0)
        return self._replace(spread=spread[:, None, None], spread_known=known.float()[:, None, None])


class LevelLogits(nn.Module):
    """Vectors and each sequence's level (a bin id; ``n_bins`` or more: none) -> logits that are a
    learned combination of sine/cosine features of each bin's offset from the level, a smooth
    kernel of any width around it (with ``envelope``, also of the offset's size, a Laplace decay
    that sines cannot give); nothing where the level is unknown.

    Why rotated coefficients: sin(w(b - L)) and cos(w(b - L)) are sin(wb) and cos(wb) rotated by the
    angle wL, so a combination of the offsets' features is the same combination, rotated per
    sequence, of the bins' own features (``ordinal_features``), which all sequences share. A day
    then costs a (2F x n_bins) product instead of reading (n_bins x 2F) features per sequence.
    """

    def __init__(self, n_bins: int, n_embd: int, n_frequencies: int, envelope: bool = False):
        super().__init__()
        self.n_bins, self.envelope = n_bins, envelope
        self.register_buffer("frequencies", ordinal_frequencies(n_bins, n_frequencies).float(), persistent=False)
        self.register_buffer("bin_features", ordinal_features(n_bins, n_frequencies).T.contiguous(), persistent=False)
        self.coefficients = nn.Linear(n_embd, 2 * n_frequencies + envelope, bias=False)

    def features(self, level: torch.Tensor) -> LevelFeatures:
        """(B,) levels -> what ``forward`` reads of them: fixed for a sequence, so the sampler
        computes them once."""
        known = (level < self.n_bins).float()[:, None, None]
        angles = level[:, None, None].float() * self.frequencies
        offsets = torch.arange(self.n_bins, device=level.device)[None, None, :] - level[:, None, None]
        return LevelFeatures(
            torch.cat([angles.sin(), angles.cos()], dim=-1), envelope_feature(offsets, self.n_bins), known
        )

    def forward(self, x: torch.Tensor, features: LevelFeatures) -> torch.Tensor:
        coefficients = self.coefficients(x)  # (B, T, [1 +] 2F): [envelope slope,] sine and cosine weights
        a, c = coefficients[..., self.envelope :].float().chunk(2, dim=-1)
        sin_level, cos_level = features.rotation.chunk(2, dim=-1)
        # a sin(w(b - L)) + c cos(w(b - L)) = (a cos wL + c sin wL) sin wb + (c cos wL - a sin wL) cos wb
        rotated = torch.cat([a * cos_level + c * sin_level, c * cos_level - a * sin_level], dim=-1)
        logits = rotated @ self.bin_features
        if self.envelope:
            logits = logits + coefficients[..., :1].float() * features.distance
        return logits * features.known


# The spread heads' output is their linear layer's times this: a few scalars trained beside thousands of
# weights at one learning rate moved 0.04 in a whole training (the kernels' magnitude, learned from
# the hidden state, absorbs what they would do early on), where fitted alone on the same windows they
# reach 1.4 and lower resting HR's loss by 0.03 nats a day. Under Adam a gain is a learning-rate
# multiplier for these parameters alone.
SPREAD_GAIN = 10.0


class SpreadHead(nn.Module):
    """A sequence's spread -> the factor its kernels around yesterday and the level are multiplied by,
    exp(-(w s + b)) for the log spread s (the temperature of a person's day-to-day deviations), and
    the shift w' s + b' of the mixture's logit of the absolute part (how many days are the cohort's
    rather than the person's); 1 and 0 where the spread is unknown, and at the start (all zero).
    Terms on the logits, rather than the spread read by attention alone: read only by attention, the
    drawn spread and the volatility of the days drawn after it were uncorrelated (r 0.00-0.04)."""

    def __init__(self):
        super().__init__()
        self.slope = nn.Linear(1, 2)  # a linear layer, so Opacus computes its per-sample gradients
        nn.init.zeros_(self.slope.weight)
        nn.init.zeros_(self.slope.bias)

    def forward(self, features: LevelFeatures) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, 1, 1) the kernels' factor and (B, 1, 1) the shift of the absolute part's mixture logit."""
        out = SPREAD_GAIN * self.slope(features.spread)
        factor = torch.exp(-out[..., :1]) * features.spread_known + (1 - features.spread_known)
        return factor, out[..., 1:] * features.spread_known


class LowRankAdapter(nn.Module):
    """A frozen linear layer plus a trainable low-rank update (LoRA, Hu et al. 2021): W x + B A x.

    Fine-tuning a base on a few private persons under DP-SGD: the noise DP adds grows with the number
    of trained parameters, and rank-r updates of each block's matrices are a small fraction of them.
    B starts at zero, so training starts exactly at the base. Both factors are ``nn.Linear``, whose
    per-sample gradients Opacus computes; ``merged`` folds the update back into one layer.
    """

    def __init__(self, layer: nn.Linear, rank: int):
        super().__init__()
        self.layer = layer.requires_grad_(False)
        self.down = nn.Linear(layer.in_features, rank, bias=False)
        self.up = nn.Linear(rank, layer.out_features, bias=False)
        nn.init.zeros_(self.up.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layer(x) + self.up(self.down(x))

    def merged(self) -> nn.Linear:
        with torch.no_grad():
            self.layer.weight += self.up.weight @ self.down.weight
        return self.layer.requires_grad_(True)


@dataclass
class KVCache:
    """Keys and values of the positions seen so far, per block, in buffers sized for the whole
    context, so that a new day writes one slot instead of copying the prefix."""

    keys: list[torch.Tensor]  # per block (B, nh, max_days, hs)
    values: list[torch.Tensor]
    length: int = 0
    level: list[LevelFeatures] | None = None  # per channel the level's features, once the cache has seen it


@dataclass
class Hidden:
    """What the output heads read at some positions: the last block's output (B, T, n_embd), the
    input ids there (B, T, C), the level's features per channel (None: no level) and the first
    position's index."""

    x: torch.Tensor
    tokens: torch.Tensor
    level: list[LevelFeatures] | None
    first_position: int

    def last(self) -> Hidden:
        """The last position only: what the next day's channels are drawn from."""
        return Hidden(self.x[:, -1:], self.tokens[:, -1:], self.level, self.first_position + self.x.size(1) - 1)


class DailyTransformer(nn.Module):
    """Input day t is the sum of one embedding per channel plus a position embedding."""

    def __init__(self, spec: GeneratorSpec, config: TransformerConfig = TransformerConfig()):
        super().__init__()
        self.spec, self.config = spec, config
        # each channel's ids: its bins, then "missing", then "start of sequence"
        self.channel_embeddings = nn.ModuleList(nn.Embedding(n + 2, config.n_embd) for n in spec.vocab_sizes)
        self.position_embedding = nn.Embedding(spec.max_days, config.n_embd)
        self.drop = Dropout(config.dropout)
        self.blocks = nn.ModuleList(Block(config) for _ in range(config.n_layer))
        self.ln_f = nn.LayerNorm(config.n_embd)
        self.heads = nn.ModuleList(nn.Linear(config.n_embd, n) for n in spec.vocab_sizes)  # one per channel
        if config.ordinal:
            self.ordinal_embeddings = nn.ModuleList(
                OrdinalEmbedding(n, config.n_embd, config.ordinal) for n in spec.vocab_sizes
            )
            self.ordinal_heads = nn.ModuleList(
                OrdinalLogits(n, config.n_embd, config.ordinal) for n in spec.vocab_sizes
            )
        if config.relative:
            self.relative_heads = nn.ModuleList(
                RelativeLogits(n, config.n_embd, config.relative, config.envelope) for n in spec.vocab_sizes
            )
        if config.level and not spec.summary:
            raise ValueError("option 'level' needs a summary day to be the level (windows.summary: true)")
        if config.envelope and not (config.relative or config.level):
            raise ValueError("option 'envelope' needs 'relative' or 'level' > 0: it is the kernels' decay")
        if config.deviations and not config.level:
            raise ValueError("option 'deviations' needs 'level' > 0: days are scored around the level")
        if config.deviations:  # per channel the logit of the absolute part's weight in the mixture
            self.mixture_heads = nn.ModuleList(nn.Linear(config.n_embd, 1) for _ in spec.vocab_sizes)
        if config.level:
            self.level_heads = nn.ModuleList(
                LevelLogits(n, config.n_embd, config.level, config.envelope) for n in spec.vocab_sizes
            )
            if spec.summary > 1:  # the second summary day is each channel's spread
                self.spread_heads = nn.ModuleList(SpreadHead() for _ in spec.vocab_sizes)
        if config.chain == "summary" and not spec.summary:
            raise ValueError("option chain: summary needs a summary day to chain (windows.summary: true)")
        if config.chain:  # the same day's channels, as the heads of the channels after them read them
            # (one per channel, as every per-channel module has for base models' slots; no channel reads the last's)
            self.chain_embeddings = nn.ModuleList(nn.Embedding(n + 2, config.n_embd) for n in spec.vocab_sizes)
            if config.ordinal:
                self.chain_ordinal_embeddings = nn.ModuleList(
                    OrdinalEmbedding(n, config.n_embd, config.ordinal) for n in spec.vocab_sizes
                )

    @property
    def chained(self) -> bool:
        """Whether a day's channels are predicted one after another (``logits`` reads ``same_day``):
        the sampler then draws them in order, each given those drawn before it."""
        return bool(self.config.chain)

    def dropped(self, tokens: torch.Tensor) -> torch.Tensor:
        """Ids (B, T, C) while training with a share ``input_dropout`` of the values, and a share
        ``channel_dropout`` of the windows' channels on every day, hidden as "missing"."""
        values, channels = self.config.input_dropout, self.config.channel_dropout
        if not (self.training and (values > 0 or channels > 0)):
            return tokens
        missing = torch.tensor(self.spec.vocab_sizes[: tokens.size(-1)], device=tokens.device)  # "missing" ids
        hide = torch.rand(tokens.shape, device=tokens.device) < values
        if channels > 0:
            hide = hide | (torch.rand(tokens.size(0), 1, tokens.size(-1), device=tokens.device) < channels)
        return torch.where(hide & (tokens < missing), missing, tokens)  # values only: start tokens stay

    def embed(self, tokens: torch.Tensor, first_position: int = 0) -> torch.Tensor:
        """(B, T, C) ids at positions first_position.. -> (B, T, n_embd) block input."""
        last = first_position + tokens.size(1)
        if last > self.spec.max_days:
            raise ValueError(f"sequence of {last} days is longer than the model's context ({self.spec.max_days})")
        # positions expanded over the batch, so Opacus can split this embedding's gradient per window
        positions = torch.arange(first_position, last, device=tokens.device).expand(tokens.size(0), -1)  # (B, T)
        x = self.position_embedding(positions)  # (B, T, n_embd)
        tokens = self.dropped(tokens)
        for c, embedding in enumerate(self.channel_embeddings):
            x = x + embedding(tokens[:, :, c])  # (B, T, n_embd)
            if self.config.ordinal:
                x = x + self.ordinal_embeddings[c](tokens[:, :, c])
        return self.drop(x)

    def logits(
        self, hidden: Hidden, same_day: torch.Tensor | None = None, channels: Sequence[int] | None = None
    ) -> list[torch.Tensor]:
        """What the blocks read (``encode``) -> per channel (B, T, n_tokens_c) logits, for ``channels``
        (default: all, in order). With ``chain``, ``same_day`` (B, T, C') holds the input ids of the
        days the positions predict (None: all unknown) and channel c reads those of channels < c."""
        x = self.ln_f(hidden.x)
        level = hidden.level
        after_level = self.after_level(x, hidden.first_position) if self.config.level and level is not None else None
        yesterday = self.previous_days(hidden.tokens, hidden.first_position) if self.config.relative else None
        given = self.same_day_inputs(same_day, x, hidden.first_position) if self.config.chain else None
        out = []
        for c in range(len(self.heads)) if channels is None else channels:
            xc = x if given is None else x + given[c]
            absolute = self.heads[c](xc) + self.ordinal_heads[c](xc) if self.config.ordinal else self.heads[c](xc)
            kernels = []  # the terms around yesterday's bin and around the level
            if self.config.relative:  # the true previous day, even where input dropout hid it from the embedding:
                kernels.append(self.relative_heads[c](xc, yesterday[:, :, c]))  # sampling always has it
            if after_level is not None:
                kernels.append(self.level_heads[c](xc, level[c]) * after_level)
                if level[c].spread is not None:  # a person's volatility sharpens or widens both kernels
                    factor, shift = self.spread_heads[c](level[c])
                    kernels = [kernel * (factor * after_level + 1 - after_level) for kernel in kernels]
            plain = absolute
            for kernel in kernels:
                plain = plain + kernel
            if self.config.deviations and after_level is not None:
                around = sum(kernels)
                weight = self.mixture_heads[c](xc).float()  # (B, T, 1): logit of the absolute part's share
                if level[c].spread is not None:
                    weight = weight + shift
                mixed = torch.logaddexp(
                    F.log_softmax(around, dim=-1) + F.logsigmoid(-weight),
                    F.log_softmax(absolute, dim=-1) + F.logsigmoid(weight),
                )
                plain = torch.where(after_level * level[c].known > 0, mixed, plain)
            out.append(plain)
        return out

    def same_day_inputs(
        self, same_day: torch.Tensor | None, x: torch.Tensor, first_position: int
    ) -> list[torch.Tensor]:
        """Per channel c (B, T, n_embd): the sum of the embeddings of the same day's channels < c
        (unknown where ``same_day`` does not give them); with ``chain: summary``, at the summary's
        position only."""
        missing = torch.tensor(self.spec.vocab_sizes, device=x.device)
        ids = missing.expand(*x.shape[:-1], -1).clone()
        if same_day is not None:
            ids[..., : same_day.size(-1)] = self.dropped(same_day)
        given, total = [], torch.zeros_like(x)
        for c, embedding in enumerate(self.chain_embeddings):
            given.append(total)
            total = total + embedding(ids[..., c])
            if self.config.ordinal:
                total = total + self.chain_ordinal_embeddings[c](ids[..., c])
        if self.config.chain == "summary":  # position 0 predicts the summary day
            given = [part * (1 - self.after_level(x, first_position)) for part in given]
        return given

    def after_level(self, x: torch.Tensor, first_position: int) -> torch.Tensor:
        """(T, 1) 1 at the positions that have seen every summary day (input positions 1..summary),
        else 0: positions 0..summary-1 predict the summary days themselves."""
        positions = torch.arange(first_position, first_position + x.size(1), device=x.device)
        return (positions >= self.spec.summary).to(x.dtype)[:, None]

    def previous_days(self, tokens: torch.Tensor, first_position: int) -> torch.Tensor:
        """Input ids (B, T, C) at positions first_position.. -> the previous day's bins the relative
        kernels centre on: with a spread summary day none ("missing") at input positions 1 and 2, where
        the level predicts the spread and the spread the first day (the level kernel centres that one)."""
        if self.spec.summary < 2:
            return tokens
        positions = torch.arange(first_position, first_position + tokens.size(1), device=tokens.device)
        missing = torch.tensor(self.spec.vocab_sizes, device=tokens.device)
        return torch.where(((positions == 1) | (positions == 2))[:, None], missing, tokens)

    def level_features(
        self, tokens: torch.Tensor, first_position: int, found: list[LevelFeatures] | None = None
    ) -> list[LevelFeatures] | None:
        """Per channel the features of the summary days' bins (``LevelLogits.features``, with the
        spread's) among the input positions first_position.. (``found``: what earlier positions gave;
        sampled a day at a time, the spread comes after the level)."""
        if not self.config.level:
            return None
        end = first_position + tokens.size(1)
        if first_position <= 1 < end:
            found = [head.features(tokens[:, 1 - first_position, c]) for c, head in enumerate(self.level_heads)]
        if found is not None and self.spec.summary > 1 and first_position <= 2 < end:
            spread = tokens[:, 2 - first_position]
            found = [f.with_spread(spread[:, c], n) for c, (f, n) in enumerate(zip(found, self.spec.vocab_sizes))]
        return found

    def forward(self, tokens: torch.Tensor, same_day: torch.Tensor | None = None) -> list[torch.Tensor]:
        return self.logits(self.encode(tokens), same_day)  # C x (B, T, n_tokens_c)

    def encode(self, tokens: torch.Tensor) -> Hidden:
        """Input ids (B, T, C) -> what the heads read at every position."""
        x = self.embed(tokens)
        for block in self.blocks:
            x = block(x)
        return Hidden(x, tokens, self.level_features(tokens, 0), 0)

    def extend(self, tokens: torch.Tensor, cache: KVCache | None) -> tuple[list[torch.Tensor], KVCache]:
        """The optional KV-cache API the sampler uses when present: logits for the new days
        ``tokens`` (B, T_new, C) that follow the cached ones, and the cache grown by them. A day
        then costs one position instead of re-running the whole prefix."""
        hidden, cache = self.encode_more(tokens, cache)
        return self.logits(hidden), cache

    def encode_more(self, tokens: torch.Tensor, cache: KVCache | None) -> tuple[Hidden, KVCache]:
        """``encode`` for the new days ``tokens`` that follow the cached ones; the cache grown by them."""
        if cache is None:
            shape = (tokens.size(0), self.config.n_head, self.spec.max_days, self.config.n_embd // self.config.n_head)
            dtype = self.position_embedding.weight.dtype
            cache = KVCache(*([tokens.new_empty(shape, dtype=dtype) for _ in self.blocks] for _ in range(2)))
        x = self.embed(tokens, cache.length)
        rows = max(1, REFILL_ROWS // x.size(1))  # persons per slice of a many-day refill
        x = torch.cat([self.blocks_extend(x[lo : lo + rows], cache, lo) for lo in range(0, x.size(0), rows)])
        cache.level = self.level_features(tokens, cache.length, cache.level)
        hidden = Hidden(x, tokens, cache.level, cache.length)
        cache.length += tokens.size(1)
        return hidden, cache

    def blocks_extend(self, x: torch.Tensor, cache: KVCache, first: int) -> torch.Tensor:
        """The blocks over the new positions ``x`` of persons ``first ..`` (their slice of the cache)."""
        persons = slice(first, first + x.size(0))
        for block, keys, values in zip(self.blocks, cache.keys, cache.values):
            x = block.extend(x, keys[persons], values[persons], cache.length)
        return x

    # --- starting from a base model (synthwear.transfer) ----------------------------------------
    PER_CHANNEL = (
        "channel_embeddings",
        "heads",
        "ordinal_embeddings",
        "ordinal_heads",
        "relative_heads",
        "level_heads",
        "mixture_heads",
        "spread_heads",
        "chain_embeddings",
        "chain_ordinal_embeddings",
    )
    # the options the weights' shapes follow
    SHAPE = ("n_layer", "n_head", "n_embd", "ordinal", "relative", "level", "deviations", "envelope", "chain")

    def load_base(self, base: DailyTransformer, slots: list[int | None], base_scored: int) -> list[str]:
        """Take the base's weights: every shared tensor, and for channel ``i`` the base's channel
        ``slots[i]`` (None: a channel the base lacks keeps its fresh weights). ``base_scored``: how
        many of the base's channels it predicts (the rest are covariates, which have no start token).
        Returns the names of the parameters that did not come from the base."""
        if not isinstance(base, DailyTransformer):
            raise ValueError(f"the base is a {type(base).__name__}, not a transformer")
        for option in self.SHAPE:
            mine, theirs = getattr(self.config, option), getattr(base.config, option)
            if mine != theirs:
                raise ValueError(f"the base's transformer has {option} {theirs}, this one {mine}")
        if self.spec.max_days != base.spec.max_days:
            raise ValueError(f"the base's context is {base.spec.max_days} days, this model's {self.spec.max_days}")
        theirs, state, new = base.state_dict(), self.state_dict(), []
        for name in state:
            source = self.base_name(name, slots)
            if source is None:
                new.append(name)
            elif theirs[source].shape != state[name].shape:
                raise ValueError(
                    f"{name} is {tuple(state[name].shape)} here, {tuple(theirs[source].shape)} in the base"
                )
            else:
                state[name] = theirs[source]
        absent = self.absent_inputs(base, slots, base_scored)
        state["position_embedding.weight"] = state["position_embedding.weight"] + absent
        self.load_state_dict(state)
        return [name for name, _ in self.named_parameters() if name in new]

    @staticmethod
    def absent_inputs(base: DailyTransformer, slots: list[int | None], base_scored: int) -> torch.Tensor:
        """What the base's channels this model lacks add to every position's input: a predicted
        channel's "start" embedding at position 0 and its "missing" one after it, a covariate's
        "unknown" one everywhere (ordinal features are zero for all three). The base then computes
        exactly what it would with those channels missing throughout, instead of sums it never saw."""
        absent = torch.zeros_like(base.position_embedding.weight)
        for j, embedding in enumerate(base.channel_embeddings):
            if j not in slots:
                missing, start = embedding.weight.detach()[-2:]
                absent += missing
                if j < base_scored:
                    absent[0] += start - missing
        return absent

    def base_name(self, name: str, slots: list[int | None]) -> str | None:
        """The base's name for a tensor of this model (None: the base has none for it)."""
        group, _, rest = name.partition(".")
        if group not in self.PER_CHANNEL:
            return name
        index, _, tail = rest.partition(".")
        source = slots[int(index)]
        return None if source is None else f"{group}.{source}.{tail}"

    def channel_parameters(self, channels: list[int]) -> list[str]:
        """Names of the parameters that serve only the input channels ``channels``: their embeddings and heads."""
        wanted = {str(index) for index in channels}
        return [
            name
            for name, _ in self.named_parameters()
            if name.partition(".")[0] in self.PER_CHANNEL and name.split(".")[1] in wanted
        ]

    def fine_tuning_parameters(self, part: str) -> list[str]:
        """Names of the parameters ``part`` trains: "heads" the output heads and the final norm,
        "last_layers" also the last block, "biases" every bias (DP-BiTFiT, Bu et al. 2022)."""
        if part == "biases":
            return [name for name, _ in self.named_parameters() if name.endswith(".bias")]
        prefixes = ("heads.", "ordinal_heads.", "relative_heads.", "level_heads.", "mixture_heads.", "spread_heads.")
        prefixes += ("chain_", "ln_f.")
        if part == "last_layers":
            prefixes += (f"blocks.{len(self.blocks) - 1}.",)
        elif part != "heads":
            raise ValueError(f"unknown part {part!r} (heads, last_layers or biases)")
        return [name for name, _ in self.named_parameters() if name.startswith(prefixes)]

    def add_adapters(self, rank: int) -> list[str]:
        """Wrap every block's linear layers in a rank-``rank`` ``LowRankAdapter``; the adapters' names."""
        for block in self.blocks:
            for owner, name in (
                (block.attn, "c_attn"),
                (block.attn, "c_proj"),
                (block.mlp, "c_fc"),
                (block.mlp, "c_proj"),
            ):
                setattr(owner, name, LowRankAdapter(getattr(owner, name), rank))
        return [name for name, _ in self.named_parameters() if ".down." in name or ".up." in name]

    def merge_adapters(self) -> None:
        """Fold every adapter into its layer: the plain transformer again, as model.json describes it."""
        for block in self.blocks:
            for owner in (block.attn, block.mlp):
                for name, child in list(owner.named_children()):
                    if isinstance(child, LowRankAdapter):
                        setattr(owner, name, child.merged())


@hookimpl
def register_generators(register):
    register("transformer", DailyTransformer)
