"""A GRU generator for synthwear, shipped as a separate package to prove the plugin path.

It honours the generator contract (synthwear.interfaces.Generator): tokens (B, T, C) in, one
logit tensor (B, T, n_tokens) per channel out, position t predicting day t+1. A recurrent model
is causal by construction.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn

from synthwear import hookimpl
from synthwear.interfaces import GeneratorSpec


@dataclass
class GRUConfig:
    hidden: int = 64  # embedding and state size
    layers: int = 1  # stacked GRU layers


class DailyGRU(nn.Module):
    def __init__(self, spec: GeneratorSpec, config: GRUConfig = GRUConfig()):
        super().__init__()
        self.spec, self.config = spec, config
        self.channel_embeddings = nn.ModuleList(nn.Embedding(n + 2, config.hidden) for n in spec.vocab_sizes)
        self.gru = nn.GRU(config.hidden, config.hidden, num_layers=config.layers, batch_first=True)
        self.heads = nn.ModuleList(nn.Linear(config.hidden, n) for n in spec.vocab_sizes)

    def forward(self, tokens: torch.Tensor) -> list[torch.Tensor]:
        x = sum(embedding(tokens[:, :, c]) for c, embedding in enumerate(self.channel_embeddings))
        states, _ = self.gru(x)  # (B, T, hidden)
        return [head(states) for head in self.heads]


@hookimpl
def register_generators(register):
    register("gru", DailyGRU)
