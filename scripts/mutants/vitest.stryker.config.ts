// The vitest config Stryker runs (stryker.config.mjs): the project's
// vitest.config.ts, with the test files narrowed by STRYKER_TESTS (a comma
// list of paths or globs, e.g. "test/unit/tensor.test.ts,test/unit/bad-*.test.ts")
// for a quick run on part of lib/. Unset: every test, as `npm test` runs them.
import { defineConfig } from 'vitest/config';

import base from '../../vitest.config.js';

const only = process.env.STRYKER_TESTS?.split(',').map((s) => s.trim()).filter(Boolean);

export default defineConfig({
  ...base,
  test: {
    ...base.test,
    ...(only && only.length > 0 ? { include: only } : {}),
  },
});
