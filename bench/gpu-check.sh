#!/usr/bin/env bash
# GPU check on a CUDA machine: tool versions, the CUDA addon (carried prebuilt
# build/Release/tokenpress.node, else built here with cmake-js), test/gpu
# against the CPU attention(), torch SDPA timings, our decode/prefill
# benchmarks vs the measured bandwidth and vs torch, the device KV cache's
# eviction and decode step (bench/gpu-kv.ts), Equal-Info decoding on the
# device vs the CPU (bench/gpu-equal-info.ts), Quest sparse decode on the
# device cache, dense vs sparse step (bench/gpu-sparse.ts; its correctness
# against the CPU cache is test/gpu/cuda-kv-quest.test.ts, in the test/gpu
# step), the vision kernels of issue 19 (bench/gpu-vision.ts; correctness:
# test/gpu/cuda-vision.test.ts), then the full test suite.
# Writes under $OUT (default bench-results/gpu): gpu-check.log, vitest.json,
# shapes.json, torch.json, gpu-bench.json, gpu-bench.md, gpu-kv.json, gpu-kv.md,
# gpu-equal-info.json, gpu-equal-info.md, gpu-sparse.json, gpu-sparse.md,
# gpu-vision.json, gpu-vision.md.
#
# Run from the package root: bash bench/gpu-check.sh
# Env: GPU_CHECK_FULL_SUITE=0 skips the last step (the whole suite, ~2 min),
# GPU_KV_REPS (default 2) sets the eviction benchmark's repetitions; both
# help the check fit a short device lease.
# Node: uses `node` if it is >= 20, else NODE_XZ (an xz-compressed node
# binary, default .gpu-node.xz) unpacked to /tmp/tp-node/node.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:-$PWD/bench-results/gpu}"
mkdir -p "$OUT"
exec > >(tee -a "$OUT/gpu-check.log") 2>&1
step() { printf '\n=== %s (t=%ss)\n' "$*" "$SECONDS"; }
status=0

step "tools"
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.max.sm --format=csv 2>&1 || true
command -v nvcc >/dev/null && nvcc --version | grep -i release || echo "nvcc: not on PATH"
[[ -x /usr/local/cuda/bin/nvcc ]] && /usr/local/cuda/bin/nvcc --version | grep -i release
python3 -c 'import torch; print("python torch", torch.__version__, "cuda", torch.version.cuda, torch.cuda.get_device_name(0))' 2>&1 || true
cmake --version 2>/dev/null | head -n1 || echo "cmake: none"
nproc

node_ok() { command -v node >/dev/null && node -e 'process.exit(+process.versions.node.split(".")[0] >= 20 ? 0 : 1)'; }
if ! node_ok; then
  NODE_XZ="${NODE_XZ:-.gpu-node.xz}"
  echo "node >= 20 not found ($(command -v node || echo none)); unpacking $NODE_XZ"
  mkdir -p /tmp/tp-node
  python3 -c 'import lzma,shutil,sys; shutil.copyfileobj(lzma.open(sys.argv[1]), open(sys.argv[2],"wb"))' "$NODE_XZ" /tmp/tp-node/node
  chmod +x /tmp/tp-node/node
  export PATH="/tmp/tp-node:$PATH"
fi
echo "node $(node --version)"

backend() { node -e "console.log(JSON.stringify(require('node-gyp-build')('.').backendInfo().cuda))"; }
has_device() { node -e "const c=require('node-gyp-build')('.').backendInfo().cuda; process.exit(c.compiled && c.deviceCount > 0 ? 0 : 1)"; }

step "CUDA addon"
if backend && has_device; then
  echo "carried addon works"
else
  echo "carried addon missing or without a device: building (cmake-js, sm_90 only)"
  export CMAKE_BUILD_PARALLEL_LEVEL=$(nproc)
  node node_modules/cmake-js/bin/cmake-js rebuild --CDTOKENPRESS_CUDA=ON --CDCMAKE_CUDA_ARCHITECTURES=90 || status=1
  backend || status=1
fi

step "test/gpu (vitest)"
node node_modules/vitest/vitest.mjs run test/gpu --reporter=verbose --reporter=json --outputFile="$OUT/vitest.json" || status=1

step "torch SDPA"
node dist/bench/gpu-attention.js --shapes > "$OUT/shapes.json" || status=1
PYTHONUNBUFFERED=1 python3 bench/torch_sdpa.py --shapes "$OUT/shapes.json" --out "$OUT/torch.json" || status=1

step "tokenpress CUDA benchmark"
node dist/bench/gpu-attention.js --torch "$OUT/torch.json" --json "$OUT/gpu-bench.json" --md "$OUT/gpu-bench.md" || status=1

step "KV cache on the GPU: eviction of a 32-layer cache at 32k, decode step"
node dist/bench/gpu-kv.js --reps "${GPU_KV_REPS:-2}" --json "$OUT/gpu-kv.json" --md "$OUT/gpu-kv.md" || status=1

step "Equal-Info decoding"
node dist/bench/gpu-equal-info.js --json "$OUT/gpu-equal-info.json" --md "$OUT/gpu-equal-info.md" || status=1

step "Quest sparse decode on the device cache (dense vs Quest step, summary upkeep)"
node dist/bench/gpu-sparse.js --json "$OUT/gpu-sparse.json" --md "$OUT/gpu-sparse.md" || status=1

step "vision kernels (cosine matrix, ToMe, DivPrune, k-means, top-k)"
node dist/bench/gpu-vision.js --json "$OUT/gpu-vision.json" --md "$OUT/gpu-vision.md" || status=1

if [[ "${GPU_CHECK_FULL_SUITE:-1}" != 0 ]]; then
  step "full test suite on the CUDA build (with a device)"
  node node_modules/vitest/vitest.mjs run --reporter=dot || status=1
fi

step "done (status $status)"
exit $status
