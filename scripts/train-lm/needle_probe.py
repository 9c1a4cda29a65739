"""The needle copy test of `eval kv --model` (lib/model/fidelity/text.ts), in
PyTorch, for checkpoints during training: a held-out haystack of CONTEXT
bytes with "The key is <6 digits>.\\n" at a line start at 10-30% depth, then
"\\nThe key is <first digit>"; correct when the model's argmax gives every
other digit (teacher-forced argmax, which equals greedy decoding while it is
right). Seeded; the haystacks and keys differ from the JS test's.

  scripts/train-lm/run.sh needle_probe.py CHECKPOINT.pt [CONTEXT ...]   (default 4064; TRIALS=20)
"""
import math
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from model import ByteLM, Config  # noqa: E402
from data import cpu_has_bf16, load_split  # noqa: E402


def needle_trial(held: np.ndarray, rng: np.random.Generator, context: int, digits: int = 6):
    key = str(rng.integers(1, 10)) + "".join(str(d) for d in rng.integers(0, 10, digits - 1))
    needle = np.frombuffer(f"The key is {key}.\n".encode(), dtype=np.uint8)
    question = np.frombuffer(f"\nThe key is {key[0]}".encode(), dtype=np.uint8)
    hay_len = context - len(needle)
    for _ in range(1000):
        s = int(rng.integers(1, len(held) - hay_len - 1))
        while s < len(held) - hay_len - 1 and held[s - 1] != 10:
            s += 1
        hay = held[s : s + hay_len]
        if b"key is" not in hay.tobytes().lower():
            break
    else:
        raise SystemExit('needle_probe: every window of the text has "key is"')
    at = int(rng.uniform(0.1, 0.3) * hay_len)
    while 0 < at < hay_len and hay[at - 1] != 10:
        at += 1
    row = np.concatenate([hay[:at], needle, hay[at:], question, np.frombuffer(key[1:].encode(), dtype=np.uint8)])
    return row.astype(np.int64), digits - 1


@torch.no_grad()
def needle_accuracy(model, held, context: int, trials: int, bf16: bool, seed: int = 0):
    model.eval()
    rng = np.random.default_rng(seed)
    correct = 0
    bits = 0.0
    for _ in range(trials):
        row, n = needle_trial(held, rng, context)
        x = torch.from_numpy(row)[None]
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            logits = model(x[:, :-1])[0, -n:].float()
        target = x[0, -n:]
        correct += int(bool((logits.argmax(-1) == target).all()))
        bits += (F.cross_entropy(logits, target, reduction="sum") / math.log(2)).item() / n
    model.train()
    return correct / trials, bits / trials


if __name__ == "__main__":
    torch.set_num_threads(int(os.environ.get("THREADS", "1")))
    ck = torch.load(sys.argv[1], map_location="cpu")
    model = ByteLM(Config(**ck["config"]))
    model.load_state_dict(ck["state"])
    held = load_split("heldout")
    trials = int(os.environ.get("TRIALS", "20"))
    for ctx in [int(c) for c in sys.argv[2:]] or [4064]:
        acc, bits = needle_accuracy(model, held, ctx, trials, bf16=cpu_has_bf16())
        print(f"ctx {ctx}: needle accuracy {acc * 100:.0f}% of {trials}, key {bits:.2f} bits/digit", flush=True)
