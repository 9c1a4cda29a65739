#!/usr/bin/env bash
# The sanitizer step of CI (docs/sanitizers.md):
#  1. ASan + UBSan: the addon built with -fsanitize=address,undefined
#     -fno-sanitize-recover=undefined (binding.gyp, tokenpress_sanitize=address)
#     into build/sanitizers/asan/build/Release, then vitest run on it: node
#     loads it through node-gyp-build's TOKENPRESS_PREBUILD override, with the
#     ASan runtime preloaded. The normal build in build/Release is never
#     touched, so there is nothing to restore.
#  2. TSan: scripts/ci-tsan.sh (a native driver; node itself is not
#     instrumented, see docs/sanitizers.md), then the same driver under
#     ASan+UBSan (SANITIZER=address).
# Any sanitizer report fails the step: reports go to files under
# build/sanitizers/logs (a test runner cannot swallow them), and the step
# fails when one exists, besides failing on a test failure.
#
# Usage: scripts/ci-sanitizers.sh [vitest files or filters...]
#   default: the native-heavy test files listed below (SAN_TESTS=all: every file).
set -euo pipefail

cd "$(dirname "$0")/.."
root=$PWD
step() { printf '\n=== sanitizers: %s (t=%ss)\n' "$*" "$SECONDS"; }

stage=build/sanitizers/asan
logs=build/sanitizers/logs
mkdir -p "$stage"
rm -rf "$logs"
mkdir -p "$logs"

# node-gyp builds in a staging directory holding links to binding.gyp and
# native/, so its build/ is separate from the normal one.
ln -sfn "$root/binding.gyp" "$stage/binding.gyp"
ln -sfn "$root/native" "$stage/native"

step "ASan+UBSan build (node-gyp, tokenpress_sanitize=address)"
t=$SECONDS
gyp="$root/node_modules/.bin/node-gyp"
# npm passes its config (nodedir: where the node headers are) to
# `npm run build:native`; node-gyp run directly must be told.
gyp_args=()
nodedir=$(npm config get nodedir 2>/dev/null || true)
if [[ -n $nodedir && $nodedir != undefined && $nodedir != null ]]; then gyp_args+=("--nodedir=$nodedir"); fi
if [[ -f $stage/build/Makefile && $stage/build/config.gypi -nt binding.gyp ]]; then
  # Incremental (a local rerun): make rebuilds what changed.
  "$gyp" -C "$stage" build --jobs max "${gyp_args[@]}"
else
  "$gyp" -C "$stage" rebuild --jobs max --tokenpress_sanitize=address "${gyp_args[@]}"
fi
addon="$stage/build/Release/tokenpress.node"
if ! grep -q ' U __asan_report_' <(nm -D "$addon"); then
  echo "sanitizers: $addon is not an ASan build" >&2
  exit 1
fi
echo "ASan build took $((SECONDS - t))s"

export TOKENPRESS_PREBUILD="$root/$stage"
export LD_PRELOAD
LD_PRELOAD="$(g++ -print-file-name=libasan.so)"
# detect_leaks=0: node itself does not free everything at exit. Reports go to
# files (log_path); halt_on_error: the first report ends the process.
# allow_user_segv_handler=0: V8 installs its own SIGSEGV handler (the wasm trap
# handler), which would make a wild read kill the process with no report; this
# keeps ASan's (no file tested here uses wasm).
export ASAN_OPTIONS="detect_leaks=0:halt_on_error=1:allow_user_segv_handler=0:log_path=$root/$logs/asan:${ASAN_OPTIONS:-}"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1:log_path=$root/$logs/ubsan:${UBSAN_OPTIONS:-}"

loaded=$(node -e "console.log(require('node-gyp-build').resolve('.'))")
if [[ $loaded != "$root/$addon" ]]; then
  echo "sanitizers: node-gyp-build resolves $loaded, not $root/$addon" >&2
  exit 1
fi

