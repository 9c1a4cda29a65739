// Stryker (TypeScript mutation testing of lib/) with its vitest runner.
// `npm run mutants:ts` runs it all; a quick run on part of lib/:
//   STRYKER_TESTS=test/unit/tensor.test.ts npx stryker run --mutate lib/tensor.ts
// Reports: reports/mutation/mutation.html and .json (ignored by git).
// docs/mutation.md gives the scores measured and the goal (>= 80%).
/** @type {import('@stryker-mutator/api/core').PartialStrykerOptions} */
export default {
  testRunner: 'vitest',
  plugins: ['@stryker-mutator/vitest-runner'],
  vitest: {
    // The project's config (forks pool: native errors keep their realm), with
    // STRYKER_TESTS to narrow the test files.
    configFile: 'scripts/mutants/vitest.stryker.config.ts',
  },
  // Left out, and why:
  //  - lib/cli/**: the CLI is tested by spawning dist/lib/cli/main.js, which
  //    Stryker's in-process coverage cannot see (every mutant would be "no
  //    coverage"), and each spawn costs seconds;
  //  - lib/**/demo.ts: the `tokenpress tour` demos, printed output only;
  //  - lib/kv/eval/** except safetensors.ts: the KV evaluation harness (a
  //    benchmark tool with its own CLI tests); safetensors.ts parses
  //    untrusted files, so it stays;
  //  - lib/cuda.ts: GPU-only entry points (test/gpu skips without a device);
  //  - lib/native.ts: the addon's typed contract, types and a loader.
  mutate: [
    'lib/**/*.ts',
    '!lib/cli/**',
    '!lib/**/demo.ts',
    '!lib/kv/eval/**',
    'lib/kv/eval/safetensors.ts',
    '!lib/cuda.ts',
    '!lib/native.ts',
  ],
  coverageAnalysis: 'perTest',
  // Two test processes: the machines here have 2 to 16 cores shared with
  // the native thread pool, which every worker also starts.
  concurrency: 2,
  // Attention references and model training take seconds per test: allow a
  // mutant twice the measured time plus 30 s before calling it a timeout.
  timeoutMS: 30000,
  timeoutFactor: 2,
  reporters: ['clear-text', 'progress', 'html', 'json'],
  htmlReporter: { fileName: 'reports/mutation/mutation.html' },
  jsonReporter: { fileName: 'reports/mutation/mutation.json' },
  // Not needed in the sandbox copy (build/ is: the tests load the addon from it).
  ignorePatterns: ['bench-results', 'prebuilds', 'build-cuda', '.corpus', 'reports'],
  tempDirName: '.stryker-tmp',
  cleanTempDir: 'always',
  thresholds: { high: 90, low: 80, break: null },
};
