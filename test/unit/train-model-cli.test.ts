// `tokenpress train-model` end to end through commander (lib/cli/train-model.ts),
// in process, on small text files: the model it writes loads and matches a
// model trained through the API; --json; bad flags name the flag.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, test, vi } from 'vitest';
import { Command } from 'commander';
import { ByteModel } from '../../lib/index.js';
import { registerTrainModel } from '../../lib/cli/train-model.js';

const dir = mkdtempSync(join(tmpdir(), 'tokenpress-train-model-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
afterEach(() => vi.restoreAllMocks());

async function cli(args: string[]): Promise<{ out: string; err: string }> {
  const logs: string[] = [];
  const errs: string[] = [];
  vi.spyOn(console, 'log').mockImplementation((...a: unknown[]) => { logs.push(a.join(' ')); });
  vi.spyOn(console, 'error').mockImplementation((...a: unknown[]) => { errs.push(a.join(' ')); });
  const program = new Command().exitOverride().configureOutput({ writeErr: (s) => errs.push(s), writeOut: (s) => logs.push(s) });
  registerTrainModel(program);
  for (const c of program.commands) c.exitOverride().configureOutput({ writeErr: (s) => errs.push(s), writeOut: (s) => logs.push(s) });
  await program.parseAsync(['node', 'tokenpress', 'train-model', '--no-progress', ...args]);
  return { out: logs.join('\n'), err: errs.join('') };
}

describe('tokenpress train-model', () => {
  const a = join(dir, 'a.txt');
  const b = join(dir, 'b.txt');
  writeFileSync(a, 'the cat sat on the mat; '.repeat(200));
  writeFileSync(b, 'a dog ran in the fog. '.repeat(150));

  test('trains on the files in order, writes a model equal to the API one, prints its info', async () => {
    const out = join(dir, 'm.tpm');
    const { out: text } = await cli([a, b, '--out', out, '--max-order', '4', '--max-bytes', '20000']);
    const model = ByteModel.fromBytes(readFileSync(out));
    const text2 = new Uint8Array([...readFileSync(a), ...readFileSync(b)]);
    const api = await ByteModel.train(text2, { maxOrder: 4, maxBytes: 20_000 });
    expect(model.identity).toBe(api.identity);
    expect(text).toContain(`wrote ${out}: ${model.info.bytes} bytes, order 4, identity ${model.identity}`);
    expect(text).toContain(`contexts per order: ${model.info.contexts.join(', ')}`);
  });

  test('--json prints the report', async () => {
    const out = join(dir, 'j.tpm');
    const { out: text } = await cli([a, '--out', out, '--max-order', '3', '--json']);
    const r = JSON.parse(text) as { out: string; info: { maxOrder: number; identity: string; trainedBytes: number } };
    expect(r.out).toBe(out);
    expect(r.info.maxOrder).toBe(3);
    expect(r.info.trainedBytes).toBe(readFileSync(a).length);
    expect(r.info.identity).toBe(ByteModel.fromBytes(readFileSync(out)).identity);
  });

  test('bad flags and no input name the problem', async () => {
    await expect(cli([a, '--out', join(dir, 'x.tpm'), '--max-order', '13'])).rejects.toThrow(/--max-order: expected an integer in \[1, 12\], received "13"/);
    await expect(cli([a, '--out', join(dir, 'x.tpm'), '--max-bytes', '100'])).rejects.toThrow(/--max-bytes: expected an integer in \[4096/);
    await expect(cli([a, '--out', join(dir, 'x.tpm'), '--corpus', 'wiki'])).rejects.toThrow(/--corpus: expected "debian"/);
    await expect(cli(['--out', join(dir, 'x.tpm')])).rejects.toThrow(/give text files to train on, or --corpus debian/);
    await expect(cli([a])).rejects.toThrow(/--out/);
  });
});
