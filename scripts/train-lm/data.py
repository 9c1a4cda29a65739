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
