"""Does a checkpoint copy? Bits/byte on a random 12-character span, the first
time it occurs (only guessable) and again later after the same 16 bytes
(predictable only by copying, as induction heads do). A model that copies
scores the repeat far below the first occurrence (near 0); one that does not
scores both near log2(62) = 5.95 bits or worse.

  scripts/train-lm/run.sh copy_probe.py CHECKPOINT.pt [CONTEXT]

Eight held-out windows of CONTEXT bytes (default 1024), span at byte 100,
repeat 40 bytes before the end; seeded.
"""
import sys, torch, numpy as np
import os
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from model import ByteLM, Config
from data import load_split
torch.set_num_threads(1)
ck = torch.load(sys.argv[1], map_location='cpu'); m = ByteLM(Config(**ck['config'])); m.load_state_dict(ck['state']); m.eval()
held = load_split('heldout'); rng = np.random.default_rng(0)
ALNUM = np.frombuffer(b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ", dtype=np.uint8)
ctx = int(sys.argv[2]) if len(sys.argv) > 2 else 1024
tot_src = tot_dst = 0; n = 0
for t in range(8):
    s = rng.integers(0, len(held) - ctx - 1); row = held[s:s+ctx].astype(np.int64).copy()
    L = 12; src = 100; dst = ctx - 40
    row[src:src+L] = ALNUM[rng.integers(0, 62, L)]
    row[dst-16:dst+L] = row[src-16:src+L]
    x = torch.from_numpy(row)[None]
    with torch.no_grad(), torch.autocast('cpu', dtype=torch.bfloat16):
        lg = m(x[:, :-1])
    nll = torch.nn.functional.cross_entropy(lg[0].float(), x[0,1:], reduction='none') / np.log(2)
    tot_src += nll[src-1:src-1+L].mean().item(); tot_dst += nll[dst-1:dst-1+L].mean().item(); n += 1
print(f'ctx {ctx}: bits/byte on random span: first {tot_src/n:.2f}, copy {tot_dst/n:.2f}')
