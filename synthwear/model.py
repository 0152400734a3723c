"""A trained synthesis model: channel encoders plus a generator, saved without pickle.

The saved folder holds ``weights.safetensors`` (tensors only) and ``model.json`` (the channels,
the encoders' and generator's options, the resolved recipe). Loading rebuilds the modules
through the plugin registry and never executes code from the folder.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field, is_dataclass
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file

from synthwear.attributes import AttributeModel
from synthwear.covariates import (
    OBSERVED,
    PRESENCE_SIZE,
    PersonCovariates,
    calendar_codes,
    covariate_sizes,
    unknown_to_ids,
    with_attributes,
)
from synthwear.errors import SynthwearError, one_line
from synthwear.interfaces import MISSING, Encoder, GeneratorSpec
from synthwear.plugins import Registry
from synthwear.recipe import temperature_problem
from synthwear.summary import window_summary
from synthwear.tables import FIRST_DAY, LAST_DAY, current_umask

FORMAT_VERSION = 1


@dataclass
class SynthesisModel:
    channels: list[str]
    decimals: list[int]  # synthetic values are rounded to these
    ranges: list[tuple[float, float]]  # the public range each encoder covers
    encoders: list[Encoder]
    generator: torch.nn.Module
    generator_name: str
    spec: GeneratorSpec
    recipe: dict[str, Any]  # resolved recipe the model was trained with
    summary: int = 0  # summary days opening every sequence: 1 the level, 2 also the spread (``with_summary``)
    gaps: bool = (
        False  # each channel has an "observed" twin the model predicts (covariates.OBSERVED): it generates gaps
    )
    calendar: tuple[str, ...] = ()  # calendar covariates the generator reads (synthwear.covariates)
    start_dates: dict[str, int] | None = None  # training persons' first dates and counts: where samples start
    attributes: AttributeModel | None = None  # per-person attributes, generated first; sequences read their codes
    persistence: list[float] | None = None  # per channel, fitted after training (sampling.persistence: auto)
    # channels the spread day leaves unknown (``windows.spread`` naming the others): their days keep the
    # kernels' learned width, as without a spread day
    without_spread: tuple[str, ...] = ()
    # latent channels, name -> the temperature they are drawn at: channels a base generates that this
    # model's data lacks (``base.keep_channels``). The generator predicts them after ``channels`` and the
    # other channels read them, as in the base; their days are drawn (for the training data by the
    # base, ``transfer.with_latent_drawn``), never scored and never written, so the base's joint
    # distribution is kept instead of showing the base a channel missing on every day, which its
    # training rarely did
    latent: dict[str, float] = field(default_factory=dict)

    @property
    def device(self) -> torch.device:
        return next(self.generator.parameters()).device

    @property
    def modelled(self) -> list[str]:
        """The channels the generator draws values of: the data's, then the latent ones."""
        return self.channels + list(self.latent)

    @property
    def n_scored(self) -> int:
        """Channels the generator predicts: the modelled channels, then (with ``gaps``) one "observed" each."""
        return len(self.modelled) * (1 + self.gaps)

    @property
    def covariate_sizes(self) -> tuple[int, ...]:
        """Sizes of the input-only channels: the calendar's, then each attribute's codes."""
        return covariate_sizes(self.calendar, tuple(self.attributes.code_sizes) if self.attributes else ())

    @property
    def has_covariates(self) -> bool:
        return bool(self.covariate_sizes)

    def scored_names(self) -> list[str]:
        """Names of the predicted channels, for the loss (``bind``): "steps", ..., "steps observed"."""
        return self.modelled + [f"{name} observed" for name in self.modelled if self.gaps]

    @property
    def chained(self) -> bool:
        """Whether the generator predicts a day's channels one after another, each reading the same
        day's channels before it (the transformer's ``chain``)."""
        return bool(getattr(self.generator, "chained", False))

    @property
    def reads_hidden(self) -> bool:
        """Whether the sampler can have the generator's heads read only the last position: the optional
        ``encode`` / ``encode_more`` (what the heads read) and ``logits`` (the heads) of a chained
        generator, which any generator may have. A refilled KV cache then costs blocks, not heads, for
        the days it rereads."""
        return self.chained or all(hasattr(self.generator, name) for name in ("encode", "encode_more", "logits"))

    def predict(self, network: Callable, inputs: torch.Tensor, targets: torch.Tensor) -> list[torch.Tensor]:
        """Logits of the scored channels for ``training_pair``'s (inputs, targets) by ``network`` (the
        generator, or a wrapper of it: DDP, Opacus); a chained generator also reads each predicted
        day's channels from ``targets``, as teacher forcing gives them."""
        if self.chained:
            return self.scored(network(inputs, same_day=self.input_ids(targets)))
        return self.scored(network(inputs))

    def scored(self, logits: list[torch.Tensor]) -> list[torch.Tensor]:
        """The generator's logits for the predicted channels (covariates are read, never predicted)."""
        return logits[: self.n_scored]

    @property
    def window_days(self) -> int:
        """Days per training window (the generator's context, less the summary day if there is one)."""
        return self.spec.max_days - self.summary

    # --- tokens ---------------------------------------------------------------------------------
    def tokenize(self, values: np.ndarray) -> tuple[np.ndarray, list[int]]:
        """(..., C) values -> (..., C) int64 ids with MISSING, and the number clipped per channel."""
        tokens = np.empty(values.shape, dtype=np.int64)
        clipped = []
        for c, encoder in enumerate(self.encoders):
            tokens[..., c], n = encoder.encode(values[..., c])
            clipped.append(n)
        return tokens, clipped

    def day_tokens(
        self, values: np.ndarray, dates: np.ndarray, attributes: np.ndarray | None = None
    ) -> tuple[np.ndarray, list[int]]:
        """Days (..., C), their dates (...,) and their persons' attribute codes (..., A, or broadcasting
        to it) -> (..., n_scored + K) ids the generator is trained on: the channels' bins (MISSING where
        unknown), with ``gaps`` whether each was observed (0 or OBSERVED), then the covariates: calendar,
        attributes (unknown where not given); also the number of values clipped per channel. A latent
        channel's bins and "observed" are MISSING throughout: the data says nothing about them."""
        tokens, clipped = self.tokenize(values)
        unknown = np.full((*tokens.shape[:-1], len(self.latent)), MISSING)
        parts = [tokens, unknown]
        if self.gaps:
            parts += [(tokens != MISSING).astype(np.int64) * OBSERVED, unknown]
        if self.attributes is not None and attributes is None:
            attributes = np.full((len(self.attributes.columns),), MISSING, dtype=np.int64)
        parts.append(with_attributes(calendar_codes(dates, self.calendar), attributes))
        return np.concatenate(parts, axis=-1), clipped

    def input_ids(self, tokens: torch.Tensor) -> torch.Tensor:
        """Map MISSING to each predicted channel's "missing" id (its n_tokens)."""
        missing_ids = torch.tensor(self.spec.vocab_sizes[: tokens.size(-1)], device=tokens.device)
        return torch.where(tokens == MISSING, missing_ids, tokens)

    def missing_ids(self) -> torch.Tensor:
        """(n_scored,) each predicted channel's "missing" id (its n_tokens)."""
        return torch.tensor(self.spec.vocab_sizes[: self.n_scored], device=self.device)

    def start_ids(self, n: int) -> torch.Tensor:
        """(n, 1, n_scored) "start of sequence" ids: each channel's n_tokens + 1."""
        return (self.missing_ids() + 1).expand(n, 1, -1).clone()

    def covariate_inputs(self, codes: torch.Tensor) -> torch.Tensor:
        """Covariate codes of each window's days (B, T, K) -> their inputs at the T + summary positions:
        position q reads the covariates of the day it predicts (a summary, those of the first day)."""
        unknown = torch.tensor(self.covariate_sizes, dtype=torch.long, device=codes.device)
        codes = torch.where(codes == MISSING, unknown, codes)
        return torch.cat([codes[:, :1]] * self.summary + [codes], dim=1)

    def with_summary(self, tokens: torch.Tensor, summary: torch.Tensor | None = None) -> torch.Tensor:
        """Windows (B, T, C) -> the sequences the generator models: with ``summary`` days, they precede
        the days: each channel's level, then (2 days) its spread; ``summary`` (B, S, C) if given (the
        persons' own, ``synthwear.summary.person_summary``), else the window's (``window_summary``).
        Sampled first, they fix a synthetic person's level and volatility for the whole sequence, so
        that days vary around them instead of drifting, as real persons' days do."""
        if not self.summary:
            return tokens
        if summary is None:
            summary = window_summary(tokens, self.summary, list(self.spec.vocab_sizes[: self.n_scored]))
        if self.without_spread:
            summary = summary.clone()
            summary[:, 1, self.spread_unknown().to(summary.device)] = MISSING
        return torch.cat([summary, tokens], dim=1)

    def spread_unknown(self) -> torch.Tensor:
        """(n_scored,) whether each predicted channel's spread is left unknown (an "observed" twin's
        follows its channel's)."""
        unknown = [name in self.without_spread for name in self.modelled]
        return torch.tensor(unknown * (1 + self.gaps), dtype=torch.bool)

    def training_pair(self, windows: torch.Tensor, hide_summary: float = 0.0) -> tuple[torch.Tensor, torch.Tensor]:
        """Windows (B, T, n_scored + K [+ S * n_scored]) of ``day_tokens`` (then, optionally, every
        day's person's summary days, ``person_summary``) -> (inputs, targets) the generator is trained
        and scored on: targets (B, T', n_scored), inputs (B, T', n_scored + K)."""
        day_columns = self.n_scored + len(self.covariate_sizes)
        given = (
            windows[:, 0, day_columns:].view(len(windows), -1, self.n_scored)
            if windows.size(-1) > day_columns
            else None
        )
        targets = self.with_summary(windows[..., : self.n_scored], given)
        inputs = self.shifted_inputs(targets, hide_summary)
        if self.has_covariates:
            inputs = torch.cat([inputs, self.covariate_inputs(windows[..., self.n_scored : day_columns])], dim=-1)
        if self.latent:  # read where drawn for the data (``transfer.with_latent_drawn``), never scored
            targets = targets.clone()
            targets[..., self.latent_slots()] = MISSING
        return inputs, targets

    def always_observed(self, complete: bool) -> list[int]:
        """The "observed" columns drawn as observed on every day: all of them for ``complete`` samples,
        else the latent channels' (the data shows no gap of theirs to learn); none without ``gaps``."""
        if not self.gaps:
            return []
        twins = range(len(self.modelled), self.n_scored)
        return list(twins) if complete else self.latent_slots()[len(self.latent) :]

    def latent_slots(self) -> list[int]:
        """The predicted columns of the latent channels: their values, then (with ``gaps``) their "observed"."""
        return [i for i, name in enumerate(self.scored_names()) if name.removesuffix(" observed") in self.latent]

    def shifted_inputs(self, tokens: torch.Tensor, hide_summary: float = 0.0) -> torch.Tensor:
        """Inputs for sequences ``tokens`` (B, T, C): the start day, then days 0..T-2. With summary
        days, a share ``hide_summary`` of the sequences (1: all) see them as missing: the model learns
        to predict days without it too, which is how it scores real days causally and continues
        given real days."""
        inputs = torch.cat([self.start_ids(tokens.size(0)), self.input_ids(tokens[:, :-1])], dim=1)
        if self.summary and hide_summary > 0:
            hidden = torch.rand(tokens.size(0), device=tokens.device) < hide_summary
            missing = torch.tensor(self.spec.vocab_sizes[: self.n_scored], device=tokens.device)
            summary = slice(1, 1 + self.summary)
            inputs[:, summary] = torch.where(hidden[:, None, None], missing, inputs[:, summary])
        return inputs

    def decode(self, tokens: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Sampled ids (..., n_scored) -> values (..., C) of the data's channels (latent ones are not
        written); with ``gaps`` a day not "observed" is NaN."""
        n, modelled = len(self.channels), len(self.modelled)
        values = np.empty((*tokens.shape[:-1], n), dtype=np.float64)
        bins = np.where(tokens[..., :n] >= np.array(self.spec.vocab_sizes[:n]), MISSING, tokens[..., :n])
        for c, encoder in enumerate(self.encoders):
            low, high = self.ranges[c]
            values[..., c] = np.round(np.clip(encoder.decode(bins[..., c], rng), low, high), self.decimals[c])
        if self.gaps:
            values[tokens[..., modelled : modelled + n] != OBSERVED] = np.nan
        return values

    def person_covariates(
        self, start: np.ndarray | None, n: int, attributes: np.ndarray | None = None
    ) -> PersonCovariates:
        """Covariates of ``n`` persons starting on ``start`` with attribute codes ``attributes`` (n, A)
        (unknown start: unknown calendar; no attributes given: unknown attributes)."""
        first = np.full(n, np.datetime64("NaT"), "datetime64[D]") if start is None else start
        if self.attributes is not None and attributes is None:
            attributes = np.full((n, len(self.attributes.columns)), MISSING, dtype=np.int64)
        return PersonCovariates(np.asarray(first, dtype="datetime64[D]"), self.calendar, attributes)

    def first_days(self, n: int, seed: int, start_date: str | date | None = None) -> np.ndarray:
        """(n,) first days of synthetic persons: ``start_date`` for all, or else drawn (seeded) from the
        training persons' first days the model keeps, or else 2000-01-01 (under differential privacy
        the model keeps none: a real person's first day is theirs)."""
        if start_date is not None or not self.start_dates:
            return np.full(n, np.datetime64(start_date or "2000-01-01", "D"))
        dates = np.array(list(self.start_dates), dtype="datetime64[D]")
        counts = np.array(list(self.start_dates.values()), dtype=np.float64)
        return np.random.default_rng([seed, 7]).choice(dates, n, p=counts / counts.sum())

    # --- inference ------------------------------------------------------------------------------
    @torch.no_grad()
    def next_day_probabilities(
        self,
        values: np.ndarray,
        start: np.ndarray | None = None,
        attributes: np.ndarray | None = None,
        batch_size: int = 1024,
    ) -> list[np.ndarray]:
        """For windows (N, T, C) starting on ``start`` (N,) of persons with attribute codes (N, A), per
        channel (N, T, n_tokens): day t's distribution given days < t (with ``gaps``: given that day t
        is observed)."""
        self.generator.eval()
        covariates = self.person_covariates(start, len(values), attributes)
        dates = covariates.start[:, None] + np.arange(values.shape[1]).astype("timedelta64[D]")
        codes = None if covariates.attributes is None else covariates.attributes[:, None, :]
        tokens = torch.from_numpy(self.day_tokens(values, dates, codes)[0])
        out: list[list[np.ndarray]] = [[] for _ in self.channels]
        skip = int(self.summary)
        for batch in tokens.split(batch_size):
            inputs, targets = self.training_pair(batch.to(self.device), hide_summary=1.0)  # causal: no summary seen
            for c, logits in enumerate(self.predict(self.generator, inputs, targets)[: len(self.channels)]):
                out[c].append(torch.softmax(logits[:, skip:].float(), dim=-1).cpu().numpy())
        return [np.concatenate(parts) for parts in out]

    @torch.no_grad()
    def generate(self, n: int, days: int, **options) -> np.ndarray:
        """Sample (n, days, C) values day by day (``generate_batches``, all in one array)."""
        return np.concatenate(list(self.generate_batches(n, days, **options)))

    @torch.no_grad()  # a generator function: torch keeps gradients off while it runs, between yields too
    def generate_batches(
        self,
        n: int,
        days: int,
        *,
        temperature: float | Sequence[float] = 1.0,
        summary_temperature: float | Sequence[float] | None = None,
        persistence: float | Sequence[float] = 0.0,
        seed: int = 0,
        prime: np.ndarray | None = None,
        start: np.ndarray | None = None,
        attributes: np.ndarray | None = None,
        complete: bool = False,
        batch_size: int = 4096,
        on_progress: Callable[[float], None] | None = None,
        use_cache: bool = True,
        slide: int | None = None,
    ) -> Iterator[np.ndarray]:
        """Sample (n, days, C) values day by day, yielded ``batch_size`` persons at a time so that a
        large cohort can be written as it comes; ``prime`` (n, k, C) real days to continue from;
        ``start`` (n,) each person's first date, which the calendar covariates follow (default: drawn
        by ``first_days``); ``attributes`` (n, A) each person's attribute codes (default: unknown);
        ``on_progress(persons)``: told after each day how many persons are done, counting a batch's
        persons by the share of their days drawn, so a bar moves (and estimates the time left) even for
        one person's century; it ends exactly at ``n``. ``summary_temperature``:
        the temperature of a summary day (the person's level), drawn first; by default the days' own.
        ``persistence``: per channel the lag-1 correlation of the quantiles its days are drawn at
        (``Quantiles``; 0: independent draws, the model's own joint distribution).
        ``complete``: with ``gaps``, every day is observed (the model is told so as it goes), for uses
        that need a value every day.

        Beyond the model's context the window slides: the start token (and the summary day) followed
        by recent days, which is what training showed the model (windows start on any day, so their
        first days see few days before them). A generator with the optional ``extend(tokens, cache)
        -> (logits, cache)`` method (a KV cache) is fed only the newest day while the sequence fits
        its context; a slid window shifts every position, so the cache is then refilled from the
        most recent days and the window moves ``slide`` days at a time: each day sees between
        ``window_days - slide`` and ``window_days - 1`` days before it. Default: half a window, so a
        day always sees a week's rhythm and its recent trend, and a long horizon costs one refill per
        ``slide`` cached days instead of a full pass per day. ``slide=1`` slides day by day (every
        day sees a full window). ``use_cache=False`` re-runs the whole window every day (the samples
        of ``slide=1``, for measuring).
        """
        slide = self.window_days // 2 if slide is None else slide
        if not 1 <= slide < self.window_days:
            raise SynthwearError(
                f"slide must be 1 to {self.window_days - 1} days (the window is {self.window_days}), got {slide}"
            )
        self.generator.eval()
        hidden = self.reads_hidden
        draw = Draw(
            self.per_channel(temperature, list(self.latent.values())),
            self.per_channel(
                temperature if summary_temperature is None else summary_temperature, list(self.latent.values())
            ),
            torch.Generator(device=self.device).manual_seed(seed),
            getattr(self.generator, "encode_more" if hidden else "extend", None) if use_cache else None,
            self.always_observed(complete),
            self.chained,
            hidden,
            slide,
            self.per_channel(persistence, [0.0] * len(self.latent)),
        )
        rng = np.random.default_rng(seed)
        k = 0 if prime is None else prime.shape[1]
        if k > days:
            raise SynthwearError(f"cannot continue {k} given days into only {days} days")
        starts = self.first_days(n, seed) if start is None else np.asarray(start, dtype="datetime64[D]")
        steps = days - k  # days drawn per person
        for lo in range(0, n, batch_size):
            size = min(batch_size, n - lo)
            codes = None if attributes is None else attributes[lo : lo + size]
            covariates = self.person_covariates(starts[lo : lo + size], size, codes)
            seq = self.opening(covariates, None if prime is None else prime[lo : lo + size])
            if self.summary and prime is None:  # the person's level (and spread) first, at their own temperature
                seq = self.extend_sequences(seq, self.summary, draw, covariates, summary=True)
            on_day = (lambda d, lo=lo, size=size: on_progress(lo + size * d / steps)) if on_progress else None
            seq = self.extend_sequences(seq, steps, draw, covariates, on_day=on_day)
            values = self.decode(seq[:, 1 + self.summary :, : self.n_scored].cpu().numpy(), rng)
            if prime is not None:
                values[:, :k] = prime[lo : lo + size]
            if on_progress and not steps:
                on_progress(lo + size)
            yield values

    def opening(self, covariates: PersonCovariates, prime: np.ndarray | None) -> torch.Tensor:
        """The input sequences generation starts from: the start day, then (continuing) a hidden
        summary and the given days, each position with the covariates of the day it predicts."""
        seq = self.start_ids(len(covariates.start))
        if prime is not None:
            dates = covariates.start[:, None] + np.arange(prime.shape[1]).astype("timedelta64[D]")
            primed = torch.from_numpy(self.day_tokens(prime, dates)[0][..., : self.n_scored]).to(self.device)
            # a continuation's level comes from the given days, not a drawn summary
            primed = torch.cat([torch.full_like(primed[:, :1], MISSING)] * self.summary + [primed], dim=1)
            seq = torch.cat([seq, self.input_ids(primed)], dim=1)
        return self.with_covariates_from(seq, covariates, 0)

    def with_covariates_from(self, seq: torch.Tensor, covariates: PersonCovariates, first: int) -> torch.Tensor:
        """Input positions ``first ..`` (B, L, n_scored) with their covariates appended (B, L, n_scored + K):
        position q predicts day q - summary (the summary: day 0)."""
        if not self.has_covariates:
            return seq
        days = np.maximum(np.arange(first, first + seq.size(1)) - self.summary, 0)
        codes = covariates.at(np.broadcast_to(days, (seq.size(0), len(days))))
        codes = torch.from_numpy(unknown_to_ids(codes, self.covariate_sizes)).to(seq.device)
        return torch.cat([seq, codes], dim=-1)

    def per_channel(self, setting: float | Sequence[float], latent: list[float]) -> list[float]:
        """A sampling setting for every modelled channel: ``setting`` (one number, or one per data
        channel), then ``latent``'s for the latent channels."""
        values = [setting] * len(self.channels) if np.isscalar(setting) else list(setting)
        if len(values) != len(self.channels):
            raise SynthwearError(f"{len(values)} temperatures for {len(self.channels)} channels")
        return values + latent

    def extend_sequences(
        self,
        seq: torch.Tensor,
        steps: int,
        draw: Draw,
        covariates: PersonCovariates,
        *,
        summary: bool = False,
        on_day: Callable[[int], None] | None = None,
    ) -> torch.Tensor:
        """Draw ``steps`` more days onto input sequences (B, L, n_scored + K), one day at a time
        (``on_day(d)`` told after the d-th). The days go into a tensor sized for all of them: growing
        the sequence by concatenation would copy it every day, quadratic in a long horizon's days."""
        cache, missing = Cached(), self.missing_ids()  # once per batch, not per day: the loop is the sampler's hot path
        unknown_spread = self.spread_unknown().nonzero().flatten().tolist()
        quantiles = None if summary else draw.quantiles(seq.size(0), len(missing))
        length = seq.size(1)
        grown = seq.new_empty(seq.size(0), length + steps, seq.size(2))
        grown[:, :length] = seq
        for step in range(steps):
            seq = grown[:, : length + step]
            read = self.next_day_reader(seq, draw, covariates, cache)
            uniforms = None if quantiles is None else quantiles.next()
            left = unknown_spread if summary and step == 1 else ()
            day = draw.day(read, seq.size(0), len(self.modelled), summary, missing, uniforms, left)
            if self.gaps and not summary:  # a day drawn as a gap reads as missing from then on, as in training
                n = len(self.modelled)
                day[:, :n] = torch.where(day[:, n:] == 0, missing[:n], day[:, :n])
            grown[:, length + step] = self.with_covariates_from(day[:, None, :], covariates, length + step)[:, 0]
            if on_day:
                on_day(step + 1)
        return grown

    def next_day_reader(self, seq: torch.Tensor, draw: Draw, covariates: PersonCovariates, cache: Cached) -> Reader:
        """The generator's read of sequences ``seq`` for the day after them: a function of that day's
        channels drawn so far (a chained generator's heads read them) -> the scored channels' logits
        at the last position. Beyond the context the window slides (the start and summary day stay,
        the oldest days leave). A generator's KV cache, if used, is fed the newest days until it holds
        the whole context; then it is refilled from the start, the summary and the most recent days,
        ``draw.slide - 1`` fewer than fill the context, so the window moves ``draw.slide`` days at a time."""
        if draw.extend is None:
            sliding = seq.size(1) > self.spec.max_days
            whole = self.slid_window(seq, covariates, self.spec.max_days) if sliding else seq
            read = self.generator.encode(whole) if draw.hidden else self.generator(whole)
        elif cache.positions + seq.size(1) - cache.length > self.spec.max_days:
            window = self.slid_window(seq, covariates, self.spec.max_days + 1 - draw.slide)
            read, cache.state = draw.extend(window, None)
            cache.length, cache.positions = seq.size(1), window.size(1)
        else:
            new = seq[:, cache.length :]
            read, cache.state = draw.extend(new, cache.state)
            cache.length, cache.positions = seq.size(1), cache.positions + new.size(1)
        if not draw.hidden:
            return lambda same_day, channels: [read[c][:, -1] for c in channels]
        last = read.last()
        if not draw.chained:
            logits = self.generator.logits(last)
            return lambda same_day, channels: [logits[c][:, -1] for c in channels]
        return lambda same_day, channels: [
            logits[:, -1] for logits in self.generator.logits(last, same_day[:, None], channels)
        ]

    def slid_window(self, seq: torch.Tensor, covariates: PersonCovariates, positions: int) -> torch.Tensor:
        """The start (and summary) day followed by the most recent days of ``seq``, ``positions`` in
        all, the kept front with the covariates a training window opening at the first recent day has
        there."""
        kept = 1 + self.summary
        recent = seq[:, kept - positions :]
        front = seq[:, :kept, : self.n_scored]
        if self.has_covariates:  # a training window's opening positions carry its first day's covariates
            first_day = seq.size(1) - recent.size(1) - 1 - self.summary
            opening = self.with_covariates_from(front[:, :1], covariates, first_day + self.summary)
            front = torch.cat([front, opening[..., self.n_scored :].expand(-1, kept, -1)], dim=-1)
        return torch.cat([front, recent], dim=1)

    # --- persistence ----------------------------------------------------------------------------
    def save(self, folder: Path) -> None:
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        config = getattr(self.generator, "config", None)
        meta = {
            "format_version": FORMAT_VERSION,
            "channels": self.channels,
            "decimals": self.decimals,
            "ranges": [list(r) for r in self.ranges],
            "encoders": [e.describe() for e in self.encoders],
            "generator": {"name": self.generator_name, **(asdict(config) if is_dataclass(config) else {})},
            "spec": {"vocab_sizes": list(self.spec.vocab_sizes), "max_days": self.spec.max_days},
            "summary": self.summary,
            "gaps": self.gaps,
            "calendar": list(self.calendar),
            "start_dates": self.start_dates,
            "attributes": self.attributes.to_dict() if self.attributes else None,
            "persistence": self.persistence,
            "without_spread": list(self.without_spread),
            "latent": self.latent,
            "recipe": self.recipe,
        }
        state = {k: v.detach().cpu().contiguous() for k, v in self.generator.state_dict().items()}
        save_file(state, folder / "weights.safetensors", metadata={"model_json_sha256": description_digest(meta)})
        os.chmod(folder / "weights.safetensors", 0o666 & ~current_umask())  # safetensors writes 0600: a base is shared
        (folder / "model.json").write_text(json.dumps(meta, indent=2))

    @classmethod
    def load(cls, folder: Path, registry: Registry, device: str | torch.device = "cpu") -> SynthesisModel:
        """A saved model folder -> the model on ``device``; anything not as ``save`` wrote it is one line."""
        folder = Path(folder)
        meta = read_model_json(folder)
        weights = folder / "weights.safetensors"
        state, stored_digest = read_weights(weights)
        if stored_digest is not None and stored_digest != description_digest(meta):
            raise SynthwearError(
                f"{folder / 'model.json'}: does not match the weights it was saved with (it was edited after training: "
                "channels, bins, ranges or the generator differ); use the model.json saved with these weights"
            )
        model = cls.described_by(meta, registry, str(folder / "model.json"))
        try:
            model.generator.load_state_dict(state)
        except RuntimeError as err:
            first = next((line.strip() for line in str(err).splitlines()[1:] if line.strip()), str(err))
            raise SynthwearError(
                f"{weights}: the weights do not fit the generator model.json describes ({first})"
            ) from None
        model.generator.to(device)
        return model

    @classmethod
    def described_by(cls, meta: dict[str, Any], registry: Registry, where: str) -> SynthesisModel:
        """model.json's description -> the model with untrained weights, its parts built through the registry."""
        try:
            encoders = [
                registry.build(
                    "encoders", spec["name"], {k: v for k, v in spec.items() if k != "name"}, low, high, where=where
                )
                for spec, (low, high) in zip(meta["encoders"], meta["ranges"])
            ]
            spec = GeneratorSpec(
                tuple(meta["spec"]["vocab_sizes"]), meta["spec"]["max_days"], int(meta.get("summary", 0))
            )
            options = {k: v for k, v in meta["generator"].items() if k != "name"}
            generator = registry.build("generators", meta["generator"]["name"], options, spec, where=where)
            counts = {len(meta[k]) for k in ("channels", "decimals", "ranges")} | {len(encoders)}
            gaps, calendar = bool(meta.get("gaps", False)), tuple(meta.get("calendar", ()))
            attributes = AttributeModel.from_dict(meta["attributes"]) if meta.get("attributes") else None
            start_dates = checked_start_dates(meta.get("start_dates"), where)
            persistence = checked_persistence(meta.get("persistence"), len(meta["channels"]), where)
            sizes = covariate_sizes(calendar, tuple(attributes.code_sizes) if attributes else ())
            latent = checked_latent(meta.get("latent"), where)
            modelled = len(encoders) + len(latent)
            latent_sizes = list(spec.vocab_sizes[len(encoders) : modelled])
            expected = [e.n_tokens for e in encoders] + latent_sizes + [PRESENCE_SIZE] * modelled * gaps + list(sizes)
            without_spread = tuple(meta.get("without_spread", ()))
        except (KeyError, TypeError) as err:
            raise SynthwearError(f"{where}: not a model description synthwear wrote (missing or wrong {err})") from None
        if len(counts) != 1 or expected != list(spec.vocab_sizes) or not set(without_spread) <= set(meta["channels"]):
            raise SynthwearError(
                f"{where}: channels, decimals, ranges, encoders, vocab_sizes and without_spread do not agree"
            )
        return cls(
            meta["channels"],
            meta["decimals"],
            [tuple(r) for r in meta["ranges"]],
            encoders,
            generator,
            meta["generator"]["name"],
            spec,
            meta["recipe"],
            int(meta.get("summary", 0)),
            gaps,
            calendar,
            start_dates,
            attributes,
            persistence,
            without_spread,
            latent,
        )


