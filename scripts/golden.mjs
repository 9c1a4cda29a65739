#!/usr/bin/env node
// Golden vectors of the coded formats (test/golden/): checks them against the
// built library, or rewrites them on purpose.
//
//   node scripts/golden.mjs           re-make every vector from dist/ and compare (exit 1 on a difference)
//   node scripts/golden.mjs --write   rewrite test/golden/vectors/* and manifest.json
//
// Needs `npm run build:native && npm run build:ts` first. Rewrite only for a
// deliberate, versioned format change (docs/testing.md, "Golden vectors").
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { GOLDEN_DIR, MANIFEST, VECTORS, decode, expectedDecode, produce, sha256 } from '../test/golden/produce.mjs';

const args = process.argv.slice(2);
const unknown = args.filter((a) => a !== '--write');
if (unknown.length > 0) {
  console.error(`golden.mjs: unknown argument ${unknown[0]} (expected none or --write)`);
  process.exit(2);
}
const write = args.includes('--write');

const lib = await import('../dist/lib/index.js');
const { native } = await import('../dist/lib/native.js');
const { quantizeForRawCoder } = await import('../dist/lib/coding/raw.js');
const api = { lib, native, quantizeForRawCoder };

const dir = join(GOLDEN_DIR, 'vectors');
mkdirSync(dir, { recursive: true });
const stored = (file) => new Uint8Array(readFileSync(join(dir, file)));
const same = (a, b) => a.length === b.length && Buffer.from(a).equals(Buffer.from(b));

const entries = [];
let bad = 0;
for (const v of VECTORS) {
  // In write mode the model file is written first (it leads VECTORS), so the
  // vectors coded with it read it back exactly as the test will.
  const bytes = await produce(api, v, stored);
  if (write) {
    writeFileSync(join(dir, v.file), bytes);
  } else {
    let old;
    try {
      old = stored(v.file);
    } catch {
      old = undefined;
    }
    if (!old || !same(old, bytes)) {
      console.error(`DIFFERS ${v.file}: stored ${old ? `${old.length} bytes ${sha256(old).slice(0, 16)}` : 'missing'}, made ${bytes.length} bytes ${sha256(bytes).slice(0, 16)}`);
      bad++;
      continue;
    }
  }
  const back = await decode(api, v, bytes, stored);
  if (!same(back, expectedDecode(v, bytes))) {
    console.error(`DECODE ${v.file}: decoding the vector does not give its input back`);
    bad++;
  }
  entries.push({ ...v, bytes: bytes.length, sha256: sha256(bytes) });
}

if (write) {
  const manifest = {
    version: 1,
    note: 'Golden vectors of the coded formats. Rewrite only with a deliberate, versioned format change: node scripts/golden.mjs --write (docs/testing.md).',
    vectors: entries,
  };
  writeFileSync(join(GOLDEN_DIR, MANIFEST), `${JSON.stringify(manifest, null, 2)}\n`);
  console.log(`wrote ${entries.length} vectors and ${MANIFEST} under ${GOLDEN_DIR}`);
}
if (bad > 0) {
  console.error(`${bad} vector(s) failed`);
  process.exit(1);
}
if (!write) console.log(`all ${VECTORS.length} golden vectors match`);
