#!/usr/bin/env bash
# Packs what bench/gpu-check.sh needs on a bare GPU machine that has no node
# and no registry: the working tree (tracked and untracked files), dist/, the
# CUDA addon build/Release/tokenpress.node, node_modules without
# onnxruntime-node and typescript (wt.tar.xz, ~14 MB), and this machine's node
# binary (node.xz, ~24 MB). Run after `npm run build:cuda` and `npm run
# build:ts`:
#   bash bench/gpu-pack.sh DEST
# then on the GPU machine, with DEST carried:
#   mkdir -p /tmp/wt && python3 -c "import tarfile; tarfile.open('DEST/wt.tar.xz').extractall('/tmp/wt')" \
#     && cp DEST/node.xz /tmp/wt/.gpu-node.xz && cd /tmp/wt && bash bench/gpu-check.sh
set -euo pipefail
cd "$(dirname "$0")/.."
dest="${1:?usage: bench/gpu-pack.sh DEST}"
mkdir -p "$dest"
[[ -f build/Release/tokenpress.node ]] || { echo "build/Release/tokenpress.node missing: npm run build:cuda" >&2; exit 1; }
[[ -d dist ]] || { echo "dist/ missing: npm run build:ts" >&2; exit 1; }
list=$(mktemp)
{
  git ls-files -co --exclude-standard
  echo dist
  echo build/Release/tokenpress.node
  ls -d node_modules/* node_modules/.bin | grep -v -E '^node_modules/(onnxruntime-node|typescript|@types)$'
} > "$list"
tar -cf - -T "$list" | xz -T2 -6 > "$dest/wt.tar.xz"
rm -f "$list"
xz -T2 -6 -c "$(command -v node)" > "$dest/node.xz"
ls -la "$dest"
