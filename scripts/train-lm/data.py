"""Corpus access and held-out evaluation shared by train.py, evaluate.py and export.py.

The corpus is the built-in one of bench/corpus.ts (GCIDE + fortunes, 64 KiB
blocks, block i held out when i % 7 == 6), cached as .corpus/train.txt and
.corpus/heldout.txt at the repository root. Make it with
`node -e "import('./dist/bench/corpus.js').then(m => m.ensureCorpus())"`.
"""
from __future__ import annotations

import math
import os

import numpy as np
import torch
import torch.nn.functional as F

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


def load_split(name: str) -> np.ndarray:
    path = os.path.join(ROOT, ".corpus", "train.txt" if name == "train" else "heldout.txt")
    if not os.path.exists(path):
        raise SystemExit(f"{path} is missing: run node -e \"import('./dist/bench/corpus.js').then(m => m.ensureCorpus())\"")
    return np.fromfile(path, dtype=np.uint8)


def cpu_has_bf16() -> bool:
    try:
        flags = open("/proc/cpuinfo").read()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


@torch.no_grad()
def eval_bits_per_byte(model, data: np.ndarray, context: int, stride: int, bf16: bool) -> float:
    """Bits/byte over `data`, every byte scored once.

    Windows of `context` bytes advance by `stride`; the first window scores all
    its bytes, later ones only their last `stride` bytes, so every scored byte
    but the first context - stride has at least context - stride bytes before it.
    """
    model.eval()
    total = 0.0
    count = 0
    n = len(data)
    scored_to = 1  # bytes [0, scored_to) are done; byte 0 has no prediction
    start = 0
    while scored_to < n:
        end = min(n, start + context)
        x = torch.from_numpy(data[start:end].astype(np.int64))[None]
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            logits = model(x[:, :-1])
        nll = F.cross_entropy(logits[0].float(), x[0, 1:], reduction="none")  # predicts bytes start+1 .. end-1
        keep = nll[scored_to - (start + 1):]
        total += keep.sum().item()
        count += keep.numel()
        scored_to = end
        start = end - (context - stride)
    model.train()
    return total / count / math.log(2)


ALNUM = np.frombuffer(b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ", dtype=np.uint8)


@torch.no_grad()
def copy_probe_bits(model, held: np.ndarray, context: int, bf16: bool, windows: int = 8, seed: int = 0):
    """(first, copy) bits/byte on a random 12-character alphanumeric span.

    In each of `windows` seeded held-out windows of `context` bytes the span
    sits at byte 100 and again, after the same 16 bytes, 40 bytes before the
    end. The first occurrence can only be guessed (log2(62) = 5.95 bits); the
    repeat is predictable only by copying (induction heads): near 0 bits in a
    model that copies, as high as the first in one that does not.
    """
    model.eval()
    rng = np.random.default_rng(seed)
    first = copy = 0.0
    span, src, dst = 12, 100, context - 40
    for _ in range(windows):
        s = int(rng.integers(0, len(held) - context - 1))
        row = held[s : s + context].astype(np.int64).copy()
        row[src : src + span] = ALNUM[rng.integers(0, len(ALNUM), span)]
        row[dst - 16 : dst + span] = row[src - 16 : src + span]
        x = torch.from_numpy(row)[None]
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            logits = model(x[:, :-1])
        nll = F.cross_entropy(logits[0].float(), x[0, 1:], reduction="none") / math.log(2)
        first += nll[src - 1 : src - 1 + span].mean().item()
        copy += nll[dst - 1 : dst - 1 + span].mean().item()
    model.train()
    return first / windows, copy / windows