def read_model_json(folder: Path) -> dict[str, Any]:
    """A model folder's model.json as a dict of the format this synthwear reads, or one line saying why not."""
    try:
        meta = json.loads((folder / "model.json").read_text())
    except FileNotFoundError:
        if not Path(folder).exists():
            raise SynthwearError(f"{folder}: does not exist (give a model folder, such as runs/fitbit/model)") from None
        inside = " (a run folder: its model is in model/)" if (Path(folder) / "model" / "model.json").is_file() else ""
        raise SynthwearError(f"{folder}: not a model folder (no model.json){inside}") from None
    except json.JSONDecodeError as err:
        raise SynthwearError(f"{folder / 'model.json'}: not valid JSON ({err.msg}, line {err.lineno})") from None
    except (OSError, UnicodeDecodeError) as err:  # a folder in its place, a file that is not text
        raise SynthwearError(
            f"{folder / 'model.json'}: cannot be read ({getattr(err, 'strerror', None) or err})"
        ) from None
    if not isinstance(meta, dict):
        raise SynthwearError(f"{folder / 'model.json'}: expected a JSON object, found {type(meta).__name__}")
    if meta.get("format_version") != FORMAT_VERSION:
        raise SynthwearError(f"{folder / 'model.json'}: unsupported format_version {meta.get('format_version')!r}")
    return meta


