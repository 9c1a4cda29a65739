// The built CLI (dist/lib/cli/main.js, `npm run build:ts`; `npm test` builds
// it first) as a user runs it, in a child process: `zip` writes exactly the
// golden .tpz bytes the API writes, `unzip` gives the input back, bad flags
// and wrong models fail with exit code 1 and a message naming the cause, and
// `info` reports the TOKENPRESS_ISA / TOKENPRESS_THREADS environment
// variables (read once, at load, by native/core/cpu_features.cpp and
// thread_pool.cpp), which only a fresh process can show.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, test } from 'vitest';
import { backendInfo } from '../../lib/index.js';
import { GOLDEN_DIR } from '../golden/produce.mjs';
import { isasOnThisCpu } from './isa.js';

const root = fileURLToPath(new URL('../..', import.meta.url));
const main = join(root, 'dist/lib/cli/main.js');
const dir = mkdtempSync(join(tmpdir(), 'tokenpress-cli-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const golden = (f: string) => join(GOLDEN_DIR, f);
const model = golden('vectors/model-o3.tpm');
const prose = golden('inputs/prose.txt');

function run(args: string[], env: Record<string, string> = {}) {
  if (!existsSync(main)) throw new Error(`${main} is missing: run npm run build:ts`);
  const childEnv = { ...process.env, ...env };
  for (const k of ['TOKENPRESS_ISA', 'TOKENPRESS_THREADS']) if (!(k in env)) delete childEnv[k];
  const r = spawnSync(process.execPath, [main, ...args], { env: childEnv, encoding: 'utf8', timeout: 120_000 });
  return { status: r.status, out: r.stdout, err: r.stderr };
}

describe('tokenpress zip / unzip', () => {
  const cases = [
    { golden: 'zip-adaptive-prose.tpz', args: ['--mode', 'adaptive'] },
    { golden: 'zip-static-prose.tpz', args: ['--mode', 'static', '--model', model] },
    { golden: 'zip-equal-info-w20-t8.tpz', args: ['--mode', 'equal-info', '--model', model, '--window-bits', '20', '--token-bits', '8'] },
  ];
  for (const c of cases) {
    test(`zip ${c.args.filter((a) => a !== model).join(' ')} writes the golden ${c.golden}; unzip gives the input back`, () => {
      const out = join(dir, c.golden);
      const z = run(['zip', prose, out, '--json', ...c.args]);
      expect(z.err).toBe('');
      expect(z.status).toBe(0);
      const summary = JSON.parse(z.out) as { inputBytes: number; outputBytes: number };
      expect(summary.inputBytes).toBe(readFileSync(prose).length);
      expect(summary.outputBytes).toBe(readFileSync(out).length);
      expect(readFileSync(out).equals(readFileSync(golden(`vectors/${c.golden}`)))).toBe(true);
      const back = join(dir, `${c.golden}.out`);
      const u = run(['unzip', out, back, ...(c.args.includes(model) ? ['--model', model] : [])]);
      expect(u.status).toBe(0);
      expect(u.out).toMatch(/-> .*: \d+ -> \d+ bytes/);
      expect(readFileSync(back).equals(readFileSync(prose))).toBe(true);
    });
  }

  test('bad flags and a wrong model: exit code 1, a message that names the cause, no output file', () => {
    const out = join(dir, 'bad.tpz');
    const w = run(['zip', prose, out, '--mode', 'equal-info', '--window-bits', '15']);
    expect(w.status).toBe(1);
    expect(w.err).toMatch(/--window-bits: expected an integer in \[16, 2048\], received "15"/);
    expect(existsSync(out)).toBe(false);
    const t = run(['zip', prose, out, '--token-bits', '12']);
    expect(t.status).toBe(1);
    expect(t.err).toMatch(/--token-bits: expected 8 or 16, received "12"/);
    const m = run(['zip', prose, out, '--mode', 'lz77']);
    expect(m.status).toBe(1);
    expect(m.err).toMatch(/lz77/);
    // A static file unzipped with the embedded model instead of its own.
    const u = run(['unzip', golden('vectors/zip-static-prose.tpz'), join(dir, 'never')]);
    expect(u.status).toBe(1);
    expect(u.err).toMatch(/tokenpress: .*made with model [0-9a-f]{16}, but the model given is [0-9a-f]{16}/);
    expect(existsSync(join(dir, 'never'))).toBe(false);
    const missing = run(['unzip', join(dir, 'no-such-file.tpz'), join(dir, 'never')]);
    expect(missing.status).toBe(1);
    expect(missing.err).toMatch(/no-such-file\.tpz/);
  });
});

describe('tokenpress info and the environment variables', () => {
  test('info --json reports what backendInfo() reports', () => {
    const r = run(['info', '--json']);
    expect(r.status).toBe(0);
    const info = JSON.parse(r.out) as { version: string; isa: string; detectedIsa: string; threads: number };
    const here = backendInfo();
    expect(info.version).toBe(here.version);
    expect(info.detectedIsa).toBe(here.detectedIsa);
    expect(info.isa).toBe(here.detectedIsa);
    const text = run(['info']);
    expect(text.out).toContain(`ISA        ${here.detectedIsa} (detected ${here.detectedIsa})`);
  });

  test('TOKENPRESS_ISA picks any level up to the detected one; unknown or higher values are ignored', () => {
    const detected = backendInfo().detectedIsa;
    for (const isa of isasOnThisCpu()) {
      const info = JSON.parse(run(['info', '--json'], { TOKENPRESS_ISA: isa }).out) as { isa: string; detectedIsa: string };
      expect(info.isa, isa).toBe(isa);
      expect(info.detectedIsa).toBe(detected);
    }
    expect((JSON.parse(run(['info', '--json'], { TOKENPRESS_ISA: 'sse9' }).out) as { isa: string }).isa).toBe(detected);
    if (detected !== 'avx512') {
      expect((JSON.parse(run(['info', '--json'], { TOKENPRESS_ISA: 'avx512' }).out) as { isa: string }).isa).toBe(detected);
    }
  });

  test('TOKENPRESS_THREADS sizes the pool (1..1024); other values leave the machine default', () => {
    const dflt = (JSON.parse(run(['info', '--json']).out) as { threads: number }).threads;
    for (const n of [1, 3, 7]) {
      expect((JSON.parse(run(['info', '--json'], { TOKENPRESS_THREADS: String(n) }).out) as { threads: number }).threads).toBe(n);
    }
    for (const bad of ['0', '-2', '1025', 'many']) {
      expect((JSON.parse(run(['info', '--json'], { TOKENPRESS_THREADS: bad }).out) as { threads: number }).threads, bad).toBe(dflt);
    }
  });

  test('under every TOKENPRESS_ISA level the CLI codes the golden static .tpz bytes', () => {
    // A static .tpz (range coder + byte model, both ISA-dispatched) made under each level.
    for (const isa of isasOnThisCpu()) {
      const out = join(dir, `isa-${isa}.tpz`);
      const z = run(['zip', prose, out, '--mode', 'static', '--model', model], { TOKENPRESS_ISA: isa, TOKENPRESS_THREADS: '2' });
      expect(z.status, z.err).toBe(0);
      expect(readFileSync(out).equals(readFileSync(golden('vectors/zip-static-prose.tpz'))), isa).toBe(true);
    }
  });
});
