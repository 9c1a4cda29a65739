// The public signatures accept onnxruntime-node and transformers.js Tensors
// without casts: tsc (strict) compiles test/fixtures/interop-types.ts, whose
// ts-expect-error lines also prove the types still reject non-tensors.
import { execFileSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { expect, test } from 'vitest';

const root = fileURLToPath(new URL('../..', import.meta.url));
const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');

test('ecosystem tensors type-check in every tensor argument; non-tensors do not', () => {
  let output = '';
  try {
    execFileSync(process.execPath, [
      tsc, '--noEmit', '--strict', '--noUncheckedIndexedAccess', '--target', 'ES2022', '--module', 'NodeNext',
      '--moduleResolution', 'NodeNext', '--skipLibCheck', '--types', 'node', 'test/fixtures/interop-types.ts',
    ], { cwd: root, encoding: 'utf8', stdio: 'pipe' });
  } catch (e) {
    output = String((e as { stdout?: string }).stdout ?? e);
  }
  expect(output).toBe('');
});
