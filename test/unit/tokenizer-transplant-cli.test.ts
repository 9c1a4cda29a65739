// `tokenizer transplant` (lib/cli/tokenizer-transplant.ts) end to end on
// r50k -> p50k (p50k adds whitespace-run tokens), and the .npy reader/writer.
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Command } from 'commander';
import { describe, expect, test } from 'vitest';
import { addTransplantCommand } from '../../lib/cli/tokenizer-transplant.js';
import { encodeNpy, parseNpy, parseRawF32 } from '../../lib/tokenizer/npy.js';
import { loadVocab } from '../../lib/tokenizer/vocab.js';
import { mulberry32, randomF32 } from '../reference/random.js';

describe('npy', () => {
  test('round trip, and clear errors on other files', () => {
    const m = { data: randomF32(mulberry32(2), 21), rows: 7, cols: 3 };
    const bytes = encodeNpy(m);
    expect((10 + new DataView(bytes.buffer).getUint16(8, true)) % 64).toBe(0);
    const back = parseNpy(bytes, 'x');
    expect(back.rows).toBe(7);
    expect(back.cols).toBe(3);
    expect(back.data).toEqual(m.data);
    expect(() => parseNpy(bytes.subarray(0, bytes.length - 4), 'x')).toThrow(/x: not a 2-D float32 .npy file/);
    const f8 = bytes.slice();
    f8.set(new TextEncoder().encode('<f8'), bytes.indexOf(0x3c)); // first '<' is in the descr
    expect(() => parseNpy(f8, 'x')).toThrow(/dtype <f8/);
    expect(() => parseNpy(new Uint8Array(12), 'x')).toThrow(/magic/);
    expect(parseRawF32(new Uint8Array(m.data.buffer), 3, 'r').rows).toBe(7);
    expect(() => parseRawF32(new Uint8Array(8), 3, 'r')).toThrow(/r: 8 bytes/);
  });
});

describe('tokenpress tokenizer transplant', () => {
  test('r50k -> p50k: shared rows copied, the new ones approximated, .npy out', async () => {
    const [r50k, p50k] = await Promise.all([loadVocab('r50k'), loadVocab('p50k')]);
    const dir = mkdtempSync(join(tmpdir(), 'tp-transplant-'));
    const dim = 3;
    const base = { data: randomF32(mulberry32(4), r50k.size * dim), rows: r50k.size, cols: dim };
    const donor = randomF32(mulberry32(5), p50k.size * 2);
    writeFileSync(join(dir, 'base.npy'), encodeNpy(base));
    writeFileSync(join(dir, 'donor.f32'), new Uint8Array(donor.buffer));
    const program = new Command().exitOverride();
    addTransplantCommand(program.command('tokenizer'));
    const logs: string[] = [];
    const log = console.log;
    console.log = (s: string) => { logs.push(s); };
    try {
      await program.parseAsync(['tokenizer', 'transplant', '--base-vocab', 'r50k', '--new-vocab', 'p50k', '--base', join(dir, 'base.npy'),
        '--donor', join(dir, 'donor.f32'), '--donor-dim', '2', '--k', '2', '--out', join(dir, 'out.npy'), '--json'], { from: 'user' });
    } finally {
      console.log = log;
    }
    const summary = JSON.parse(logs[0]!) as { copied: number; approximated: number };
    expect(summary.approximated).toBeGreaterThan(0);
    const out = parseNpy(readFileSync(join(dir, 'out.npy')), 'out');
    expect(out.rows).toBe(p50k.size);
    expect(out.cols).toBe(dim);
    const a = p50k.idOf(new TextEncoder().encode(' the'));
    const o = r50k.idOf(new TextEncoder().encode(' the'));
    expect(Array.from(out.data.subarray(a * dim, (a + 1) * dim))).toEqual(Array.from(base.data.subarray(o * dim, (o + 1) * dim)));
    await expect(program.parseAsync(['tokenizer', 'transplant', '--base-vocab', 'r50k', '--new-vocab', 'p50k', '--base', join(dir, 'base.npy'),
      '--out', join(dir, 'x.npy')], { from: 'user' })).rejects.toThrow(/--donor: required by --method omp/);
  }, 20000);
});
