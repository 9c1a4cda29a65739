"""Trains a byte-level model (model.py) on the training split of the built-in corpus.

Usage (from the repository root; the corpus comes from `.corpus/`, see data.py).
The defaults are the recipe of the committed models (models/lm/README.md):

  scripts/train-lm/run.sh train.py --config main --out main.pt --log main.jsonl
  scripts/train-lm/run.sh train.py --config draft --steps 400 --eval-every 100 --out draft.pt
  scripts/train-lm/run.sh export.py --checkpoint main.pt --out models/lm/main

Seeded and reproducible for a given machine and thread count (bf16 autocast
is used only where the CPU has AVX512-BF16 or AMX; elsewhere it trains in
float32, which is slower and gives slightly different numbers).

Schedule: `--steps` optimizer steps in two phases, the first at
`--short-context` bytes per sequence, the last `--long-fraction` of steps at
the model's full context, so RoPE sees the long distances the copy test uses.
A fraction of training sequences gets one random span copied to a later
place (`--copy-prob`), which teaches long-range copying (induction) in few
tokens; held-out text is never augmented.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from model import CONFIGS, ByteLM  # noqa: E402
from data import ALNUM, load_split, copy_probe_bits, cpu_has_bf16, eval_bits_per_byte
from needle_probe import needle_accuracy  # noqa: E402


def parse_args():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", choices=sorted(CONFIGS), default="main")
    p.add_argument("--out", required=True, help="checkpoint path (.pt)")
    p.add_argument("--steps", type=int, default=640)
    p.add_argument("--tokens-per-step", type=int, default=16384)
    p.add_argument("--short-context", type=int, default=512)
    p.add_argument("--long-fraction", type=float, default=0.125)
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--min-lr", type=float, default=3e-4)
    p.add_argument("--warmup", type=int, default=100)
    p.add_argument("--weight-decay", type=float, default=0.1)
    p.add_argument("--copy-prob", type=float, default=0.3)
    p.add_argument("--copy-random", type=float, default=0.0,
                   help="fraction of copied spans first filled with random digits/letters, so only copying predicts them")
    p.add_argument("--copy-every", type=int, default=0,
                   help="one --copy-prob chance of a copied span per this many bytes of a row (0: one chance per row)")
    p.add_argument("--copy-digits", type=float, default=0.0,
                   help="fraction of the random spans made of digits only (passkey-like numbers)")
    p.add_argument("--copy-far", type=float, default=0.0,
                   help="fraction of copied spans taken from the first 30%% of the row and placed in its last 25%% (long range)")
    p.add_argument("--repeat-prob", type=float, default=0.0,
                   help="fraction of sequences that are one random string (8 to --repeat-max-period letters/digits) repeated "
                        "to fill the row: the densest induction-head signal (Olsson et al. 2022's repeated random tokens)")
    p.add_argument("--repeat-max-period", type=int, default=64)
    p.add_argument("--init", default=None, help="start from this checkpoint's weights (a second phase; fresh optimizer)")
    p.add_argument("--seed", type=int, default=1234)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--eval-every", type=int, default=160)
    p.add_argument("--eval-bytes", type=int, default=262144, help="held-out bytes for the periodic eval")
    p.add_argument("--probe-context", type=int, default=1024, help="context of the periodic copy probe (data.copy_probe_bits)")
    p.add_argument("--needle-trials", type=int, default=0, help="needle copy trials (needle_probe.py) at each eval, at --probe-context")
    p.add_argument("--precision", choices=["auto", "bf16", "f32"], default="auto")
    p.add_argument("--data", default=None, help="train and evaluate on this file instead of the corpus splits (CI smoke)")
    p.add_argument("--log", default=None, help="JSON-lines log of the learning curve")
    p.add_argument("--max-steps-this-run", type=int, default=None, help="stop early (timing probes)")
    return p.parse_args()


def lr_at(step, a):
    if step < a.warmup:
        return a.lr * (step + 1) / a.warmup
    t = (step - a.warmup) / max(1, a.steps - a.warmup)
    return a.min_lr + 0.5 * (a.lr - a.min_lr) * (1 + math.cos(math.pi * t))


def make_batch(train: np.ndarray, rng: np.random.Generator, batch: int, ctx: int, copy_prob: float,
               copy_random: float = 0.0, repeat_prob: float = 0.0, repeat_max_period: int = 64,
               copy_every: int = 0, copy_digits: float = 0.0, copy_far: float = 0.0) -> torch.Tensor:
    """(batch, ctx + 1) int64 crops of the training split, some with a copied span."""
    starts = rng.integers(0, len(train) - ctx - 1, size=batch)
    rows = np.stack([train[s : s + ctx + 1] for s in starts]).astype(np.int64)
    for r in range(batch):
        if repeat_prob > 0 and rng.random() < repeat_prob:
            period = int(rng.integers(8, repeat_max_period + 1))
            rows[r] = np.resize(ALNUM[rng.integers(0, len(ALNUM), size=period)], ctx + 1)
            continue
        for _ in range(max(1, ctx // copy_every) if copy_every > 0 else 1):
            if rng.random() >= copy_prob:
                continue
            length = int(rng.integers(8, min(64, ctx // 4) + 1))  # (8, 65) for ctx >= 256
            if copy_far > 0 and rng.random() < copy_far:
                # Long range, like the needle test: source in the first 30%, copy in the last 25%.
                src = int(rng.integers(0, max(1, int(ctx * 0.3) - length)))
                dst = int(rng.integers(max(src + length + 16, ctx * 3 // 4), ctx + 1 - length))
            else:
                src = int(rng.integers(0, ctx // 2 - length))
                dst = int(rng.integers(src + length + 16, ctx + 1 - length))
            # The copy starts 16 bytes before the span so the model sees a matching
            # prefix, as in "... the key is 8351 ... the key is 8" -> "351".
            lead = min(16, src)
            if copy_random > 0 and rng.random() < copy_random:
                # Random content (like a passkey): language statistics cannot predict
                # the second occurrence, only copying can.
                alphabet = ALNUM[:10] if copy_digits > 0 and rng.random() < copy_digits else ALNUM
                rows[r, src : src + length] = alphabet[rng.integers(0, len(alphabet), size=length)]
            rows[r, dst - lead : dst + length] = rows[r, src - lead : src + length]
    return torch.from_numpy(rows)


def main():
    a = parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    rng = np.random.default_rng(a.seed)
    cfg = CONFIGS[a.config]
    use_bf16 = a.precision == "bf16" or (a.precision == "auto" and cpu_has_bf16())
    if a.data:
        train = held = np.fromfile(a.data, dtype=np.uint8)
    else:
        train = load_split("train")
        held = load_split("heldout")
    model = ByteLM(cfg)
    if a.init:
        model.load_state_dict(torch.load(a.init, map_location="cpu")["state"])
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
    opt = torch.optim.AdamW(
        [{"params": decay, "weight_decay": a.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=a.lr, betas=(0.9, 0.95), eps=1e-8,
    )
    long_from = int(round(a.steps * (1 - a.long_fraction)))
    log = open(a.log, "a") if a.log else None
    print(f"{cfg.name}: {model.n_params()} parameters, {'bf16 autocast' if use_bf16 else 'float32'}, "
          f"{a.threads} threads, {a.steps} steps x {a.tokens_per_step} tokens; full context {cfg.context} from step {long_from}",
          flush=True)
    t0 = time.time()
    tokens_seen = 0
    for step in range(a.steps):
        if a.max_steps_this_run is not None and step >= a.max_steps_this_run:
            break
        ctx = cfg.context if step >= long_from else a.short_context
        batch = max(1, a.tokens_per_step // ctx)
        x = make_batch(train, rng, batch, ctx, a.copy_prob, a.copy_random, a.repeat_prob, a.repeat_max_period,
                       a.copy_every, a.copy_digits, a.copy_far)
        for g in opt.param_groups:
            g["lr"] = lr_at(step, a)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=use_bf16):
            logits = model(x[:, :-1])
        loss = F.cross_entropy(logits.reshape(-1, cfg.vocab), x[:, 1:].reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        tokens_seen += batch * ctx
        if step % 50 == 0 or step == a.steps - 1:
            el = time.time() - t0
            print(f"step {step} ctx {ctx} loss {loss.item() / math.log(2):.3f} bits/byte  lr {lr_at(step, a):.2e}  "
                  f"{tokens_seen / el:.0f} tok/s  {el / 60:.1f} min", flush=True)
        if (step + 1) % a.eval_every == 0 or step == a.steps - 1:
            bpb = eval_bits_per_byte(model, held[: a.eval_bytes], context=1024, stride=512, bf16=use_bf16)
            first, copy = copy_probe_bits(model, held, context=a.probe_context, bf16=use_bf16)
            rec = {"step": step + 1, "tokens": tokens_seen, "minutes": (time.time() - t0) / 60,
                   "train_bits_per_byte": loss.item() / math.log(2), "heldout_bits_per_byte_sample": bpb,
                   "copy_probe_first": first, "copy_probe_repeat": copy}
            if a.needle_trials > 0:
                rec["needle_accuracy"], rec["needle_bits_per_digit"] = needle_accuracy(
                    model, held, a.probe_context, a.needle_trials, bf16=use_bf16)
            print(json.dumps(rec), flush=True)
            if log:
                log.write(json.dumps(rec) + "\n")
                log.flush()
            torch.save({"config": cfg.to_json(), "state": model.state_dict(), "step": step + 1,
                        "args": vars(a), "tokens": tokens_seen, "minutes": (time.time() - t0) / 60,
                        "precision": "bf16" if use_bf16 else "f32"}, a.out)
    print(f"done in {(time.time() - t0) / 60:.1f} min, {tokens_seen} tokens", flush=True)


if __name__ == "__main__":
    main()
