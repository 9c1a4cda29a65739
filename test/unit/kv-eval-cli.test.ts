// `tokenpress eval kv` end to end through commander (lib/cli/eval-kv.ts), in
// process: the table, --json <file>, --json alone, --svg, --trace, bad flags;
// and the SVG plot's structure (lib/kv/eval/plot-svg.ts).
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, test, vi } from 'vitest';
import { castTo } from '../../lib/index.js';
import { evalKvCli } from './eval-kv-cli-helper.js';
import { renderKvEvalSvg } from '../../lib/kv/eval/plot-svg.js';
import type { KvEvalReport } from '../../lib/kv/eval/run.js';
import { writeKvTrace } from '../../lib/kv/eval/traces.js';
import { mulberry32, randomF32 } from '../reference/random.js';

const dir = mkdtempSync(join(tmpdir(), 'tokenpress-evalkv-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
afterEach(() => vi.restoreAllMocks());

const SMALL = ['--n-kv', '400', '--head-dim', '16', '--needles', '3', '--window', '8', '--probes', '4'];

const cli = evalKvCli;

describe('tokenpress eval kv', () => {
  test('table on stdout, --json <file> and --svg <file>', async () => {
    const json = join(dir, 'r.json');
    const svg = join(dir, 'r.svg');
    const { out } = await cli([...SMALL, '--budgets', '2%,0.5', '--policies', 'random,snapkv', '--json', json, '--svg', svg]);
    expect(out).toMatch(/policy\s+budget\s+keep\s+needle\s+err question\s+err probe\s+mass question\s+mass probe/);
    expect(out).toMatch(/^random\s+2%\s+8\s/m);
    expect(out).toMatch(/^snapkv\s+50%\s+200\s/m);
    const report = JSON.parse(readFileSync(json, 'utf8')) as KvEvalReport;
    expect(report.policies).toEqual(['random', 'snapkv']);
    expect(report.budgets).toEqual([0.02, 0.5]);
    expect(report.rows).toHaveLength(4);
    expect(report.rows[0]!.layers).toHaveLength(2);
    const text = readFileSync(svg, 'utf8');
    expect(text.startsWith('<svg')).toBe(true);
    expect(text.match(/<polyline/g)).toHaveLength(4); // 2 policies x 2 panels
  });

  test('--json without a file prints the report instead of the table', async () => {
    const { out } = await cli([...SMALL, '--budgets', '0.1', '--policies', 'knorm', '--json']);
    const report = JSON.parse(out) as KvEvalReport;
    expect(report.rows).toHaveLength(1);
    expect(report.rows[0]!.keep).toBe(40);
  });

  test('--trace evaluates a trace file; synthetic-only flags are refused with it', async () => {
    const rng = mulberry32(5);
    const f = (shape: number[]) => ({ dtype: 'f32' as const, shape, data: randomF32(rng, shape.reduce((a, b) => a * b, 1)) });
    const file = join(dir, 'trace.safetensors');
    writeKvTrace(file, [{ q: f([4, 70, 8]), k: castTo(f([2, 70, 8]), 'f16'), v: f([2, 70, 8]) }]);
    const { out } = await cli(['--trace', file, '--window', '8', '--probes', '6', '--budgets', '0.25', '--policies', 'tova']);
    expect(out).toMatch(/trace: 1 layers, 4\/2 heads, headDim 8, 70 rows = prompt 64 \+ 6 probes, window 8/);
    expect(out).toMatch(/err window/);
    expect(out).toMatch(/^tova\s+25%\s+16\s+-\s/m);
    await expect(cli(['--trace', file, '--n-kv', '100'])).rejects.toThrow(/--n-kv shapes the synthetic workload/);
  });

  test('bad flags', async () => {
    await expect(cli(['--budgets', '0'])).rejects.toThrow(/--budgets: expected a comma-separated list of fractions/);
    await expect(cli(['--policies', 'snapkv,nope'])).rejects.toThrow(/unknown policy "nope"/);
    await expect(cli(['--n-kv', '12.5'])).rejects.toThrow(/--n-kv: expected an integer/);
    await expect(cli(['--dtype', 'bf16'])).rejects.toThrow(/--dtype: expected f32 or f16/);
    await expect(cli([...SMALL, '--head-dim', '15'])).rejects.toThrow(/headDim.*even/);
  });
});

describe('SVG plot', () => {
  const row = (policy: string, fraction: number, needle: number | null, err: number) => ({
    policy, fraction, keep: 1, needleRate: needle, errQuestion: err, errProbes: err, massQuestion: 0.5, massProbes: 0.5, layers: [],
  });
  const report = (rows: ReturnType<typeof row>[], kind: 'synthetic' | 'trace' = 'synthetic'): KvEvalReport => ({
    source: { kind, description: 'a <test> & co', nLayers: 1, nHeads: 1, nKvHeads: 1, nKv: 100, headDim: 4 },
    questionLabel: 'question', budgetRule: '', inputsRule: '', budgets: [0.01, 0.1, 0.5],
    policies: [...new Set(rows.map((r) => r.policy))], fullNeedleRate: 1, rows, skipped: [{ policy: 'x<y', reason: 'r' }],
  });

  test('one line per policy and panel, a legend entry each, escaped text', () => {
    const names = ['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i', 'j', 'k'];
    const rows = names.flatMap((p, i) => [row(p, 0.01, 0.1 * (i % 3), 0.5), row(p, 0.1, 0.5, 0.2), row(p, 0.5, 1, 0.01)]);
    const svg = renderKvEvalSvg(report(rows));
    expect(svg.match(/<polyline/g)).toHaveLength(2 * names.length);
    expect(svg.match(/<circle/g)).toHaveLength(2 * rows.length);
    for (const n of names) expect(svg).toContain(`>${n}</text>`);
    expect(svg).toContain('a &lt;test&gt; &amp; co; skipped: x&lt;y');
    expect(svg).not.toMatch(/<test>/);
    expect(svg).toContain('stroke-dasharray'); // the 11th policy reuses a colour with a dash
    expect(svg).toContain('needle retrieval');
    expect(svg.trim().endsWith('</svg>')).toBe(true);
  });

  test('without needles the left panel shows retained mass; null points are left out', () => {
    const svg = renderKvEvalSvg(report([row('p', 0.01, null, 0.3), row('p', 0.5, null, 0.1)], 'trace'));
    expect(svg).toContain('retained attention mass (probes)');
    const rows = [row('q', 0.01, null, 0.3), row('q', 0.1, 0.5, 0.1)];
    const svg2 = renderKvEvalSvg(report(rows));
    const lines = svg2.match(/points="[^"]*"/g)!;
    expect(lines[0]!.split(' ')).toHaveLength(1); // the needle line has one point, the null one is dropped
    expect(lines[1]!.split(' ')).toHaveLength(2);
  });
});