def checked_start_dates(value: Any, where: str) -> dict[str, int] | None:
    """model.json's ``start_dates`` (ISO date -> persons), or None; anything else is one line."""
    if value is None:
        return None
    try:
        dates = np.array(list(value), dtype="datetime64[D]")
        counts = np.array(list(value.values()), dtype=np.int64)
    except (TypeError, ValueError, AttributeError, OverflowError):
        raise SynthwearError(f"{where}: start_dates must map ISO dates to counts of persons") from None
    if np.isnat(dates).any() or (counts <= 0).any():
        raise SynthwearError(f"{where}: start_dates must map ISO dates to counts of persons") from None
    first, last = (np.datetime64(day.date(), "D") for day in (FIRST_DAY, LAST_DAY))
    if ((dates < first) | (dates > last)).any():
        raise SynthwearError(f"{where}: start_dates must lie within {first}..{last}, the dates a table can hold")
    return {str(d): int(c) for d, c in zip(dates, counts)}


def checked_persistence(value: Any, n_channels: int, where: str) -> list[float] | None:
    """model.json's fitted ``persistence`` (one correlation per channel), or None; anything else is one line."""
    if value is None:
        return None
    fits = isinstance(value, list) and len(value) == n_channels
    if not fits or not all(isinstance(v, (int, float)) and -1 < v < 1 for v in value):
        raise SynthwearError(f"{where}: persistence must be one correlation in (-1, 1) per channel, got {value!r}")
    return [float(v) for v in value]


