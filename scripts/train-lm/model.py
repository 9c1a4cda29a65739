"""A small decoder-only byte-level transformer, shaped like the models users run.

Llama layout (pre-norm RMSNorm, rotary position embedding, grouped-query
attention, SwiGLU MLP, tied input/output embedding), over 256 byte values.
The same definition is exported to ONNX by export.py; the JS side
(lib/model/) relies on these conventions:

  * RoPE is the "rotate half" form of HF Llama (`rotate_half`): for a head
    vector x of size D, pairs are (x[i], x[i + D/2]) rotated by angle
    pos * base^(-2i/D), i < D/2.
  * Query heads h use KV head h // (nHeads / nKvHeads) (HF `repeat_kv`).
  * Attention is scaled by 1/sqrt(headDim), causal.

Shapes: x (B, T, d); q (B, nHeads, T, headDim); k, v (B, nKvHeads, T, headDim).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, asdict

import torch
import torch.nn as nn
import torch.nn.functional as F


@dataclass
class Config:
    name: str = "tp-byte-main"
    vocab: int = 256
    d_model: int = 256
    n_layers: int = 4
    n_heads: int = 4
    n_kv_heads: int = 2
    head_dim: int = 64
    mlp_hidden: int = 768
    rope_base: float = 10000.0
    norm_eps: float = 1e-5
    context: int = 4096

    def to_json(self) -> dict:
        return asdict(self)


CONFIGS = {
    # Main: 4 query heads of 64 share one KV head (group 4, as Llama-3 8B's 32/8); 3.08M parameters.
    # Draft: same vocabulary and head size, 2 query heads per KV head; 0.43M parameters.
    "main": Config(name="tp-byte-main", d_model=256, n_layers=4, n_heads=4, n_kv_heads=1, head_dim=64, mlp_hidden=768),
    "draft": Config(name="tp-byte-draft", d_model=128, n_layers=2, n_heads=2, n_kv_heads=1, head_dim=64, mlp_hidden=384),
    # CI smoke only (scripts/train-lm/smoke.sh): seconds to train a few steps and export.
    "tiny": Config(name="tp-byte-tiny", d_model=64, n_layers=2, n_heads=4, n_kv_heads=2, head_dim=16, mlp_hidden=128, context=256),
}


class RMSNorm(nn.Module):
    def __init__(self, d: int, eps: float):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(d))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        xf = x.float()
        y = xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + self.eps)
        return (y * self.weight).to(x.dtype)


def rope_tables(cfg: Config, positions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """cos, sin of shape (T, headDim) for integer positions (T,)."""
    half = cfg.head_dim // 2
    inv_freq = 1.0 / (cfg.rope_base ** (torch.arange(0, half, dtype=torch.float32) * 2.0 / cfg.head_dim))
    angles = positions.float()[:, None] * inv_freq[None, :]
    angles = torch.cat([angles, angles], dim=-1)
    return angles.cos(), angles.sin()


def rotate_half(x: torch.Tensor) -> torch.Tensor:
    half = x.shape[-1] // 2
    return torch.cat([-x[..., half:], x[..., :half]], dim=-1)


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    return x * cos + rotate_half(x) * sin


class Attention(nn.Module):
    def __init__(self, cfg: Config):
        super().__init__()
        self.cfg = cfg
        self.q = nn.Linear(cfg.d_model, cfg.n_heads * cfg.head_dim, bias=False)
        self.k = nn.Linear(cfg.d_model, cfg.n_kv_heads * cfg.head_dim, bias=False)
        self.v = nn.Linear(cfg.d_model, cfg.n_kv_heads * cfg.head_dim, bias=False)
        self.o = nn.Linear(cfg.n_heads * cfg.head_dim, cfg.d_model, bias=False)

    def project(self, x, cos, sin):
        """x (B,T,d) -> q (B,H,T,D), k, v (B,Hkv,T,D), RoPE applied to q and k."""
        c = self.cfg
        B, T, _ = x.shape
        q = self.q(x).view(B, T, c.n_heads, c.head_dim).transpose(1, 2)
        k = self.k(x).view(B, T, c.n_kv_heads, c.head_dim).transpose(1, 2)
        v = self.v(x).view(B, T, c.n_kv_heads, c.head_dim).transpose(1, 2)
        return apply_rope(q, cos, sin), apply_rope(k, cos, sin), v

    def forward(self, x, cos, sin):
        c = self.cfg
        B, T, _ = x.shape
        q, k, v = self.project(x, cos, sin)
        group = c.n_heads // c.n_kv_heads
        # (B, Hkv, group, T, D) so each KV head serves its group without a copy.
        qg = q.view(B, c.n_kv_heads, group, T, c.head_dim)
        scores = torch.matmul(qg, k.unsqueeze(2).transpose(-1, -2)).float() / math.sqrt(c.head_dim)
        mask = torch.ones(T, T, dtype=torch.bool, device=x.device).triu(1)
        scores = scores.masked_fill(mask, float("-inf"))
        p = torch.softmax(scores, dim=-1).to(v.dtype)
        out = torch.matmul(p, v.unsqueeze(2)).reshape(B, c.n_heads, T, c.head_dim)
        return self.o(out.transpose(1, 2).reshape(B, T, c.n_heads * c.head_dim))


class MLP(nn.Module):
    def __init__(self, cfg: Config):
        super().__init__()
        self.gate = nn.Linear(cfg.d_model, cfg.mlp_hidden, bias=False)
        self.up = nn.Linear(cfg.d_model, cfg.mlp_hidden, bias=False)
        self.down = nn.Linear(cfg.mlp_hidden, cfg.d_model, bias=False)

    def forward(self, x):
        return self.down(F.silu(self.gate(x)) * self.up(x))


class Block(nn.Module):
    def __init__(self, cfg: Config):
        super().__init__()
        self.attn_norm = RMSNorm(cfg.d_model, cfg.norm_eps)
        self.attn = Attention(cfg)
        self.mlp_norm = RMSNorm(cfg.d_model, cfg.norm_eps)
        self.mlp = MLP(cfg)

    def forward(self, x, cos, sin):
        x = x + self.attn(self.attn_norm(x), cos, sin)
        return x + self.mlp(self.mlp_norm(x))


class ByteLM(nn.Module):
    def __init__(self, cfg: Config):
        super().__init__()
        self.cfg = cfg
        self.embed = nn.Embedding(cfg.vocab, cfg.d_model)
        self.blocks = nn.ModuleList([Block(cfg) for _ in range(cfg.n_layers)])
        self.norm = RMSNorm(cfg.d_model, cfg.norm_eps)
        self.apply(self._init)
        # GPT-2 style: residual output projections scaled by depth.
        for b in self.blocks:
            nn.init.normal_(b.attn.o.weight, std=0.02 / math.sqrt(2 * cfg.n_layers))
            nn.init.normal_(b.mlp.down.weight, std=0.02 / math.sqrt(2 * cfg.n_layers))

    @staticmethod
    def _init(m):
        if isinstance(m, (nn.Linear, nn.Embedding)):
            nn.init.normal_(m.weight, std=0.02)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """tokens (B, T) int64 -> logits (B, T, vocab), float32."""
        T = tokens.shape[1]
        cos, sin = rope_tables(self.cfg, torch.arange(T, device=tokens.device))
        x = self.embed(tokens)
        for b in self.blocks:
            x = b(x, cos.to(x.dtype), sin.to(x.dtype))
        x = self.norm(x)
        return F.linear(x, self.embed.weight).float()  # tied output head

    def n_params(self) -> int:
        return sum(p.numel() for p in self.parameters())
