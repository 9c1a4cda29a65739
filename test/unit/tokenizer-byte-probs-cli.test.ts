// `tokenizer byte-probs` (lib/cli/tokenizer-byte-probs.ts) end to end on r50k:
// the slice it scores, the report's arithmetic, and its argument errors.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Command } from 'commander';
import { describe, expect, test } from 'vitest';
import { addByteProbsCommand } from '../../lib/cli/tokenizer-byte-probs.js';
import { loadVocab } from '../../lib/tokenizer/vocab.js';

const TRAIN = 'the cat sat on the mat. the dog sat on the log. a cat and a dog sat together on a mat.\n'.repeat(40);
// 2-byte characters near the cut: --bytes 23 ends inside "é" and must be cut back to a whole character.
const TEXT = 'the dog sat on the café mat, then the cat sat.';

interface Report {
  bytes: number; tokens: number; mask: string; renormalize: boolean;
  tokenBitsPerByte: number; byteBitsPerByte: number; relativeDifference: number;
}

async function run(args: string[]): Promise<Report> {
  // Commander's own error print is silenced: the rejection carries the message.
  const program = new Command().exitOverride().configureOutput({ writeErr: () => {} });
  addByteProbsCommand(program.command('tokenizer').exitOverride());
  const logs: string[] = [];
  const log = console.log;
  console.log = (s: string) => { logs.push(s); };
  try {
    await program.parseAsync(['node', 'tokenpress', 'tokenizer', 'byte-probs', ...args]);
  } finally {
    console.log = log;
  }
  return JSON.parse(logs.join('\n')) as Report;
}

describe('tokenpress tokenizer byte-probs', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tp-byteprobs-'));
  const train = join(dir, 'train.txt'), text = join(dir, 'text.txt');
  writeFileSync(train, TRAIN);
  writeFileSync(text, TEXT);

  test('scores the requested slice (cut back to whole UTF-8 characters); the report is self-consistent', async () => {
    const r50k = await loadVocab('r50k');
    const bytes = new TextEncoder().encode(TEXT);
    const cut = bytes.indexOf(0xc3); // the first byte of "é"
    for (const mask of ['canonical', 'none']) {
      const r = await run(['--vocab', 'r50k', '--train', train, '--text', text, '--bytes', String(cut + 1), '--mask', mask, '--no-progress', '--json']);
      expect(r.bytes, mask).toBe(cut); // the lone lead byte is dropped
      expect(r.tokens, mask).toBe(r50k.encodeBytes(bytes.subarray(0, cut)).length);
      expect(r.mask).toBe(mask);
      expect(Number.isFinite(r.tokenBitsPerByte) && r.tokenBitsPerByte > 0).toBe(true);
      expect(Number.isFinite(r.byteBitsPerByte) && r.byteBitsPerByte > 0).toBe(true);
      expect(r.relativeDifference).toBeCloseTo((r.byteBitsPerByte - r.tokenBitsPerByte) / r.tokenBitsPerByte, 12);
    }
  });

  test('on this text the exact mask gives the true bytes more probability than the unmasked rows (a mask that is not applied fails this)', async () => {
    const args = ['--vocab', 'r50k', '--train', train, '--text', text, '--bytes', '20', '--no-progress', '--json'];
    const exact = await run([...args, '--mask', 'canonical']);
    const none = await run([...args, '--mask', 'none']);
    expect(exact.tokenBitsPerByte).toBe(none.tokenBitsPerByte); // the same token model and encoding
    expect(exact.byteBitsPerByte).toBeLessThan(none.byteBitsPerByte);
  });

  test('bad flags name the flag', async () => {
    await expect(run(['--train', train, '--text', text, '--bytes', '0', '--json'])).rejects.toThrow(/--bytes/);
    await expect(run(['--train', train, '--text', text, '--vocab', 'nope', '--json'])).rejects.toThrow(/nope|vocab/);
  });
});
