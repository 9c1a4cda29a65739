import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    pool: 'forks',
    testTimeout: 120_000,
    hookTimeout: 120_000,
    // A test that makes no assertion fails: a loop that skips every case
    // (an ISA list, a set of vectors) cannot pass silently (docs/testing.md).
    expect: { requireAssertions: true },
  },
});
