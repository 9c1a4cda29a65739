// A seeded mutation fuzzer for the TypeScript parsers (no native fuzzing
// engine: @jazzer.js/core fetches a prebuilt binary at install, which this
// project's machines cannot do). Run through scripts/fuzz.sh:
//
//   node test/fuzz/js/fuzz.mjs TARGET SECONDS WORKDIR SEEDDIR ARTIFACTDIR [seed=N]
//   node test/fuzz/js/fuzz.mjs TARGET replay FILE...
//   node test/fuzz/js/fuzz.mjs TARGET seeds DIR       (writes the seed corpus)
//
// Targets (targets.mjs): container (readContainer / writeContainer),
// safetensors (decodeSafetensors / readSafetensors / encodeSafetensors) and
// zip (unzipBytes end to end, so through the native decoders).
//
// Guidance without coverage instrumentation: an input is kept in the work
// corpus when its outcome has a signature not seen before (the error's
// code, class and message with the numbers taken out, or "ok" with the
// result's shape). Every input is checked against the target's properties;
// a violation (a wrong error class or code, a round trip that differs, a
// crash of the process) is written to ARTIFACTDIR and fails the run.
import { mkdirSync, readdirSync, readFileSync, writeFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import { targets } from './targets.mjs';

const [name, mode, ...rest] = process.argv.slice(2);
const target = targets[name];
if (!target) {
  console.error(`fuzz.mjs: unknown target ${name} (${Object.keys(targets).join(', ')})`);
  process.exit(2);
}

/** mulberry32: a small seeded PRNG, so a run replays from its seed. */
function prng(seed) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return { next, int: (n) => Math.floor(next() * n), pick: (xs) => xs[Math.floor(next() * xs.length)] };
}

const INTERESTING = [0, 1, 2, 7, 8, 15, 16, 31, 32, 44, 127, 128, 255, 256, 0x7fff, 0x8000, 0xffff, 0x10000,
  0x7fffffff, 0x80000000, 0xffffffff, 2 ** 32, 2 ** 53 - 1, 2 ** 53, 2 ** 63, 2 ** 64 - 1];

/** One random byte-level mutation of `b` (a new array). */
export function mutateBytes(r, b, corpus) {
  const out = Array.from(b);
  const k = r.int(9);
  const at = out.length ? r.int(out.length) : 0;
  switch (k) {
    case 0: if (out.length) out[at] ^= 1 << r.int(8); break;
    case 1: if (out.length) out[at] = r.pick([0, 0xff, 0x7f, 0x80, 1, r.int(256)]); break;
    case 2: out.splice(at, 0, ...Array.from({ length: 1 + r.int(8) }, () => r.int(256))); break;
    case 3: out.splice(at, 1 + r.int(Math.min(16, out.length - at || 1))); break;
    case 4: { // an interesting little-endian integer, 2, 4 or 8 bytes wide
      const width = r.pick([2, 4, 8]);
      let v = BigInt(r.pick(INTERESTING)) & ((1n << BigInt(8 * width)) - 1n);
      for (let i = 0; i < width && at + i < out.length; i++) { out[at + i] = Number(v & 0xffn); v >>= 8n; }
      break;
    }
    case 5: out.length = r.int(out.length + 1); break; // truncate
    case 6: { // copy a chunk within
      const len = 1 + r.int(16);
      const from = r.int(Math.max(1, out.length));
      out.splice(at, 0, ...out.slice(from, from + len));
      break;
    }
    case 7: { // splice with another corpus entry
      const o = r.pick(corpus);
      if (o) out.splice(at, out.length - at, ...Array.from(o.subarray(r.int(o.length + 1))));
      break;
    }
    default: for (let i = 0; i < 1 + r.int(4); i++) if (out.length) out[r.int(out.length)] = r.int(256);
  }
  return Uint8Array.from(out);
}

