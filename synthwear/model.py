"""A trained synthesis model: channel encoders plus a generator, saved without pickle.

The saved folder holds ``weights.safetensors`` (tensors only) and ``model.json`` (the channels,
the encoders' and generator's options, the resolved recipe). Loading rebuilds the modules
through the plugin registry and never executes code from the folder.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, is_dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file

from synthwear.errors import SynthwearError, one_line
from synthwear.interfaces import MISSING, Encoder, GeneratorSpec
from synthwear.plugins import Registry

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
    summary: bool = False  # every sequence opens with a summary day (see ``with_summary``)

    @property
    def device(self) -> torch.device:
        return next(self.generator.parameters()).device

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

    def input_ids(self, tokens: torch.Tensor) -> torch.Tensor:
        """Map MISSING to each channel's "missing" id (its n_tokens)."""
        missing_ids = torch.tensor(self.spec.vocab_sizes, device=tokens.device)
        return torch.where(tokens == MISSING, missing_ids, tokens)

    def start_ids(self, n: int) -> torch.Tensor:
        """(n, 1, C) "start of sequence" ids: each channel's n_tokens + 1."""
        return (torch.tensor(self.spec.vocab_sizes, device=self.device) + 1).expand(n, 1, -1).clone()

    def with_summary(self, tokens: torch.Tensor) -> torch.Tensor:
        """Windows (B, T, C) -> the sequences the generator models: with ``summary``, a first "day"
        holding each channel's mean bin over the window (MISSING where the channel has no observed
        day) precedes the days. Sampled first, it fixes a synthetic person's level for the whole
        sequence, so that days vary around it instead of drifting, as real persons' days do."""
        if not self.summary:
            return tokens
        observed = tokens != MISSING
        mean = (tokens.clamp(min=0) * observed).sum(dim=1) / observed.sum(dim=1).clamp(min=1)
        summary = torch.where(observed.any(dim=1), mean.round().long(), MISSING)
        return torch.cat([summary[:, None], tokens], dim=1)

    def training_pair(self, windows: torch.Tensor, hide_summary: float = 0.0) -> tuple[torch.Tensor, torch.Tensor]:
        """Windows (B, T, C) of token ids -> (inputs, targets) the generator is trained and scored on."""
        targets = self.with_summary(windows)
        return self.shifted_inputs(targets, hide_summary), targets

    def shifted_inputs(self, tokens: torch.Tensor, hide_summary: float = 0.0) -> torch.Tensor:
        """Inputs for sequences ``tokens`` (B, T, C): the start day, then days 0..T-2. With a summary
        day, a share ``hide_summary`` of the sequences (1: all) see it as missing: the model learns
        to predict days without it too, which is how it scores real days causally and continues
        given real days."""
        inputs = torch.cat([self.start_ids(tokens.size(0)), self.input_ids(tokens[:, :-1])], dim=1)
        if self.summary and hide_summary > 0:
            hidden = torch.rand(tokens.size(0), device=tokens.device) < hide_summary
            missing = torch.tensor(self.spec.vocab_sizes, device=tokens.device)
            inputs[:, 1] = torch.where(hidden[:, None], missing, inputs[:, 1])
        return inputs

    def decode(self, tokens: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        values = np.empty(tokens.shape, dtype=np.float64)
        for c, encoder in enumerate(self.encoders):
            low, high = self.ranges[c]
            values[..., c] = np.round(np.clip(encoder.decode(tokens[..., c], rng), low, high), self.decimals[c])
        return values

    # --- inference ------------------------------------------------------------------------------
    @torch.no_grad()
    def next_day_probabilities(self, values: np.ndarray, batch_size: int = 1024) -> list[np.ndarray]:
        """For windows (N, T, C), per channel (N, T, n_tokens): day t's distribution given days < t."""
        self.generator.eval()
        tokens = torch.from_numpy(self.tokenize(values)[0])
        out: list[list[np.ndarray]] = [[] for _ in self.channels]
        skip = int(self.summary)
        for batch in tokens.split(batch_size):
            inputs, _ = self.training_pair(batch.to(self.device), hide_summary=1.0)  # causal: no summary to see
            for c, logits in enumerate(self.generator(inputs)):
                out[c].append(torch.softmax(logits[:, skip:].float(), dim=-1).cpu().numpy())
        return [np.concatenate(parts) for parts in out]

    @torch.no_grad()
    def generate(self, n: int, days: int, **options) -> np.ndarray:
        """Sample (n, days, C) values day by day (``generate_batches``, all in one array)."""
        return np.concatenate(list(self.generate_batches(n, days, **options)))

    def generate_batches(
        self,
        n: int,
        days: int,
        *,
        temperature: float | Sequence[float] = 1.0,
        summary_temperature: float | Sequence[float] | None = None,
        seed: int = 0,
        prime: np.ndarray | None = None,
        batch_size: int = 4096,
        on_batch=None,
        use_cache: bool = True,
    ) -> Iterator[np.ndarray]:
        """Sample (n, days, C) values day by day, yielded ``batch_size`` persons at a time so that a
        large cohort can be written as it comes; ``prime`` (n, k, C) real days to continue from.
        ``summary_temperature``: the temperature of a summary day (the person's level), drawn first;
        by default the days' own.

        Beyond the model's context the window slides: the start token followed by the most recent
        ``max_days - 1`` days, which is exactly what training showed it (windows start anywhere).
        A generator with the optional ``extend(tokens, cache) -> (logits, cache)`` method (a KV
        cache) is fed only the newest day while the sequence fits its context; sliding windows
        shift every position, so beyond the context each day re-runs the full window.
        ``use_cache=False`` re-runs the whole sequence every day (the same samples, for measuring).
        """
        self.generator.eval()
        temperatures = self.per_channel(temperature)
        summary_temperatures = temperatures if summary_temperature is None else self.per_channel(summary_temperature)
        torch_gen = torch.Generator(device=self.device).manual_seed(seed)
        rng = np.random.default_rng(seed)
        k = 0 if prime is None else prime.shape[1]
        if k > days:
            raise SynthwearError(f"cannot continue {k} given days into only {days} days")
        extend = getattr(self.generator, "extend", None) if use_cache else None
        for lo in range(0, n, batch_size):
            size = min(batch_size, n - lo)
            seq = self.start_ids(size)
            if prime is not None:
                primed = torch.from_numpy(self.tokenize(prime[lo : lo + size])[0]).to(self.device)
                if self.summary:  # a continuation's level comes from the given days, not a drawn summary
                    primed = torch.cat([torch.full_like(primed[:, :1], MISSING), primed], dim=1)
                seq = torch.cat([seq, self.input_ids(primed)], dim=1)
            if self.summary and prime is None:  # the person's level first, at its own temperature
                seq = self.extend_sequences(seq, 1, summary_temperatures, torch_gen, extend)
            seq = self.extend_sequences(seq, days - k, temperatures, torch_gen, extend)
            tokens = seq[:, 1 + self.summary :].cpu().numpy()
            values = self.decode(np.where(tokens >= np.array(self.spec.vocab_sizes), MISSING, tokens), rng)
            if prime is not None:
                values[:, :k] = prime[lo : lo + size]
            if on_batch:
                on_batch(size)
            yield values

    def per_channel(self, temperature: float | Sequence[float]) -> list[float]:
        temperatures = [temperature] * len(self.channels) if np.isscalar(temperature) else list(temperature)
        if len(temperatures) != len(self.channels):
            raise SynthwearError(f"{len(temperatures)} temperatures for {len(self.channels)} channels")
        return temperatures

    def extend_sequences(
        self,
        seq: torch.Tensor,
        steps: int,
        temperatures: list[float],
        generator: torch.Generator,
        extend: Callable | None,
    ) -> torch.Tensor:
        """Draw ``steps`` more days onto input sequences (B, L, C), one day at a time."""
        cache, cached = None, 0
        for _ in range(steps):
            if seq.size(1) > self.spec.max_days:  # the start (and summary) day stay, the oldest days leave
                kept = 1 + self.summary
                logits = self.generator(torch.cat([seq[:, :kept], seq[:, kept - self.spec.max_days :]], dim=1))
            elif extend is not None:
                logits, cache = extend(seq[:, cached:], cache)
                cached = seq.size(1)
            else:
                logits = self.generator(seq)
            day = [sample_token(channel[:, -1], t, generator) for channel, t in zip(logits, temperatures)]
            seq = torch.cat([seq, torch.stack(day, dim=1)[:, None, :]], dim=1)
        return seq

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
            "recipe": self.recipe,
        }
        state = {k: v.detach().cpu().contiguous() for k, v in self.generator.state_dict().items()}
        save_file(state, folder / "weights.safetensors", metadata={"model_json_sha256": description_digest(meta)})
        (folder / "model.json").write_text(json.dumps(meta, indent=2))

    @classmethod
    def load(cls, folder: Path, registry: Registry, device: str | torch.device = "cpu") -> SynthesisModel:
        folder = Path(folder)
        try:
            meta = json.loads((folder / "model.json").read_text())
        except FileNotFoundError:
            raise SynthwearError(f"{folder}: not a model folder (no model.json)") from None
        except json.JSONDecodeError as err:
            raise SynthwearError(f"{folder / 'model.json'}: not valid JSON ({err.msg}, line {err.lineno})") from None
        if not isinstance(meta, dict) or meta.get("format_version") != FORMAT_VERSION:
            version = meta.get("format_version") if isinstance(meta, dict) else None
            raise SynthwearError(f"{folder / 'model.json'}: unsupported format_version {version!r}")
        weights = folder / "weights.safetensors"
        state, stored_digest = read_weights(weights)
        if stored_digest is not None and stored_digest != description_digest(meta):
            raise SynthwearError(
                f"{folder / 'model.json'}: does not match the weights it was saved with (it was edited after training: "
                "channels, bins, ranges or the generator differ); use the model.json saved with these weights"
            )
        where = str(folder / "model.json")
        try:
            encoders = [
                registry.build(
                    "encoders", spec["name"], {k: v for k, v in spec.items() if k != "name"}, low, high, where=where
                )
                for spec, (low, high) in zip(meta["encoders"], meta["ranges"])
            ]
            spec = GeneratorSpec(tuple(meta["spec"]["vocab_sizes"]), meta["spec"]["max_days"])
            options = {k: v for k, v in meta["generator"].items() if k != "name"}
            generator = registry.build("generators", meta["generator"]["name"], options, spec, where=where)
            counts = {len(meta[k]) for k in ("channels", "decimals", "ranges")} | {len(encoders), len(spec.vocab_sizes)}
        except (KeyError, TypeError) as err:
            raise SynthwearError(f"{where}: not a model description synthwear wrote (missing or wrong {err})") from None
        if len(counts) != 1 or [e.n_tokens for e in encoders] != list(spec.vocab_sizes):
            raise SynthwearError(f"{where}: channels, decimals, ranges, encoders and vocab_sizes do not agree")
        try:
            generator.load_state_dict(state)
        except RuntimeError as err:
            first = next((line.strip() for line in str(err).splitlines()[1:] if line.strip()), str(err))
            raise SynthwearError(
                f"{weights}: the weights do not fit the generator model.json describes ({first})"
            ) from None
        generator.to(device)
        return cls(
            meta["channels"],
            meta["decimals"],
            [tuple(r) for r in meta["ranges"]],
            encoders,
            generator,
            meta["generator"]["name"],
            spec,
            meta["recipe"],
            bool(meta.get("summary", False)),
        )


def description_digest(meta: dict[str, Any]) -> str:
    """A checksum of everything in model.json that the weights depend on, kept inside the weights file,
    so that a model.json edited after training (bins, ranges, channels) is caught instead of sampling
    garbage from weights that no longer mean what it says."""
    fields = {key: meta.get(key) for key in ("channels", "decimals", "ranges", "encoders", "generator", "spec")}
    if meta.get("summary"):  # models saved before the summary day existed keep their checksum
        fields["summary"] = True
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


def sample_token(logits: torch.Tensor, temperature: float, generator: torch.Generator) -> torch.Tensor:
    """(B, V) logits -> (B,) ids; temperature 0 takes the most likely id."""
    if temperature == 0:
        return logits.argmax(dim=-1)
    # inverse-CDF sampling: one uniform per row, where torch.multinomial draws one per class
    cdf = torch.softmax(logits.float() / temperature, dim=-1).cumsum(dim=-1)
    u = torch.rand(cdf.size(0), 1, generator=generator, device=cdf.device) * cdf[:, -1:]
    return torch.searchsorted(cdf, u, right=True).squeeze(-1)