def checked_latent(value: Any, where: str) -> dict[str, float]:
    """model.json's ``latent`` channels (name -> temperature), empty where absent; anything else is one line."""
    if value is None:
        return {}
    temperatures = value.values() if isinstance(value, dict) else [None]
    fits = all(isinstance(t, (int, float)) and not temperature_problem(t) for t in temperatures)
    if not fits:
        raise SynthwearError(f"{where}: latent must map channel names to sampling temperatures, got {value!r}")
    return {str(name): float(t) for name, t in value.items()}


def description_digest(meta: dict[str, Any]) -> str:
    """A checksum of everything in model.json that the weights depend on, kept inside the weights file,
    so that a model.json edited after training (bins, ranges, channels) is caught instead of sampling
    garbage from weights that no longer mean what it says."""
    fields = {key: meta.get(key) for key in ("channels", "decimals", "ranges", "encoders", "generator", "spec")}
    for key in ("summary", "gaps", "calendar", "attributes", "without_spread", "latent"):  # earlier models keep theirs
        if meta.get(key):
            fields[key] = meta[key]
    return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()


def read_weights(path: Path) -> tuple[dict[str, torch.Tensor], str | None]:
    """The tensors, and the model.json checksum stored beside them (None for models saved before it was)."""
    if not path.is_file():
        raise SynthwearError(f"{path}: missing; a model folder holds model.json and weights.safetensors")
    try:
        with safe_open(path, framework="pt") as handle:
            digest = (handle.metadata() or {}).get("model_json_sha256")
        return load_file(path), digest
    except (SafetensorError, OSError, ValueError) as err:
        raise SynthwearError(f"{path}: damaged or not a safetensors file ({one_line(err)})") from None


