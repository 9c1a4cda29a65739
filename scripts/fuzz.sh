#!/usr/bin/env bash
# Builds and runs the fuzz harnesses (docs/fuzzing.md).
#
#   scripts/fuzz.sh list                      the targets
#   scripts/fuzz.sh build [TARGET...]         build native harnesses (default: all)
#   scripts/fuzz.sh run TARGET SECONDS [ARGS] fuzz TARGET for SECONDS; ARGS go to libFuzzer
#   scripts/fuzz.sh replay TARGET FILE...     run TARGET once on each FILE (a reproducer)
#   scripts/fuzz.sh merge TARGET              minimize the work corpus into test/fuzz/corpus/TARGET
#   scripts/fuzz.sh seeds                     rewrite the native seed-* files (test/fuzz/make_seeds.cpp)
#   scripts/fuzz.sh summary LOG...            one markdown table row per run log (docs/fuzzing.md)
#
# Native targets (test/fuzz/fuzz_*.cpp) link native/core and native/coding
# directly (no Node), built with clang -fsanitize=fuzzer,address,undefined
# into build-fuzz/ ($FUZZ_OUT). JS targets (test/fuzz/js/fuzz.mjs) run a seeded
# mutation fuzzer over the compiled TypeScript in dist/ (npm run build:ts;
# the zip target also needs the addon, npm run build:native).
#
# Runs start from the seed corpus test/fuzz/corpus/TARGET and add what they
# find to a work corpus, $FUZZ_WORK/TARGET (default build-fuzz/work/TARGET);
# crashes go to $FUZZ_WORK/artifacts/. The repository's corpus changes only
# through `merge`. Environment: CLANG (default: clang++-19 .. clang++-14 or
# clang++, the first found), FUZZ_WORK, FUZZ_JOBS (parallel compiles).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# Not under build/: node-gyp rebuild deletes build/.
OUT=${FUZZ_OUT:-$ROOT/build-fuzz}
WORK=${FUZZ_WORK:-$OUT/work}
NATIVE_TARGETS=(tpm static raw equal_info cm)
JS_TARGETS=(container safetensors zip)

find_clang() {
  if [[ -n "${CLANG:-}" ]]; then echo "$CLANG"; return; fi
  local v
  for v in 19 18 17 16 15 14; do
    if command -v "clang++-$v" >/dev/null; then echo "clang++-$v"; return; fi
  done
  if command -v clang++ >/dev/null; then echo clang++; return; fi
  echo "fuzz.sh: no clang++ found (scripts/ci-fuzz.sh installs clang-14 and libfuzzer-14-dev)" >&2
  exit 1
}

is_native() { local t; for t in "${NATIVE_TARGETS[@]}"; do [[ "$t" == "$1" ]] && return 0; done; return 1; }
is_js() { local t; for t in "${JS_TARGETS[@]}"; do [[ "$t" == "$1" ]] && return 0; done; return 1; }

FLAGS=(-std=c++17 -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined
       -DTP_FUZZ_MODEL_PATH="\"$ROOT/models/default.tpm\"")
LIB_SOURCES=(native/unity/coding.cpp native/core/cpu_features.cpp native/core/thread_pool.cpp
             native/core/buffer.cpp native/core/byte_buffer.cpp native/core/machine_limits.cpp)

