#!/usr/bin/env bash
# ThreadSanitizer run of the native core's concurrency (docs/sanitizers.md).
#
# Builds test/native/concurrency_driver.cpp with every non-binding source of
# binding.gyp (the list is read from binding.gyp, so it cannot drift) using
# -fsanitize=thread, then runs it: several caller threads share the thread
# pool, KV caches, attention and Equal-Info batches while another thread
# resizes the pool and switches the ISA, as the async bindings and
# setThreads/setIsa do. Fails on any TSan report (halt_on_error, exit code 66)
# and on any wrong result (exit code 1).
#
# Objects go to build/sanitizers/driver-<sanitizer> (ignored by git; reused when the
# sources are unchanged). Usage: scripts/ci-tsan.sh [rounds]
set -euo pipefail

cd "$(dirname "$0")/.."
rounds="${1:-20}"
# SANITIZER=address builds and runs the same driver under ASan+UBSan instead:
# an out-of-bounds write by a worker is a heap overflow, which TSan alone
# reports only when another thread happens to touch the same bytes.
sanitizer="${SANITIZER:-thread}"
out=build/sanitizers/driver-$sanitizer
mkdir -p "$out"
jobs="$(nproc)"
start=$SECONDS

cxx="${CXX:-g++}"
flags=(-std=c++17 -O1 -g -fno-omit-frame-pointer -fexceptions -pthread -Wall -Wextra -Wno-unused-parameter)
case $sanitizer in
  thread) flags+=(-fsanitize=thread) ;;
  address) flags+=(-fsanitize=address,undefined -fno-sanitize-recover=undefined) ;;
  *) echo "SANITIZER: expected thread or address, received $sanitizer" >&2; exit 2 ;;
esac

# Every C++ source of the addon except the Node-API bindings (they need napi.h)
# and the tokenizer tools' unity files (native/text/: the driver calls none of
# them, and compiling them under TSan cost CI time for nothing; their tests run
# under ASan+UBSan in ci-sanitizers.sh).
mapfile -t sources < <(node -e '
  const fs = require("fs");
  const gyp = JSON.parse(fs.readFileSync("binding.gyp", "utf8"));
  const t = gyp.targets.find((x) => x.target_name === "tokenpress");
  const textOnly = (s) => s.startsWith("native/unity/") && /#include "\.\.\/text\//.test(fs.readFileSync(s, "utf8"));
  for (const s of t.sources) if (!s.endsWith("/bindings.cpp") && !textOnly(s)) console.log(s);
')
sources+=(test/native/concurrency_driver.cpp)

# Compile (in parallel, make-like: only what changed since the last object).
objects=()
todo=()
for src in "${sources[@]}"; do
  obj="$out/$(echo "$src" | tr '/' '_').o"
  objects+=("$obj")
  # Rebuild when the object is missing or older than any native header/source.
  if [[ ! -f $obj ]] || [[ -n $(find native "$src" -newer "$obj" -name '*.[ch]*' -print -quit) ]]; then
    todo+=("$src")
  fi
done
echo "$sanitizer: compiling ${#todo[@]} of ${#sources[@]} translation units with $jobs jobs"
if ((${#todo[@]})); then
  printf '%s\n' "${todo[@]}" | xargs -P "$jobs" -I{} sh -c '
    src="$1"; shift
    obj="'"$out"'/$(echo "$src" | tr / _).o"
    exec "$@" -c "$src" -o "$obj"
  ' _ {} "$cxx" "${flags[@]}"
fi
"$cxx" "${flags[@]}" "${objects[@]}" -o "$out/concurrency_driver"
echo "$sanitizer: built in $((SECONDS - start))s"

run_start=$SECONDS
# halt_on_error: the first report ends the run with exitcode 66.
TSAN_OPTIONS="halt_on_error=1 exitcode=66 second_deadlock_stack=1 ${TSAN_OPTIONS:-}" \
  ASAN_OPTIONS="halt_on_error=1 exitcode=66 ${ASAN_OPTIONS:-}" \
  UBSAN_OPTIONS="halt_on_error=1 print_stacktrace=1 ${UBSAN_OPTIONS:-}" \
  "$out/concurrency_driver" "$rounds"
echo "$sanitizer: driver ran clean in $((SECONDS - run_start))s (total $((SECONDS - start))s)"