@dataclass
class Cached:
    """A generator's KV cache while a batch is drawn, and where it stands in the sequence."""

    state: Any = None
    length: int = 0  # positions of the sequence it has read
    positions: int = 0  # positions it holds: fewer than ``length`` once the window has slid


# The generator's read of a batch for its next day: (that day's input ids drawn so far (B, n_scored),
# the channels wanted) -> their logits (B, n_tokens_c) each
Reader = Callable[[torch.Tensor, Sequence[int]], list[torch.Tensor]]


@dataclass
class Draw:
    """How days are drawn: temperatures per channel (the summary day's apart), the random stream,
    the generator's KV-cache method if used (``extend``, or ``encode_more`` when it reads hidden
    states), which "observed" columns are observed every day, whether the generator predicts a day's channels one
    after another (then drawn in that order), whether its reads are hidden states its ``logits``
    turn into scores (``SynthesisModel.reads_hidden``), and the days a full window slides at once."""

    temperatures: list[float]
    summary_temperatures: list[float]
    generator: torch.Generator
    extend: Callable | None
    observed: list[int]  # "observed" columns set observed on every day (``SynthesisModel.always_observed``)
    chained: bool = False
    hidden: bool = False
    slide: int = 1
    persistence: list[float] | None = None  # per channel (``Quantiles``); None or zeros: independent draws

    def quantiles(self, batch: int, n_ids: int) -> Quantiles | None:
        """The persistent quantiles of a batch's days (None where every channel's persistence is 0:
        each day then draws its own uniforms, as it always did)."""
        if not any(self.persistence or []):
            return None
        rho = self.persistence + [0.0] * (n_ids - len(self.persistence))  # whether observed: independent
        return Quantiles(torch.tensor(rho, device=self.generator.device), batch, self.generator)

    def day(
        self,
        read: Reader,
        batch: int,
        n_channels: int,
        summary: bool,
        missing: torch.Tensor,
        uniforms: torch.Tensor | None = None,
        unknown: Sequence[int] = (),
    ) -> torch.Tensor:
        """(batch, n_scored) ids of the next day: values, then "observed". ``missing``: each scored
        channel's "missing" id, what a chained generator reads for the channels not drawn yet;
        ``uniforms`` (batch, n_scored): the quantiles to draw at (None: fresh ones); ``unknown``: the
        channels left missing (a spread day's channels without a spread)."""
        temperatures = self.summary_temperatures if summary else self.temperatures
        temperatures = temperatures + [1.0] * (len(missing) - n_channels)  # whether observed: as the data has it
        day = missing.expand(batch, -1).clone()
        logits = None if self.chained else read(day, range(len(missing)))
        for c in (c for c in range(len(missing)) if c not in unknown):
            scores = read(day, [c])[0] if self.chained else logits[c]
            allowed = self.allowed(scores, c >= n_channels and not summary)
            u = None if uniforms is None else uniforms[:, c : c + 1]
            day[:, c] = sample_token(allowed, temperatures[c], self.generator, u)
        if self.observed:  # observed every day, and the person's share of observed days with it
            day[:, self.observed] = OBSERVED
        return day

    @staticmethod
    def allowed(logits: torch.Tensor, presence_day: bool) -> torch.Tensor:
        """A day's "observed" twin is a gap (0) or OBSERVED; the shares between belong to summary days."""
        if not presence_day:
            return logits
        between = torch.zeros(logits.size(-1), dtype=torch.bool, device=logits.device)
        between[1:OBSERVED] = True
        return logits.masked_fill(between, float("-inf"))