# The native sources, compiled once into one archive (rebuilt when any
# native/core or native/coding file is newer).
build_lib() {
  local cxx=$1 lib="$OUT/libtp_coding.a"
  mkdir -p "$OUT/obj"
  if [[ -f "$lib" ]] && [[ -z $(find "$ROOT/native/core" "$ROOT/native/coding" "$ROOT/native/unity/coding.cpp" "$ROOT/test/fuzz/coverage-ignore.txt" -newer "$lib" -print -quit) ]]; then
    return
  fi
  echo "fuzz.sh: compiling native/coding with $cxx" >&2
  local src objs=() pids=()
  for src in "${LIB_SOURCES[@]}"; do
    local obj="$OUT/obj/$(echo "$src" | tr / _).o"
    objs+=("$obj")
    (cd "$ROOT" && "$cxx" "${FLAGS[@]}" -fsanitize=fuzzer-no-link \
      -fsanitize-coverage-ignorelist="$ROOT/test/fuzz/coverage-ignore.txt" -c "$src" -o "$obj") &
    pids+=($!)
    if (( ${#pids[@]} >= ${FUZZ_JOBS:-2} )); then wait "${pids[0]}"; pids=("${pids[@]:1}"); fi
  done
  local p; for p in "${pids[@]}"; do wait "$p"; done
  rm -f "$lib"
  ar rcs "$lib" "${objs[@]}"
}

build_target() {
  local cxx=$1 t=$2 bin="$OUT/fuzz_$2" src="$ROOT/test/fuzz/fuzz_$2.cpp"
  if [[ -f "$bin" && ! "$src" -nt "$bin" && ! "$OUT/libtp_coding.a" -nt "$bin" && ! "$ROOT/test/fuzz/fuzz_common.h" -nt "$bin" ]]; then
    return
  fi
  echo "fuzz.sh: building fuzz_$t" >&2
  "$cxx" "${FLAGS[@]}" -fsanitize=fuzzer "$src" "$OUT/libtp_coding.a" -lpthread -o "$bin"
}

build() {
  local cxx; cxx=$(find_clang)
  local targets=("$@")
  (( ${#targets[@]} )) || targets=("${NATIVE_TARGETS[@]}")
  build_lib "$cxx"
  local t; for t in "${targets[@]}"; do
    is_native "$t" || { echo "fuzz.sh: $t is not a native target (${NATIVE_TARGETS[*]})" >&2; exit 2; }
    build_target "$cxx" "$t"
  done
}

run() {
  local t=$1 secs=$2; shift 2
  local corpus="$WORK/$t" seeds="$ROOT/test/fuzz/corpus/$t"
  mkdir -p "$corpus" "$WORK/artifacts"
  if is_native "$t"; then
    build "$t"
    # malloc_limit: a hostile length must be refused, not allocated.
    # The default model takes a few seconds to load under ASan: a long
    # per-input timeout covers the first input.
    "$OUT/fuzz_$t" -max_total_time="$secs" -malloc_limit_mb=1024 -rss_limit_mb=3072 -timeout=60 \
      -print_final_stats=1 -artifact_prefix="$WORK/artifacts/$t-" "$@" "$corpus" "$seeds"
  elif is_js "$t"; then
    node "$ROOT/test/fuzz/js/fuzz.mjs" "$t" "$secs" "$corpus" "$seeds" "$WORK/artifacts" "$@"
  else
    echo "fuzz.sh: unknown target $t (native: ${NATIVE_TARGETS[*]}; js: ${JS_TARGETS[*]})" >&2
    exit 2
  fi
}

replay() {
  local t=$1; shift
  if is_native "$t"; then build "$t"; "$OUT/fuzz_$t" -malloc_limit_mb=1024 "$@"
  else node "$ROOT/test/fuzz/js/fuzz.mjs" "$t" replay "$@"; fi
}

merge() {
  local t=$1
  is_native "$t" || { echo "fuzz.sh: merge is for native targets; JS corpora are kept by hand" >&2; exit 2; }
  build "$t"
  local tmp; tmp=$(mktemp -d)
  "$OUT/fuzz_$t" -merge=1 -malloc_limit_mb=1024 "$tmp" "$ROOT/test/fuzz/corpus/$t" "$WORK/$t"
  rm -rf "$ROOT/test/fuzz/corpus/$t"
  mv "$tmp" "$ROOT/test/fuzz/corpus/$t"
}

seeds() {
  local cxx; cxx=$(find_clang)
  build_lib "$cxx"
  "$cxx" "${FLAGS[@]}" -fsanitize=fuzzer "$ROOT/test/fuzz/make_seeds.cpp" "$OUT/libtp_coding.a" -lpthread -o "$OUT/make_seeds"
  mkdir -p "$ROOT/test/fuzz/corpus"
  TP_SEED_DIR="$ROOT/test/fuzz/corpus" "$OUT/make_seeds"
}

# | target | seconds | executions | exec/s | cov / ft (native) or signatures (JS) | corpus | findings |
summary() {
  set +e +o pipefail  # a field missing from a log leaves its cell empty
  local log
  for log in "$@"; do
    local t; t=$(basename "$log" .log)
    local done_line; done_line=$(grep -E 'DONE' "$log" | tail -1)
    local execs; execs=$(grep -oE 'stat::number_of_executed_units: [0-9]+' "$log" | tail -1 | grep -oE '[0-9]+$')
    local rate; rate=$(echo "$done_line" | grep -oE 'exec/s: [0-9]+' | grep -oE '[0-9]+')
    local cov; cov=$(echo "$done_line" | grep -oE 'cov: [0-9]+ ft: [0-9]+' | sed 's/cov: //; s/ ft: / \/ /')
    [[ -n "$cov" ]] || cov="$(echo "$done_line" | grep -oE 'signatures: [0-9]+' | grep -oE '[0-9]+') signatures"
    local corp; corp=$(echo "$done_line" | grep -oE 'corp: [0-9]+(/[0-9]+[a-zA-Z]*)?' | sed 's/corp: //')
    local secs; secs=$(grep -oE 'Done [0-9]+ runs in [0-9]+ second' "$log" | grep -oE 'in [0-9]+' | grep -oE '[0-9]+')
    [[ -n "$secs" && -n "$rate" && "$rate" != 0 ]] || secs=$(( ${execs:-0} / (${rate:-1} > 0 ? ${rate:-1} : 1) ))
    local found; found=$(grep -cE '^==[0-9]+==ERROR|FUZZ PROPERTY FAILED|^FINDING|Test unit written' "$log" || true)
    echo "| $t | ${secs:-?} | ${execs:-?} | ${rate:-?} | $cov | $corp | $found |"
  done
}

cmd=${1:-}
shift || true
case "$cmd" in
  list) echo "native: ${NATIVE_TARGETS[*]}"; echo "js: ${JS_TARGETS[*]}" ;;
  build) build "$@" ;;
  run) [[ $# -ge 2 ]] || { echo "usage: fuzz.sh run TARGET SECONDS [ARGS]" >&2; exit 2; }; run "$@" ;;
  replay) [[ $# -ge 2 ]] || { echo "usage: fuzz.sh replay TARGET FILE..." >&2; exit 2; }; replay "$@" ;;
  seeds) seeds ;;
  summary) summary "$@" ;;
  merge) [[ $# -eq 1 ]] || { echo "usage: fuzz.sh merge TARGET" >&2; exit 2; }; merge "$1" ;;
  *) sed -n 2,20p "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
esac
