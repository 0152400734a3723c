"""Training checkpoints: a killed run resumes where it stopped and ends with the model it would have had.

One file per run (per candidate with ``training.candidates``: ``.<name>.checkpoint-2.safetensors``, ...),
written atomically after every epoch beside the run folder (``.<name>.checkpoint.safetensors``): the generator's weights, the best weights so far, the
weight average (``training.ema``), the optimizer's state, every random generator training draws from (batch order, torch's global
generator behind dropout, any generator the loss holds), and the epoch bookkeeping. Tensors are
safetensors and the rest JSON in its metadata, so loading a checkpoint never runs code. A checkpoint
records a digest of the recipe and the data, and is only ever resumed by the same recipe on the same
data; it is deleted once the run folder is in place.

Under torchrun the ranks hold the same weights and optimizer state (DDP and Opacus' distributed
optimizer keep them equal) but random generators of their own (each rank's windows, persons and
dropout). Rank 0 gathers every rank's generators at each checkpoint and writes the one file; on
``--resume`` every rank reads it and takes its own generators back, so a checkpoint is never half
one epoch and half the next, and resumes only with the number of processes that wrote it.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file

from synthwear.errors import SynthwearError
from synthwear.shard import Shard
from synthwear.tables import atomic_path


def checkpoint_path(out_dir: Path) -> Path:
    out_dir = Path(out_dir)
    return out_dir.with_name(f".{out_dir.name}.checkpoint.safetensors")


def remove_checkpoints(out_dir: Path) -> None:
    """The run's checkpoint and its other candidates' (``training.candidates``: ``….checkpoint-2.…``)."""
    out_dir = Path(out_dir)
    own = re.compile(re.escape(f".{out_dir.name}.checkpoint") + r"(-\d+)?\.safetensors")
    for path in out_dir.parent.iterdir() if out_dir.parent.is_dir() else []:
        if own.fullmatch(path.name):
            path.unlink(missing_ok=True)


def run_digest(recipe: dict[str, Any], data_fingerprint: str) -> str:
    """What a checkpoint must match to be resumed: the resolved recipe and the data."""
    return hashlib.sha256(json.dumps({"recipe": recipe, "data": data_fingerprint}, sort_keys=True).encode()).hexdigest()


@dataclass
class TrainingState:
    """The bookkeeping of the training loop (``synthwear.train.run_training``), saved and restored with the tensors."""

    epoch: int = 0
    best_loss: float = float("inf")
    best_epoch: int = 0
    stale: int = 0
    seen: int = 0  # windows trained on
    steps: int = 0  # optimizer steps taken (the learning-rate schedule's clock)
    seconds: float = 0.0
    history: list[dict] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)  # what else a kind of training keeps (DP: the accountant)


@dataclass
class Checkpointing:
    """Where train_model keeps its checkpoint, and whether to start from one."""

    path: Path
    digest: str
    resume: bool = False

    def save(
        self,
        generator: torch.nn.Module,
        best: dict | None,
        optimizer,
        rngs: dict[str, Any],
        progress: TrainingState,
        average: Any = None,
    ):
        """``average``: the weight average (``train.WeightAverage``), where training keeps one. Under
        torchrun every rank calls this (its generators are gathered) and rank 0 writes."""
        tensors = {f"model.{k}": v.detach().cpu().contiguous() for k, v in generator.state_dict().items()}
        tensors |= {f"best.{k}": v.detach().cpu().contiguous() for k, v in (best or {}).items()}
        if average:
            tensors |= {f"average.{k}": v.detach().cpu().contiguous() for k, v in average.average.state_dict().items()}
        optim = optimizer.state_dict()
        for index, state in optim["state"].items():
            tensors |= {f"optim.{index}.{key}": torch.as_tensor(value).cpu() for key, value in state.items()}
        shard = Shard.of_process_group()
        for rank, states in enumerate(shard.gather({name: rng_state(rng) for name, rng in rngs.items()})):
            tensors |= {f"rng.{rank}.{name}": state for name, state in states.items()}
        meta = {"digest": self.digest, "progress": progress.__dict__, "param_groups": optim["param_groups"]}
        meta["processes"] = shard.world_size
        if shard.rank == 0:
            with atomic_path(self.path) as tmp:
                save_file(tensors, tmp, metadata={"synthwear": json.dumps(meta)})

    def saved_extra(self) -> dict[str, Any]:
        """The saved state's ``extra`` (what a kind of training keeps of its own); {} without a checkpoint.
        A damaged file is left for ``restore`` to name."""
        try:
            with safe_open(self.path, framework="pt") as handle:
                return json.loads((handle.metadata() or {})["synthwear"])["progress"]["extra"]
        except (SafetensorError, OSError, KeyError, ValueError, TypeError):
            return {}

    def restore(
        self, generator: torch.nn.Module, optimizer, rngs: dict[str, Any], average: Any = None
    ) -> tuple[TrainingState, dict | None]:
        """Load the checkpoint into the live objects (the weight average too, where training keeps
        one); the progress and the best weights so far."""
        try:
            with safe_open(self.path, framework="pt") as handle:
                meta = json.loads((handle.metadata() or {})["synthwear"])
            tensors = load_file(self.path)
        except (SafetensorError, OSError, KeyError, ValueError) as err:
            raise SynthwearError(
                f"{self.path}: damaged checkpoint ({err}); run without --resume to start over"
            ) from None
        if meta["digest"] != self.digest:
            raise SynthwearError(
                f"{self.path}: the checkpoint is of another recipe or other data; run without --resume to start over"
            )
        shard = Shard.of_process_group()
        if meta.get("processes", 1) != shard.world_size:
            raise SynthwearError(
                f"{self.path}: the checkpoint was written by {meta.get('processes', 1)} training processes, this run "
                f"has {shard.world_size}; resume with as many (torchrun --nproc_per_node)"
            )
        generator.load_state_dict(part(tensors, "model."))
        if average:
            average.average.load_state_dict(part(tensors, "average."))
        optimizer.load_state_dict({"state": optimizer_state(tensors), "param_groups": meta["param_groups"]})
        states = part(tensors, f"rng.{shard.rank}.")
        if missing := sorted(set(rngs) - set(states)):  # written by an older synthwear, or for other generators
            raise SynthwearError(
                f"{self.path}: the checkpoint lacks the random generator {missing[0]!r} this training draws from; "
                "run without --resume to start over"
            )
        for name, rng in rngs.items():
            set_rng_state(rng, states[name])
        best = part(tensors, "best.")
        return TrainingState(**meta["progress"]), best or None

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)


def part(tensors: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    return {k.removeprefix(prefix): v for k, v in tensors.items() if k.startswith(prefix)}


def optimizer_state(tensors: dict[str, torch.Tensor]) -> dict[int, dict[str, torch.Tensor]]:
    state: dict[int, dict[str, torch.Tensor]] = {}
    for key, value in part(tensors, "optim.").items():
        index, name = key.split(".", 1)
        state.setdefault(int(index), {})[name] = value
    return state


def rng_state(rng: Any) -> torch.Tensor:
    """A generator's state: a torch.Generator, or torch's global CPU or CUDA one ("torch", "cuda")."""
    if rng == "torch":
        return torch.get_rng_state()
    return torch.cuda.get_rng_state() if rng == "cuda" else rng.get_state()


def set_rng_state(rng: Any, state: torch.Tensor) -> None:
    if rng == "torch":
        torch.set_rng_state(state)
    elif rng == "cuda":
        torch.cuda.set_rng_state(state)
    else:
        rng.set_state(state)


def training_generators(loss: Any, **generators: torch.Generator) -> dict[str, Any]:
    """Every random generator a training step draws from: the loop's own (``generators``: the batch
    order; under DP-SGD the person sampling, the window picks and the noise), torch's global
    generator (dropout, input dropout) and each torch.Generator the loss holds (shake-shake's α)."""
    rngs: dict[str, Any] = {**generators, "torch": "torch"} | ({"cuda": "cuda"} if torch.cuda.is_available() else {})
    rngs |= {f"loss.{name}": value for name, value in vars(loss).items() if isinstance(value, torch.Generator)}
    return rngs
