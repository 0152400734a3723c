"""The paper's generator: a small decoder-only transformer over days, one softmax head per channel.

Read top to bottom: config -> causal self-attention -> MLP -> block -> model. Attention is built
from ``nn.Linear`` and ``scaled_dot_product_attention`` (not ``nn.MultiheadAttention``) so that
Opacus can compute per-sample gradients for DP-SGD.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from synthwear.hookspecs import hookimpl
from synthwear.interfaces import GeneratorSpec


@dataclass
class TransformerConfig:
    n_layer: int = 3  # paper: 3 decoder blocks
    n_head: int = 4  # paper: 4 attention heads
    n_embd: int = 64  # paper: 64-dimensional embeddings
    dropout: float = 0.1  # the cohorts are small; some regularisation keeps early stopping honest


class CausalSelfAttention(nn.Module):
    def __init__(self, config: TransformerConfig):
        super().__init__()
        if config.n_embd % config.n_head:
            raise ValueError(f"transformer n_embd ({config.n_embd}) must be divisible by n_head ({config.n_head})")
        self.c_attn = nn.Linear(config.n_embd, 3 * config.n_embd)  # query, key, value in one matmul
        self.c_proj = nn.Linear(config.n_embd, config.n_embd)
        self.resid_dropout = nn.Dropout(config.dropout)
        self.n_head, self.n_embd, self.dropout = config.n_head, config.n_embd, config.dropout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, T, C = x.size()
        q, k, v = self.c_attn(x).split(self.n_embd, dim=2)
        q = q.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)  # (B, nh, T, hs)
        k = k.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)  # (B, nh, T, hs)
        v = v.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)  # (B, nh, T, hs)
        # is_causal masks the upper triangle of the attention weights: day t sees days <= t only
        y = F.scaled_dot_product_attention(q, k, v, dropout_p=self.dropout if self.training else 0.0, is_causal=True)
        y = y.transpose(1, 2).contiguous().view(B, T, C)  # (B, T, C)
        return self.resid_dropout(self.c_proj(y))


class MLP(nn.Module):
    def __init__(self, config: TransformerConfig):
        super().__init__()
        self.c_fc = nn.Linear(config.n_embd, 4 * config.n_embd)
        self.c_proj = nn.Linear(4 * config.n_embd, config.n_embd)
        self.dropout = nn.Dropout(config.dropout)

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


class DailyTransformer(nn.Module):
    """Input day t is the sum of one embedding per channel plus a position embedding."""

    def __init__(self, spec: GeneratorSpec, config: TransformerConfig = TransformerConfig()):
        super().__init__()
        self.spec, self.config = spec, config
        # each channel's ids: its bins, then "missing", then "start of sequence"
        self.channel_embeddings = nn.ModuleList(nn.Embedding(n + 2, config.n_embd) for n in spec.vocab_sizes)
        self.position_embedding = nn.Embedding(spec.max_days, config.n_embd)
        self.drop = nn.Dropout(config.dropout)
        self.blocks = nn.ModuleList(Block(config) for _ in range(config.n_layer))
        self.ln_f = nn.LayerNorm(config.n_embd)
        self.heads = nn.ModuleList(nn.Linear(config.n_embd, n) for n in spec.vocab_sizes)  # one per channel

    def forward(self, tokens: torch.Tensor) -> list[torch.Tensor]:
        B, T, C = tokens.size()
        if T > self.spec.max_days:
            raise ValueError(f"sequence of {T} days is longer than the model's context ({self.spec.max_days})")
        position = torch.arange(T, device=tokens.device)
        x = self.position_embedding(position)  # (T, n_embd)
        for c, embedding in enumerate(self.channel_embeddings):
            x = x + embedding(tokens[:, :, c])  # (B, T, n_embd)
        x = self.drop(x)
        for block in self.blocks:
            x = block(x)
        x = self.ln_f(x)
        return [head(x) for head in self.heads]  # C x (B, T, n_tokens_c)


@hookimpl
def register_generators(register):
    register("transformer", DailyTransformer)
