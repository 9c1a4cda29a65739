// Smoke test of an installed tokenpress (run by scripts/check-package.sh in a
// new project that installed the tarball): the addon loads from the shipped
// prebuild, and attention, a KvCache compress and an Equal-Info round trip
// give right answers. Exits non-zero on any failure.
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { dirname } from 'node:path';
import { attention, backendInfo, callbackScorer, cl100kCounter, compressPrompt, EqualInfoTokenizer, KvCache, selectSentences } from 'tokenpress';

const require = createRequire(import.meta.url);
const pkgDir = dirname(require.resolve('tokenpress/package.json'));
const binary = require('node-gyp-build').resolve(pkgDir);
assert.match(binary, /prebuilds/, `expected the shipped prebuild, loaded ${binary}`);
const info = backendInfo();
console.log(`addon: ${binary} (isa ${info.isa}, ${info.threads} threads)`);

// Attention, one query over 5 keys, checked against a float64 softmax.
const headDim = 4, nKv = 5;
const q = { dtype: 'f32', shape: [1, 1, headDim], data: Float32Array.from([0.5, -1, 0.25, 2]) };
const k = { dtype: 'f32', shape: [1, nKv, headDim], data: Float32Array.from({ length: nKv * headDim }, (_, i) => Math.sin(i)) };
const v = { dtype: 'f32', shape: [1, nKv, headDim], data: Float32Array.from({ length: nKv * headDim }, (_, i) => Math.cos(i)) };
const { output } = attention(q, k, v);
const logits = Array.from({ length: nKv }, (_, j) => {
  let s = 0;
  for (let c = 0; c < headDim; c++) s += q.data[c] * k.data[j * headDim + c];
  return s / Math.sqrt(headDim);
});
const m = Math.max(...logits);
const w = logits.map((l) => Math.exp(l - m));
const z = w.reduce((a, b) => a + b, 0);
for (let c = 0; c < headDim; c++) {
  let want = 0;
  for (let j = 0; j < nKv; j++) want += (w[j] / z) * v.data[j * headDim + c];
  assert.ok(Math.abs(output.data[c] - want) < 1e-5, `attention output[${c}] = ${output.data[c]}, expected ${want}`);
}

// KvCache: 64 tokens compressed to 16 per head.
const cache = new KvCache({ nLayers: 1, nKvHeads: 2, headDim: 8, capacity: 64 });
const rows = { dtype: 'f32', shape: [2, 64, 8], data: Float32Array.from({ length: 2 * 64 * 8 }, (_, i) => Math.sin(i * 0.37)) };
cache.append(0, rows, rows);
cache.compress('knorm', { keep: 16 });
assert.deepEqual(Array.from(cache.lengths().data), [16, 16]);

// Equal-Info round trip with the embedded model.
const text = 'tokenpress installed from its tarball, with no compiler in sight.';
const tok = new EqualInfoTokenizer({ windowBits: 16, tokenBits: 16 });
const ids = tok.encode(text);
assert.equal(tok.decode(ids), text);
console.log(`smoke: attention, KvCache compress and Equal-Info (${text.length} bytes -> ${ids.length} tokens) OK`);

// Prompt compression through the runtime dependencies (gpt-tokenizer's cl100k, okapibm25):
// a length scorer keeps the longest words; BM25 keeps the sentence about the query.
const words = (t) => [...t.matchAll(/\S+/g)].map((m) => ({ start: m.index, end: m.index + m[0].length }));
const scorer = callbackScorer({ name: 'length', tokenize: words, score: (_t, spans) => spans.map((s) => s.end - s.start) });
const prompt = 'a an the extraordinarily informative sentence about compression';
const pc = await compressPrompt(prompt, { scorer, rate: 0.5 });
assert.equal(pc.originalTokens, cl100kCounter(prompt));
assert.ok(pc.compressedTokens <= pc.originalTokens && pc.text.includes('extraordinarily'), `compressPrompt gave "${pc.text}"`);
const sel = await selectSentences('where do cats sleep?', 'Dogs bark at night. Cats sleep all day long. Birds sing.', { topK: 1 });
assert.equal(sel.text, 'Cats sleep all day long.');
console.log(`smoke: compressPrompt (${pc.originalTokens} -> ${pc.compressedTokens} cl100k tokens) and selectSentences OK`);
