#!/usr/bin/env bash
# Stryker on lib/ in groups, each with the test files that target it
# (STRYKER_TESTS), so one group fits in about 10 minutes on a small machine.
# The full `npm run mutants:ts` runs every test for every group at once.
#
# Usage: scripts/mutants/stryker-groups.sh [group ...]   (default: all)
# Groups: core kvpolicy files attention cache zipinterop coding stateless prompt
# Per group: reports/mutation/<group>.json and .log (ignored by git); the
# score table is the end of the log. docs/mutation.md gives the figures.
set -euo pipefail
cd "$(dirname "$0")/../.."

U=test/unit
declare -A MUTATE TESTS
MUTATE[core]=lib/tensor.ts,lib/validate.ts,lib/errors.ts
TESTS[core]=$U/tensor.test.ts,$U/bad-input.test.ts,$U/interop-errors.test.ts,$U/interop-types.test.ts,$U/mutant-gaps-validate.test.ts
MUTATE[kvpolicy]=lib/kv/policies.ts,lib/kv/compression.ts
TESTS[kvpolicy]=$U/kv-stateless.test.ts,$U/kv-cache.test.ts,$U/regressions-kv.test.ts,$U/mutant-gaps-kv-options.test.ts
MUTATE[files]=lib/coding/container.ts,lib/kv/eval/safetensors.ts
TESTS[files]=$U/coding-container.test.ts,$U/kv-eval-traces.test.ts,$U/regressions-coding.test.ts,$U/mutant-gaps-safetensors.test.ts,$U/mutant-gaps-container.test.ts
MUTATE[attention]=lib/attention.ts
TESTS[attention]=$U/attention.test.ts,$U/attention-options.test.ts,$U/bad-input.test.ts,$U/mutant-gaps-attention.test.ts
MUTATE[cache]=lib/kv/cache.ts
TESTS[cache]=$U/kv-cache.test.ts,$U/kv-cache-attend-options.test.ts,$U/regressions-kv.test.ts,$U/exports.test.ts,$U/mutant-gaps-kvcache.test.ts
MUTATE[zipinterop]=lib/coding/zip.ts,lib/interop/ort.ts
TESTS[zipinterop]=$U/mutant-gaps-zip.test.ts,$U/mutant-gaps-ort.test.ts,$U/coding-zip.test.ts,$U/regressions-coding.test.ts,$U/interop-ort-loop.test.ts,$U/interop-output.test.ts,$U/exports.test.ts
MUTATE[coding]=lib/coding/equal-info.ts,lib/coding/model.ts,lib/coding/static.ts,lib/coding/raw.ts,lib/coding/adaptive.ts,lib/coding/tokenizer.ts,lib/coding/byte-tokenizer.ts
TESTS[coding]=$U/coding-equal-info.test.ts,$U/coding-model.test.ts,$U/coding-static.test.ts,$U/coding-adaptive.test.ts,$U/regressions-coding.test.ts,$U/regressions-parsers.test.ts,$U/golden.test.ts,$U/exports.test.ts
MUTATE[stateless]=lib/kv/stateless.ts,lib/kv/retrieval-heads.ts,lib/backend.ts
TESTS[stateless]=$U/kv-stateless.test.ts,$U/retrieval-heads.test.ts,$U/thread-pool.test.ts,$U/exports.test.ts,$U/mutant-gaps-kv.test.ts
MUTATE[prompt]=lib/prompt/select.ts,lib/prompt/percentile.ts,lib/prompt/words.ts,lib/prompt/chunk.ts,lib/prompt/pool.ts
TESTS[prompt]=$U/prompt-llmlingua2.test.ts,$U/prompt-specpc.test.ts,$U/mutant-gaps-prompt.test.ts

groups=("$@")
[ ${#groups[@]} -eq 0 ] && groups=(core kvpolicy files attention cache zipinterop coding stateless prompt)
mkdir -p reports/mutation
for g in "${groups[@]}"; do
  [ -n "${MUTATE[$g]:-}" ] || { echo "unknown group $g (expected: ${!MUTATE[*]})" >&2; exit 2; }
  echo "== $g: --mutate ${MUTATE[$g]}  STRYKER_TESTS=${TESTS[$g]}"
  start=$(date +%s)
  STRYKER_TESTS=${TESTS[$g]} npx stryker run --mutate "${MUTATE[$g]}" --concurrency 2 > "reports/mutation/$g.log" 2>&1 || true
  cp reports/mutation/mutation.json "reports/mutation/$g.json" 2>/dev/null || true
  echo "$g: $(( $(date +%s) - start )) s"
  grep -E '^(All files|[ ]*[a-z/]+\.ts) *\|' "reports/mutation/$g.log" | tail -n +1 || tail -5 "reports/mutation/$g.log"
done
