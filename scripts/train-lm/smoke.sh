#!/bin/sh
# CI smoke of the training recipe: a tiny model, a few steps on README.md,
# exported and checked through onnxruntime-node (both paths vs PyTorch).
# Seconds, not training. Needs python3-torch and python3-onnx (Debian).
set -eu
here=$(dirname "$0")
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$here/run.sh" train.py --config tiny --data README.md --out "$tmp/tiny.pt" --steps 4 --warmup 1 \
  --short-context 128 --tokens-per-step 1024 --long-fraction 0.25 --eval-every 4 --eval-bytes 4096 \
  --copy-every 64 --copy-random 0.5 --copy-digits 0.5 --copy-far 0.5 --repeat-prob 0.25 --probe-context 512 --needle-trials 2
"$here/run.sh" export.py --checkpoint "$tmp/tiny.pt" --out "$tmp/tiny" 2>&1 | grep -v -i warning
node "$here/check-export.mjs" "$tmp/tiny"
