#!/usr/bin/env node
/**
 * Checks an exported model directory (export.py): the plain graph and the
 * attention-cut stage graphs with tokenpress attention (f32 cache) give the
 * same logits, and both match config.json's PyTorch reference logits.
 * Prompt fed as a 20-byte prefill, a 20-byte chunk, then single bytes.
 *
 *   node scripts/train-lm/check-export.mjs models/lm/main [--tolerance 1e-3]
 * Exit status 1 when a difference exceeds the tolerance.
 */
import { parseArgs } from 'node:util';
import { ByteLm } from '../../dist/lib/model/byte-lm.js';

const { values, positionals } = parseArgs({ allowPositionals: true, options: { tolerance: { type: 'string', default: '1e-3' } } });
const tolerance = Number(values.tolerance);
const dir = positionals[0] ?? 'main';
const m = await ByteLm.load(dir);
const prompt = new TextEncoder().encode(m.card.reference.prompt);
const chunks = [prompt.subarray(0, 20), prompt.subarray(20, 40), ...Array.from(prompt.subarray(40), (b) => Uint8Array.of(b))];
const tp = m.session({ dtype: 'f32' });
const plain = m.plainSession();
const rows = { tp: [], plain: [] };
for (const c of chunks) {
  const a = await tp.forward(c);
  const b = await plain.forward(c);
  for (let i = 0; i < c.length; i++) {
    rows.tp.push(a.subarray(i * 256, (i + 1) * 256));
    rows.plain.push(b.subarray(i * 256, (i + 1) * 256));
  }
}
let pathDiff = 0;
for (let r = 0; r < rows.tp.length; r++) for (let j = 0; j < 256; j++) pathDiff = Math.max(pathDiff, Math.abs(rows.tp[r][j] - rows.plain[r][j]));
let refDiff = 0;
m.card.reference.positions.forEach((pos, r) => {
  for (let j = 0; j < 256; j++) {
    const ref = m.card.reference.logits[r][j];
    refDiff = Math.max(refDiff, Math.abs(rows.tp[pos][j] - ref), Math.abs(rows.plain[pos][j] - ref));
  }
});
console.log(`${m.config.name}: max |tokenpress - plain| = ${pathDiff.toExponential(2)}, max |ORT - PyTorch| = ${refDiff.toExponential(2)} (tolerance ${tolerance})`);
await m.release();
if (!(pathDiff < tolerance && refDiff < tolerance)) process.exit(1);
