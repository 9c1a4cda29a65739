#!/usr/bin/env bash
# CI's short fuzz run (docs/fuzzing.md): installs clang and libFuzzer when
# missing (Debian: clang-14 + libfuzzer-14-dev), builds every native
# harness, then fuzzes each target for FUZZ_SECONDS (default 10) from the
# seed corpus in test/fuzz/corpus/. Any crash, leak, UB, allocation over the
# limit or property violation fails the run; its reproducer is kept under
# $FUZZ_WORK/artifacts/ and printed. About 3-5 minutes on 2 cores with the
# install.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
SECS=${FUZZ_SECONDS:-10}
export FUZZ_WORK=${FUZZ_WORK:-$(mktemp -d "${TMPDIR:-/tmp}/tokenpress-fuzz.XXXXXX")}

as_root() { if [[ $(id -u) -eq 0 ]]; then "$@"; else sudo "$@"; fi; }

# A clang that links a libFuzzer target, or install one.
can_fuzz() {
  local cxx=$1 dir; dir=$(mktemp -d)
  echo 'extern "C" int LLVMFuzzerTestOneInput(const unsigned char*, unsigned long) { return 0; }' > "$dir/t.cpp"
  local rc=0
  "$cxx" -fsanitize=fuzzer,address,undefined "$dir/t.cpp" -o "$dir/t" >/dev/null 2>&1 || rc=1
  rm -rf "$dir"
  return $rc
}
find_fuzz_clang() {
  local c
  for c in ${CLANG:-} clang++-19 clang++-18 clang++-17 clang++-16 clang++-15 clang++-14 clang++; do
    if command -v "$c" >/dev/null && can_fuzz "$c"; then echo "$c"; return 0; fi
  done
  return 1
}
if ! CLANG=$(find_fuzz_clang); then
  echo "ci-fuzz: installing clang-14 and libfuzzer-14-dev" >&2
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq clang-14 libfuzzer-14-dev >/dev/null
  CLANG=$(find_fuzz_clang) || { echo "ci-fuzz: clang-14 installed but cannot link a libFuzzer target" >&2; exit 1; }
fi
export CLANG
echo "ci-fuzz: $($CLANG --version | head -1)"

# The JS targets run the compiled library and the addon.
[[ -f dist/lib/index.js ]] || npm run build:ts
[[ -f build/Release/tokenpress.node ]] || npm run build:native

FUZZ_JOBS=${FUZZ_JOBS:-2} scripts/fuzz.sh build
passed=0 failed=0 failures=()
for t in tpm static raw equal_info cm container safetensors zip; do
  log="$FUZZ_WORK/$t.log"
  if scripts/fuzz.sh run "$t" "$SECS" >"$log" 2>&1; then
    passed=$((passed + 1))
    echo "ci-fuzz: $t ok: $(grep -E '(DONE|stat::number_of_executed_units)' "$log" | tail -2 | tr '\n' ' ')"
  else
    failed=$((failed + 1))
    failures+=("$t")
    echo "ci-fuzz: $t FAILED (log $log):"
    grep -E 'ERROR|FINDING|FAILED|SUMMARY|Test unit written|artifact' "$log" | head -20 || tail -30 "$log"
  fi
done
echo "ci-fuzz: artifacts and work corpora in $FUZZ_WORK"
echo "fuzz: $passed passed, $failed failed"
[[ $failed -eq 0 ]]