function signature(outcome) {
  // Numbers, hex bytes and quoted names vary with the input, not the code path.
  return outcome
    .replace(/"[^"]*"/g, '"…"')
    .replace(/\b[0-9a-f]{2}( [0-9a-f]{2})*\b/gi, '#')
    .replace(/\b[0-9a-f]{16}\b/gi, '#')
    .replace(/\b0x[0-9a-f]+\b/gi, '#')
    .replace(/\b(?=[0-9a-f]*\d)[0-9a-f]+\b/gi, '#')
    .replace(/-?#(\.#)?/g, '#')
    .replace(/#(,? #)+/g, '#')
    .slice(0, 200);
}

function sha(bytes) { return createHash('sha1').update(bytes).digest('hex'); }

function loadDir(dir) {
  if (!dir || !existsSync(dir)) return [];
  return readdirSync(dir).sort().map((f) => new Uint8Array(readFileSync(join(dir, f))));
}

async function runOne(input) {
  try {
    return { ok: true, outcome: await target.check(input) };
  } catch (e) {
    return { ok: false, error: e };
  }
}

async function fuzz(seconds, workDir, seedDir, artifactDir, seedArg) {
  const seed = seedArg ? Number(seedArg.replace('seed=', '')) : (Date.now() % 2 ** 31);
  const r = prng(seed);
  mkdirSync(workDir, { recursive: true });
  mkdirSync(artifactDir, { recursive: true });
  const corpus = [...loadDir(seedDir), ...loadDir(workDir)];
  if (corpus.length === 0) corpus.push(...(await target.seeds()));
  const seen = new Set();
  let execs = 0, findings = 0;
  const start = Date.now();
  const record = async (input, res) => {
    if (!res.ok) {
      findings++;
      const file = join(artifactDir, `${name}-crash-${sha(input)}`);
      writeFileSync(file, input);
      console.error(`FINDING ${file}: ${res.error?.stack ?? res.error}`);
      return;
    }
    const sig = signature(res.outcome);
    if (!seen.has(sig)) {
      seen.add(sig);
      corpus.push(input);
      writeFileSync(join(workDir, sha(input)), input);
    }
  };
  for (const input of [...corpus]) { execs++; await record(input, await runOne(input)); }
  console.log(`#${execs} INITED signatures: ${seen.size} corp: ${corpus.length} seed: ${seed}`);
  let lastPulse = Date.now();
  while (Date.now() - start < seconds * 1000) {
    let input = r.pick(corpus);
    const rounds = 1 + r.int(4);
    for (let i = 0; i < rounds; i++) input = target.mutate ? target.mutate(r, input, corpus, mutateBytes) : mutateBytes(r, input, corpus);
    execs++;
    await record(input, await runOne(input));
    if (Date.now() - lastPulse > 10000) {
      lastPulse = Date.now();
      console.log(`#${execs} pulse signatures: ${seen.size} corp: ${corpus.length} exec/s: ${Math.round(execs / ((Date.now() - start) / 1000))}`);
    }
  }
  const secs = (Date.now() - start) / 1000;
  console.log(`#${execs} DONE signatures: ${seen.size} corp: ${corpus.length} exec/s: ${Math.round(execs / secs)} findings: ${findings}`);
  console.log(`stat::number_of_executed_units: ${execs}`);
  console.log(`stat::signatures: ${seen.size}`);
  console.log(`stat::findings: ${findings}`);
  return findings === 0 ? 0 : 1;
}

let code = 0;
if (mode === 'replay') {
  for (const f of rest) {
    const res = await runOne(new Uint8Array(readFileSync(f)));
    console.log(`${f}: ${res.ok ? `ok (${res.outcome})` : `FINDING: ${res.error?.stack ?? res.error}`}`);
    if (!res.ok) code = 1;
  }
} else if (mode === 'seeds') {
  mkdirSync(rest[0], { recursive: true });
  for (const [i, s] of (await target.seeds()).entries()) writeFileSync(join(rest[0], `seed-${i}`), s);
} else {
  code = await fuzz(Number(mode), rest[0], rest[1], rest[2], rest[3]);
}
process.exit(code);