def sample_token(
    logits: torch.Tensor, temperature: float, generator: torch.Generator, uniform: torch.Tensor | None = None
) -> torch.Tensor:
    """(B, V) logits -> (B,) ids, drawn at the quantiles ``uniform`` (B, 1) (default: fresh ones);
    temperature 0 takes the most likely id."""
    if temperature == 0:
        return logits.argmax(dim=-1)
    # inverse-CDF sampling: one uniform per row, where torch.multinomial draws one per class
    cdf = torch.softmax(logits.float() / temperature, dim=-1).cumsum(dim=-1)
    if uniform is None:
        uniform = torch.rand(cdf.size(0), 1, generator=generator, device=cdf.device)
    ids = torch.searchsorted(cdf, uniform * cdf[:, -1:], right=True).squeeze(-1)
    return ids.clamp(max=cdf.size(-1) - 1)  # a quantile of 1 (or rounding) past the last bin: the last bin


class Quantiles:
    """The quantiles a batch's days are drawn at, per sequence and channel: the normal CDF of a
    Gaussian AR(1) whose lag-1 correlation is the channel's persistence. Each day is still drawn
    from the model's distribution for it (every quantile is uniform); what changes is that a
    sequence drawn high in its distribution yesterday tends to be drawn high again today (or low,
    below 0). Why: a model fitted by one-day-ahead likelihood on a few dozen persons hedges, so days
    drawn independently from it wander less and jitter more than real ones (docs/model.md,
    "Persistence")."""

    def __init__(self, rho: torch.Tensor, batch: int, generator: torch.Generator):
        self.rho, self.batch, self.generator = rho, batch, generator
        self.innovation = torch.sqrt(1 - rho**2)
        self.state: torch.Tensor | None = None

    def next(self) -> torch.Tensor:
        """(batch, channels) quantiles of the next day."""
        shape = (self.batch, len(self.rho))
        noise = torch.randn(shape, generator=self.generator, device=self.rho.device)
        self.state = noise if self.state is None else self.rho * self.state + self.innovation * noise
        return torch.special.ndtr(self.state)
