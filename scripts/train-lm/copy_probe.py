"""Does a checkpoint copy? Bits/byte on a random 12-character span the first
time it occurs (only guessable) and again later after the same 16 bytes
(predictable only by copying, as induction heads do); see data.copy_probe_bits.

  scripts/train-lm/run.sh copy_probe.py CHECKPOINT.pt [CONTEXT ...]

Eight seeded held-out windows per CONTEXT (default 1024).
"""
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from model import ByteLM, Config  # noqa: E402
from data import copy_probe_bits, cpu_has_bf16, load_split  # noqa: E402

torch.set_num_threads(int(os.environ.get("THREADS", "1")))
ck = torch.load(sys.argv[1], map_location="cpu")
model = ByteLM(Config(**ck["config"]))
model.load_state_dict(ck["state"])
held = load_split("heldout")
for ctx in [int(c) for c in sys.argv[2:]] or [1024]:
    first, copy = copy_probe_bits(model, held, ctx, bf16=cpu_has_bf16())
    print(f"ctx {ctx}: bits/byte on a random span: first {first:.2f}, copy {copy:.2f}", flush=True)