# The native-heavy files: every binding, kernel and decoder, the adversarial
# inputs (hardening/: getters, overlap, fake handles, worker teardown, thread
# and allocation failures; the regressions of issue 12), the thread pool, KV caches from worker_threads, coding round trips.
# Left out to fit the CI budget (they mostly exercise TypeScript or spend
# their time in float64 JS references): attention-reference, coding-bench-peers,
# coding-onnx-model, interop-*, kv-eval-*, retrieval-heads, train-model-cli,
# build-sources; and hardening/threads-alloc, whose `ulimit -v` leaves ASan no
# room for its shadow memory (it runs in the normal suite). SAN_TESTS=all runs everything (docs/sanitizers.md has times).
default_tests=(
  test/unit/attention.test.ts
  test/unit/attention-options.test.ts
  test/unit/bad-input.test.ts
  test/unit/coding-container.test.ts
  test/unit/coding-equal-info.test.ts
  test/unit/coding-equal-info-portable.test.ts
  test/unit/coding-model.test.ts
  test/unit/coding-static.test.ts
  test/unit/coding-zip.test.ts
  test/unit/kv-cache.test.ts
  test/unit/kv-cache-threads.test.ts
  test/unit/kv-scoring-kernels.test.ts
  test/unit/kv-stateless.test.ts
  test/unit/tensor.test.ts
  test/unit/thread-pool.test.ts
  test/unit/hardening/async-buffers.test.ts
  test/unit/hardening/handles.test.ts
  test/unit/hardening/on-progress.test.ts
  test/unit/hardening/overlap.test.ts
  test/unit/hardening/shared-memory.test.ts
  test/unit/regressions-kv.test.ts
  test/unit/regressions-coding.test.ts
  test/unit/regressions-parsers.test.ts
  test/unit/tokenizer-native.test.ts
  test/unit/tokenizer-omp.test.ts
  test/unit/tokenizer-dynamic.test.ts
  test/unit/vision-select.test.ts
  test/unit/vision-tome.test.ts
  test/unit/vision-tome-pool-transform.test.ts
  test/unit/vision-tome-keysizes.test.ts
  test/unit/vision-cluster-vqtoken.test.ts
  test/unit/vision-cluster-recoverable.test.ts
  test/unit/vision-cluster-corematching.test.ts
  test/unit/vision-cluster-tokencorr.test.ts
  test/unit/vision-device-model.test.ts
  test/unit/regressions-vision.test.ts
)
if (($#)); then
  tests=("$@")
elif [[ ${SAN_TESTS:-} == all ]]; then
  tests=()
else
  tests=("${default_tests[@]}")
fi

step "vitest under ASan+UBSan (${#tests[@]} files; none = all)"
t=$SECONDS
status=0
"$root/node_modules/.bin/vitest" run "${tests[@]}" || status=$?
echo "vitest under ASan took $((SECONDS - t))s (exit $status)"

unset LD_PRELOAD TOKENPRESS_PREBUILD
reports=$(find "$logs" -type f | sort)
if [[ -n $reports ]]; then
  echo "sanitizers: reports found:" >&2
  for f in $reports; do
    echo "--- $f" >&2
    cat "$f" >&2
  done
  exit 1
fi
if ((status)); then
  echo "sanitizers: tests failed under ASan+UBSan" >&2
  exit "$status"
fi

# About 2 minutes (a TSan compile of the core): CI_FULL=1 runs it (skipped
# by default since the tokenizer tools landed, to keep CI under 30 minutes).
if [[ ${CI_FULL:-} == 1 ]]; then
  step "TSan (scripts/ci-tsan.sh)"
  bash scripts/ci-tsan.sh
else
  step "TSan: skipped (CI_FULL=1 runs it)"
fi

# The same driver under ASan+UBSan: a worker writing past per-worker scratch
# (the pool grown by setThreads mid-call) is a heap overflow that TSan sees
# only when another thread touches the same bytes.
# About 3 minutes (a second full compile of the core): CI skips it to stay
# under 30 minutes since the tokenizer tools landed; CI_FULL=1 runs it.
if [[ ${CI_FULL:-} == 1 ]]; then
  step "concurrency driver under ASan+UBSan (SANITIZER=address scripts/ci-tsan.sh)"
  SANITIZER=address bash scripts/ci-tsan.sh
else
  step "concurrency driver under ASan+UBSan: skipped (CI_FULL=1 runs it)"
fi

step "done: no sanitizer report"
