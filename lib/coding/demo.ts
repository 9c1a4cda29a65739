/**
 * The coding part of `npm start`: a sample text turned into Equal-Info
 * tokens with the embedded model and back, beside UTF-8 bytes, plain coding
 * with the same model and adaptive mixing.
 */
import { ByteModel } from './model.js';
import { EqualInfoTokenizer } from './equal-info.js';
import { ByteTokenizer } from './byte-tokenizer.js';
import { compressStatic, decompressStatic } from './static.js';
import { compressAdaptive, decompressAdaptive } from './adaptive.js';

export const DEMO_TEXT =
  'Arithmetic coding turns text into a number: a small language model predicts each next byte, and likely bytes ' +
  'cost few bits. Equal-Info Windows cut that bitstream so every window holds exactly the same number of bits, ' +
  'and the model starts afresh at each window, so a language model can learn to read the tokens. The tokens ' +
  'decode back to the exact text, one window at a time or all of them in parallel.';

export interface CodingDemoRow {
  method: string;
  tokens: number;
  bytesPerToken: number;
  bitsPerByte: number;
  exact: boolean;
}

export interface CodingDemo {
  text: string;
  bytes: number;
  firstTokens: number[];
  firstWindowText: string;
  rows: CodingDemoRow[];
}

export function runCodingDemo(text = DEMO_TEXT): CodingDemo {
  const model = ByteModel.loadDefault();
  const bytes = new TextEncoder().encode(text);
  const rows: CodingDemoRow[] = [];
  const byteTok = new ByteTokenizer();
  const byteIds = byteTok.encode(bytes);
  rows.push({ method: 'UTF-8 bytes (ByteTokenizer)', tokens: byteIds.length, bytesPerToken: 1, bitsPerByte: 8, exact: byteTok.decode(byteIds) === text });
  let first: Uint16Array | Uint32Array = new Uint16Array(0);
  let firstWindow = '';
  for (const [windowBits, tokenBits] of [[16, 8], [16, 16], [32, 16], [128, 16]] as const) {
    const tok = new EqualInfoTokenizer({ model, windowBits, tokenBits });
    const ids = tok.encode(bytes);
    if (windowBits === 16 && tokenBits === 16) {
      first = ids;
      firstWindow = new TextDecoder().decode(tok.decodeWindow(ids, 0));
    }
    rows.push({
      method: `Equal-Info b=${windowBits}, ${tokenBits}-bit tokens`, tokens: ids.length,
      bytesPerToken: bytes.length / ids.length, bitsPerByte: (ids.length * tokenBits) / bytes.length, exact: tok.decode(ids) === text,
    });
  }
  const s = compressStatic(model, bytes);
  rows.push({ method: 'plain coding, same model (bytes)', tokens: s.length, bytesPerToken: bytes.length / s.length, bitsPerByte: (s.length * 8) / bytes.length, exact: new TextDecoder().decode(decompressStatic(model, s, bytes.length)) === text });
  const a = compressAdaptive(bytes);
  rows.push({ method: 'adaptive mixing (bytes)', tokens: a.length, bytesPerToken: bytes.length / a.length, bitsPerByte: (a.length * 8) / bytes.length, exact: new TextDecoder().decode(decompressAdaptive(a, bytes.length)) === text });
  return { text, bytes: bytes.length, firstTokens: Array.from(first.subarray(0, 8)), firstWindowText: firstWindow, rows };
}

export function formatCodingDemo(d: CodingDemo): string {
  const lines = [
    `Text (${d.bytes} bytes): "${d.text.slice(0, 72)}..."`,
    `Equal-Info b=16 tokens: [${d.firstTokens.join(', ')}, ...]; window 0 alone decodes to "${d.firstWindowText}"`,
    '',
    `${'method'.padEnd(38)} ${'tokens'.padStart(7)} ${'bytes/token'.padStart(12)} ${'bits/byte'.padStart(10)}  exact`,
  ];
  for (const r of d.rows) {
    lines.push(`${r.method.padEnd(38)} ${String(r.tokens).padStart(7)} ${r.bytesPerToken.toFixed(2).padStart(12)} ${r.bitsPerByte.toFixed(2).padStart(10)}  ${r.exact ? 'yes' : 'NO'}`);
  }
  lines.push('(an adaptive coder learns as it goes, so it needs far more text than this to shine; see `tokenpress bench coding`)');
  return lines.join('\n');
}
