#!/bin/sh
# The committed `main` model's whole recipe (models/lm/README.md), from the
# repository root after the corpus exists (scripts/train-lm/data.py):
#   scripts/train-lm/train-main.sh [WORKDIR]   (checkpoints and curves go to WORKDIR, default ./lm-train)
# About 140 minutes on 2 Zen 5 vCPUs with bf16 autocast. Each phase starts
# from the previous phase's weights with a fresh optimizer; the evaluations
# inside a run (held-out sample, copy and needle probes) do not touch the
# training random streams, so their flags do not change the weights.
set -e
here=$(dirname "$0")
w=${1:-lm-train}
mkdir -p "$w"
t() { out=$1; shift; "$here/run.sh" train.py --config main --out "$w/$out.pt" --log "$w/$out.jsonl" "$@"; }
long="--long-fraction 1 --tokens-per-step 8192 --copy-every 128 --copy-prob 0.8 --copy-random 0.5 --copy-digits 0.5 --eval-every 50 --eval-bytes 65536 --probe-context 4064 --needle-trials 10"

# 1. Language: 640 x 16 KiB, 512 bytes then 4096 for the last 80 steps, 30% of rows with a copied span.
t base
# 2. Induction at 512 bytes: rows of a repeated random string (25%, then 50%) form induction heads.
t a --init "$w/base.pt" --steps 300 --short-context 512 --long-fraction 0 --lr 1e-3 --min-lr 1e-4 --warmup 20 \
  --copy-prob 0.5 --copy-random 0.5 --repeat-prob 0.25 --repeat-max-period 128 --eval-every 25 --eval-bytes 65536
t b --init "$w/a.pt" --steps 600 --max-steps-this-run 500 --tokens-per-step 8192 --short-context 512 --long-fraction 0 \
  --lr 2e-3 --min-lr 5e-4 --warmup 20 --copy-prob 0.5 --copy-random 0.5 --repeat-prob 0.5 --eval-every 50 --eval-bytes 65536 --seed 7
# 3. Back to 4096 bytes briefly (the 512-byte phases had undone the long context).
t c --init "$w/b.pt" --steps 160 --max-steps-this-run 40 --long-fraction 1 --lr 1e-3 --min-lr 1e-4 --warmup 10 \
  --copy-every 512 --copy-prob 0.5 --copy-random 0.5 --repeat-prob 0.1 --eval-every 20 --eval-bytes 65536 --probe-context 4096 --seed 11
# 4. Copying inside text at 512 bytes: a copied span every 128 bytes (80%), half random, half of those digits.
t d --init "$w/c.pt" --steps 400 --tokens-per-step 8192 --short-context 512 --long-fraction 0 --lr 1.5e-3 --min-lr 3e-4 --warmup 10 \
  --copy-every 128 --copy-prob 0.8 --copy-random 0.5 --copy-digits 0.5 --repeat-prob 0.2 --eval-every 50 --eval-bytes 65536 \
  --probe-context 512 --needle-trials 20 --seed 21
# 5. The same at 4096 bytes, then with half the spans copied across most of the row (as far as the needle test's).
t e --init "$w/d.pt" $long --steps 250 --max-steps-this-run 200 --lr 1e-3 --min-lr 1e-4 --warmup 10 --repeat-prob 0.1 --seed 31
t f --init "$w/e.pt" $long --steps 200 --lr 1e-3 --min-lr 2e-4 --warmup 10 --repeat-prob 0.05 --seed 41
t g --init "$w/f.pt" $long --steps 350 --lr 1e-3 --min-lr 1e-4 --warmup 10 --repeat-prob 0.05 --copy-far 0.5 --seed 51
t h --init "$w/g.pt" $long --steps 150 --lr 5e-4 --min-lr 5e-5 --warmup 5 --repeat-prob 0.05 --copy-far 0.7 --needle-trials 20 --seed 61
t i --init "$w/h.pt" $long --steps 120 --lr 3e-4 --min-lr 3e-5 --warmup 5 --repeat-prob 0.05 --copy-far 0.5 --eval-every 60 --needle-trials 20 --seed 71
"$here/run.sh" export.py --checkpoint "$w/i.pt" --out models/lm/main
node "$here/check-export.mjs" main
