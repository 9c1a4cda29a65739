/**
 * Embedding transplantation eval and timing (not a test).
 *
 * Eval: token embeddings are learned for two real vocabularies on the
 * built-in corpus (bench/transplant-embed.ts: co-occurrence in a +-5 window
 * -> PPMI -> randomized SVD, 256 dims, tokens seen >= 20 times). `--holdout`
 * shared tokens (identical bytes in both, embedded in both) are treated as
 * new: transplanted from the donor vocabulary's embeddings into the base
 * vocabulary's space by OMP (k = 64), TokenAdapt (its embedder callback is
 * the donor co-occurrence embedding itself: idOf(bytes) in the donor
 * vocabulary, null when not embedded) and mean-of-pieces, and compared with
 * their true base embeddings by cosine.
 *
 * Timing: ompBatch on random anchors / targets (uniform in [-1, 1)) at
 * width 4096, k = 64: --anchors x --targets, median of --reps, extrapolated
 * linearly to 100k targets (targets are independent; the Gram cache does not
 * help random data, so this is the uncached cost).
 *
 * Run: npx tsc -p tsconfig.json && node dist/bench/transplant.js
 *   [--base cl100k] [--donor o200k] [--mb 8] [--holdout 1000] [--timing-only] [--eval-only]
 *   [--anchors 100000] [--targets 24] [--width 4096]
 * Prints a table and writes bench-results/transplant.json.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { backendInfo } from '../lib/index.js';
import { native } from '../lib/native.js';
import { ompBatch } from '../lib/tokenizer/omp.js';
import { transplantEmbeddings, type TransplantMethod } from '../lib/tokenizer/transplant.js';
import type { VocabName } from '../lib/tokenizer/types.js';
import { loadVocab } from '../lib/tokenizer/vocab.js';
import { mulberry32 } from '../test/reference/random.js';
import { median } from './common.js';
import { ensureCorpus } from './corpus.js';
import { cpuModel } from './limits.js';
import { cooccurrenceEmbeddings, type TokenEmbeddings } from './transplant-embed.js';

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && i + 1 < process.argv.length ? process.argv[i + 1]! : fallback;
}
const flag = (name: string): boolean => process.argv.includes(`--${name}`);
const secs = (t0: number): number => (performance.now() - t0) / 1000;

function cosine(a: Float32Array, b: Float32Array): number {
  let ab = 0, aa = 0, bb = 0;
  for (let i = 0; i < a.length; i++) { ab += a[i]! * b[i]!; aa += a[i]! * a[i]!; bb += b[i]! * b[i]!; }
  return aa > 0 && bb > 0 ? ab / Math.sqrt(aa * bb) : 0;
}

async function evalRecovery(): Promise<Record<string, unknown>> {
  const baseName = arg('base', 'cl100k') as VocabName;
  const donorName = arg('donor', 'o200k') as VocabName;
  const mb = Number(arg('mb', '8'));
  const nHold = Number(arg('holdout', '1000'));
  const corpus = await ensureCorpus({ log: (m) => console.error(m) });
  const text = readFileSync(corpus.trainPath).subarray(0, mb * 1024 * 1024).toString('utf8');
  const [oldVocab, newVocab] = await Promise.all([loadVocab(baseName), loadVocab(donorName)]);
  const opts = { window: 5, minCount: 20, contexts: 2000, dim: 256, seed: 1 };
  const embed = (name: string, v: typeof oldVocab): TokenEmbeddings => {
    let t0 = performance.now();
    const ids = v.encode(text);
    console.error(`${name}: ${ids.length} tokens in ${secs(t0).toFixed(1)} s`);
    t0 = performance.now();
    const e = cooccurrenceEmbeddings(ids, v.size, opts);
    console.error(`${name}: ${e.embedded.length} tokens embedded in ${secs(t0).toFixed(1)} s`);
    return e;
  };
  const base = embed(baseName, oldVocab);
  const donor = embed(donorName, newVocab);
  // Shared tokens embedded in both; hold out a seeded random sample.
  const donorSeen = new Set(donor.embedded);
  const shared: [number, number][] = [];
  for (const oldId of base.embedded) {
    const newId = newVocab.idOf(oldVocab.tokenBytes(oldId));
    if (newId >= 0 && donorSeen.has(newId)) shared.push([newId, oldId]);
  }
  const rng = mulberry32(42);
  for (let i = shared.length - 1; i > 0; i--) { const j = Math.floor(rng() * (i + 1)); [shared[i], shared[j]] = [shared[j]!, shared[i]!]; }
  const held = shared.slice(0, Math.min(nHold, shared.length));
  const heldNew = held.map(([n]) => n);
  const embedder = (bytes: Uint8Array): Float32Array | null => {
    const id = newVocab.idOf(bytes);
    return id >= 0 && donorSeen.has(id) ? donor.matrix.subarray(id * donor.dim, (id + 1) * donor.dim) : null;
  };
  const rows: Record<string, unknown>[] = [];
  for (const method of ['omp', 'tokenadapt', 'mean-of-pieces'] as TransplantMethod[]) {
    const t0 = performance.now();
    const r = transplantEmbeddings({
      oldVocab, newVocab, base: base.matrix, baseDim: base.dim, method, treatAsNew: heldNew, targets: heldNew,
      donor: donor.matrix, donorDim: donor.dim, k: 64, embed: embedder, embedDim: donor.dim,
    });
    const time = secs(t0);
    const cos = held.map(([n, o]) => cosine(r.embeddings.subarray(n * base.dim, (n + 1) * base.dim), base.matrix.subarray(o * base.dim, (o + 1) * base.dim)));
    const mean = cos.reduce((a, b) => a + b, 0) / cos.length;
    rows.push({ method, meanCosine: mean, medianCosine: median(cos), fallbacks: r.fallbacks, seconds: time, anchors: r.anchorsNew.length });
    console.error(`${method}: mean cos ${mean.toFixed(4)}, median ${median(cos).toFixed(4)} (${time.toFixed(1)} s, ${r.fallbacks} fallbacks)`);
  }
  return { base: baseName, donor: donorName, corpusMiB: mb, embedding: opts, shared: shared.length, heldOut: held.length, rows };
}

async function timing(): Promise<Record<string, unknown>> {
  const anchors = Number(arg('anchors', '100000'));
  const targets = Number(arg('targets', '24'));
  const width = Number(arg('width', '4096'));
  const reps = Number(arg('reps', '1'));
  const rng = mulberry32(3);
  const atoms = new Float32Array(anchors * width);
  for (let i = 0; i < atoms.length; i++) atoms[i] = rng() * 2 - 1;
  const tg = new Float32Array(targets * width);
  for (let i = 0; i < tg.length; i++) tg[i] = rng() * 2 - 1;
  const times: number[] = [];
  let meanCount = 0;
  for (let r = 0; r < reps; r++) {
    const t0 = performance.now();
    const res = ompBatch(atoms, tg, width, { k: 64 });
    times.push(secs(t0));
    meanCount = res.counts.reduce((a, b) => a + b, 0) / targets;
  }
  const med = median(times);
  // The machine's FMA peak (f32 FLOP/s, all threads) measured right after, the roof of the Gram GEMM.
  const peaks = [0, 1, 2].map(() => native().measureFmaPeak(backendInfo().threads));
  const fmaPeakGflops = median(peaks) / 1e9;
  const flops = targets * 64 * anchors * width * 2; // Gram columns, no cache hits (alpha0 adds 1/64 of it)
  const out = {
    anchors, targets, width, k: 64, reps, medianSeconds: med, meanCount, secondsPerTarget: med / targets,
    extrapolated100kTargetsHours: (med / targets) * 100000 / 3600, gflops: flops / med / 1e9, threads: backendInfo().threads,
    fmaPeakGflops, fractionOfPeak: flops / med / 1e9 / fmaPeakGflops,
    loadAverage: (await import('node:os')).loadavg()[0],
  };
  console.error(`timing: ${anchors} anchors x ${targets} targets, width ${width}, k 64: ${med.toFixed(2)} s (${out.gflops.toFixed(1)} GFLOP/s, ${(100 * out.fractionOfPeak).toFixed(0)}% of the measured FMA peak ${fmaPeakGflops.toFixed(0)}); ` +
    `100k targets ~ ${out.extrapolated100kTargetsHours.toFixed(1)} h (extrapolated)`);
  return out;
}

async function main(): Promise<void> {
  const result: Record<string, unknown> = { cpu: cpuModel(), isa: backendInfo().isa, command: `node dist/bench/transplant.js ${process.argv.slice(2).join(' ')}` };
  if (!flag('timing-only')) result.eval = await evalRecovery();
  if (!flag('eval-only')) result.timing = await timing();
  mkdirSync('bench-results', { recursive: true });
  writeFileSync('bench-results/transplant.json', JSON.stringify(result, null, 2) + '\n');
  console.log(JSON.stringify(result, null, 2));
}

if (import.meta.url === pathToFileURL(process.argv[1]!).href) {
  main().catch((e) => { console.error(e); process.exit(1); });
}
