// The drafters of speculative decoding: Token Recycling (native table walk
// and update) against slow JS references, prompt lookup against hand-built
// cases and a brute-force reference, the callback drafter's validation, and
// hostile inputs (clear errors, no crash, nothing changed on failure).
import { describe, expect, test } from 'vitest';
import {
  callbackDrafter, checkDraftTree, compileTemplate, PromptLookupDrafter, TOKEN_RECYCLING_TEMPLATE, TokenRecyclingDrafter,
  TokenpressError,
} from '../../lib/index.js';
import { native } from '../../lib/native.js';
import { mulberry32, type Rng } from '../reference/random.js';
import { referencePromptLookup, referenceTopK, referenceTrDraft } from '../reference/spec-drafters.js';

const tplPaths = TOKEN_RECYCLING_TEMPLATE;

/** A random table int32 [vocab, k]: ~15% empty slots, some rows with repeated tokens, some rows empty. */
function randomTable(rng: Rng, vocab: number, k: number, fill = 1): Int32Array {
  const t = new Int32Array(vocab * k).fill(-1);
  for (let row = 0; row < vocab; row++) {
    if (rng() > fill) continue;
    for (let j = 0; j < k; j++) {
      const u = rng();
      t[row * k + j] = u < 0.15 ? -1 : u < 0.2 && j > 0 ? t[row * k + j - 1]! : Math.floor(rng() * vocab);
    }
  }
  return t;
}

/** Logits with ties (values on a coarse grid) and some NaN / +-Infinity. */
function awkwardLogits(rng: Rng, rows: number, vocab: number): Float32Array {
  const x = new Float32Array(rows * vocab);
  for (let i = 0; i < x.length; i++) {
    const u = rng();
    x[i] = u < 0.01 ? NaN : u < 0.02 ? -Infinity : u < 0.0205 ? Infinity : Math.round((rng() * 2 - 1) * 8) / 4;
  }
  return x;
}

describe('Token Recycling template', () => {
  test('the official "2.2.2" tree: 80 nodes, levels 8/21/25/15/8/3, breadth-first, each parent = index of its prefix + 1', () => {
    expect(tplPaths.length).toBe(80);
    const c = compileTemplate(tplPaths, 8);
    const levels = [0, 0, 0, 0, 0, 0, 0];
    for (const d of c.depths) levels[d]!++;
    expect(levels).toEqual([1, 8, 21, 25, 15, 8, 3]);
    for (let i = 1; i < c.depths.length; i++) expect(c.depths[i]).toBeGreaterThanOrEqual(c.depths[i - 1]!);
    // The official father_index: template.index(path[:-1]) + 1, 0 for depth 1.
    const keys = tplPaths.map((p) => p.join(','));
    for (let i = 0; i < 80; i++) {
      const p = tplPaths[i]!;
      expect(c.parents[i + 1]).toBe(p.length === 1 ? 0 : keys.indexOf(p.slice(0, -1).join(',')) + 1);
      expect(c.ranks[i + 1]).toBe(p[p.length - 1]);
    }
    expect(new TokenRecyclingDrafter({ vocab: 10 }).maxNodes).toBe(81);
  });

  test('a bad template is refused, naming the entry', () => {
    expect(() => compileTemplate([[0], [0, 8]], 8)).toThrow(/template\[1\]\[1\]: expected a rank in \[0, 8\)/);
    expect(() => compileTemplate([[0, 0]], 8)).toThrow(/template\[0\]: expected a path whose parent \[0\] is listed before it/);
    expect(() => compileTemplate([[1], [1]], 8)).toThrow(/template\[1\]: expected a path listed once/);
    expect(() => compileTemplate([[]], 8)).toThrow(TypeError);
    expect(() => compileTemplate('x', 8)).toThrow(TypeError);
    expect(() => new TokenRecyclingDrafter({ vocab: 10, topK: 2 })).toThrow(/options\.template\[2\]\[0\]: expected a rank in \[0, 2\)/);
  });
});

describe('Token Recycling draft', () => {
  for (const vocab of [300, 131072]) {
    test(`matches the path-walk reference on random tables (vocab ${vocab})`, () => {
      const rng = mulberry32(vocab);
      const d = new TokenRecyclingDrafter({ vocab });
      // Dense tables walk deep; sparse ones drop subtrees.
      for (const fill of [1, 0.6]) {
        d.setTable(randomTable(rng, vocab, 8, fill));
        const table = d.table();
        for (let trial = 0; trial < 20; trial++) {
          const root = Math.floor(rng() * vocab);
          const maxNodes = trial % 4 === 0 ? 1 + Math.floor(rng() * 81) : undefined;
          const got = d.draft(Int32Array.of(5, root), maxNodes);
          const want = referenceTrDraft(table, 8, tplPaths, root, maxNodes ?? 81);
          expect(Array.from(got.tokens)).toEqual(want.tokens);
          expect(Array.from(got.parents)).toEqual(want.parents);
          checkDraftTree(got, vocab); // valid, distinct siblings
        }
      }
    });
  }

  test('a full table with distinct rows drafts the whole template', () => {
    const vocab = 300;
    const d = new TokenRecyclingDrafter({ vocab });
    const t = new Int32Array(vocab * 8);
    for (let r = 0; r < vocab; r++) for (let j = 0; j < 8; j++) t[r * 8 + j] = (r * 7 + j * 13 + 1) % vocab;
    d.setTable(t);
    const got = d.draft(Int32Array.of(42));
    expect(got.tokens.length).toBe(81);
    expect(Array.from(got.parents)).toEqual(Array.from(d.template.parents));
    expect(got.tokens[1]).toBe(t[42 * 8]); // rank 0 of the root row
    expect(got.tokens[9]).toBe(t[t[42 * 8]! * 8]); // [0, 0]
  });

  test('empty rows draft nothing; the official zero-initialised table drafts one chain of token 0', () => {
    const d = new TokenRecyclingDrafter({ vocab: 300 });
    const empty = d.draft(Int32Array.of(7));
    expect(Array.from(empty.tokens)).toEqual([7]);
    expect(Array.from(empty.parents)).toEqual([-1]);
    d.setTable(new Int32Array(300 * 8)); // zeros, as torch.zeros in the official code
    const zeros = d.draft(Int32Array.of(7));
    // Ranks 1..7 repeat rank 0 (token 0) and are dropped: [0], [0,0], ..., [0,0,0,0,0,0].
    expect(Array.from(zeros.tokens)).toEqual([7, 0, 0, 0, 0, 0, 0]);
    expect(Array.from(zeros.parents)).toEqual([-1, 0, 1, 2, 3, 4, 5]);
    expect(d.draft(Int32Array.of(7), 1).tokens.length).toBe(1);
    expect(d.draft(Int32Array.of(7), 1000).tokens.length).toBe(7); // clamped to the template
  });
});

describe('Token Recycling update', () => {
  for (const vocab of [5, 300, 131072]) {
    test(`rows take the float64 top-8 of each node's logits, ties to the lower id, NaN/-Infinity skipped (vocab ${vocab})`, () => {
      const rng = mulberry32(vocab + 1);
      const d = new TokenRecyclingDrafter({ vocab });
      const before = randomTable(rng, vocab, 8);
      d.setTable(before);
      // A chain whose tokens repeat (not siblings): the later node's row wins.
      const nodes = vocab === 131072 ? 81 : 12;
      const tokens = new Int32Array(nodes);
      for (let i = 0; i < nodes; i++) tokens[i] = i % 3 === 2 ? tokens[i - 2]! : Math.floor(rng() * vocab);
      const parents = Int32Array.from({ length: nodes }, (_, i) => i - 1);
      const logits = awkwardLogits(rng, nodes, vocab);
      if (vocab === 300) logits.fill(NaN, 3 * vocab, 3 * vocab + 296); // node 3: only 4 usable entries
      d.update({ tokens, parents }, logits, vocab);
      const want = before.slice();
      for (let i = 0; i < nodes; i++) want.set(referenceTopK(logits.subarray(i * vocab, (i + 1) * vocab), 8), tokens[i]! * 8);
      const got = d.table();
      const bad = got.findIndex((v, i) => v !== want[i]);
      expect(bad === -1 ? 'equal' : `entry ${bad} (row ${Math.floor(bad / 8)}): ${got[bad]} vs ${want[bad]}`).toBe('equal');
    });
  }

  test('the top-8 scan finds maxima in every block position and the tail, and ties keep the lower ids', () => {
    const vocab = 64 * 3 + 17;
    const d = new TokenRecyclingDrafter({ vocab });
    const logits = new Float32Array(vocab * 3).fill(-1);
    [0, 63, 64, 127, 150, 191, 192, 208].forEach((id, j) => (logits[id] = 10 - j)); // row 0: descending
    for (const id of [208, 3, 200, 100, 5, 64, 199, 1, 2]) logits[vocab + id] = 7; // row 1: nine ties
    logits.fill(-Infinity, 2 * vocab, 3 * vocab); // row 2: nothing usable
    logits[2 * vocab + 9] = NaN;
    d.update({ tokens: Int32Array.of(0, 1, 2), parents: Int32Array.of(-1, 0, 1) }, logits, vocab);
    const t = d.table();
    expect(Array.from(t.subarray(0, 8))).toEqual([0, 63, 64, 127, 150, 191, 192, 208]);
    expect(Array.from(t.subarray(8, 16))).toEqual([1, 2, 3, 5, 64, 100, 199, 200]);
    expect(Array.from(t.subarray(16, 24))).toEqual([-1, -1, -1, -1, -1, -1, -1, -1]);
  });

  test('updateTopK takes precomputed ids (Int32Array or BigInt64Array): -1 and repeats dropped, order kept, padded', () => {
    const d = new TokenRecyclingDrafter({ vocab: 50 });
    const tree = { tokens: Int32Array.of(3, 4), parents: Int32Array.of(-1, 0) };
    d.updateTopK(tree, Int32Array.of(9, -1, 9, 8, 7, 1, 2, 3, /* node 1 */ 5, 6, 7, 8, 9, 10, 11, 12));
    expect(Array.from(d.table().subarray(24, 40))).toEqual([9, 8, 7, 1, 2, 3, -1, -1, 5, 6, 7, 8, 9, 10, 11, 12]);
    d.updateTopK(tree, BigInt64Array.of(1n, 2n, 3n, 4n)); // k = 2 < topK
    expect(Array.from(d.table().subarray(24, 40))).toEqual([1, 2, -1, -1, -1, -1, -1, -1, 3, 4, -1, -1, -1, -1, -1, -1]);
    // The drafted tree then follows the recycled rows.
    expect(Array.from(d.draft(Int32Array.of(3)).tokens)).toEqual([3, 1, 2]);
  });

  test('the draft -> target -> update loop: a target that always predicts (t + 1) % vocab is drafted in full after one step', () => {
    const vocab = 40;
    const d = new TokenRecyclingDrafter({ vocab });
    const target = (tokens: Int32Array): Float32Array => {
      const l = new Float32Array(tokens.length * vocab);
      for (let i = 0; i < tokens.length; i++) for (let v = 0; v < vocab; v++) l[i * vocab + v] = -((v - tokens[i]! - 1 + vocab) % vocab);
      return l;
    };
    let tree = d.draft(Int32Array.of(0));
    d.update(tree, target(tree.tokens), vocab); // row 0 learnt
    tree = d.draft(Int32Array.of(0));
    expect(Array.from(tree.tokens.subarray(0, 9))).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8]);
    d.update(tree, target(tree.tokens), vocab);
    expect(d.draft(Int32Array.of(0)).tokens.length).toBeGreaterThan(9);
  });
});

describe('Token Recycling table file', () => {
  test('golden bytes: "TPTR", version 1, vocab, topK, int32 little-endian', () => {
    const d = new TokenRecyclingDrafter({ vocab: 3, topK: 2, template: [[0], [1]] });
    d.setTable(Int32Array.of(1, -1, 2, 0, -1, -1));
    const bytes = d.save();
    expect(Buffer.from(bytes).toString('hex')).toBe(
      '54505452' + '01000000' + '03000000' + '02000000' + '01000000ffffffff' + '0200000000000000' + 'ffffffffffffffff',
    );
    const back = TokenRecyclingDrafter.load(bytes, { template: [[0], [1]] });
    expect([back.vocab, back.topK]).toEqual([3, 2]);
    expect(back.table()).toEqual(d.table());
  });

  test('round trip at vocab 300 with the default template', () => {
    const d = new TokenRecyclingDrafter({ vocab: 300 });
    d.setTable(randomTable(mulberry32(9), 300, 8));
    const back = TokenRecyclingDrafter.load(d.save());
    expect(back.table()).toEqual(d.table());
    expect(back.draft(Int32Array.of(17))).toEqual(d.draft(Int32Array.of(17)));
  });

  test('bad files are TokenpressError ERR_BAD_FILE with the reason', () => {
    const good = new TokenRecyclingDrafter({ vocab: 3, topK: 2, template: [[0]] }).save();
    const bad = (mutate: (b: Uint8Array) => Uint8Array, re: RegExp) => {
      let err: unknown;
      try {
        TokenRecyclingDrafter.load(mutate(good.slice()));
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(TokenpressError);
      expect((err as TokenpressError).code).toBe('ERR_BAD_FILE');
      expect((err as Error).message).toMatch(re);
    };
    bad((b) => b.subarray(0, 10), /at least 16 bytes/);
    bad((b) => ((b[0] = 0x58), b), /magic/);
    bad((b) => ((b[4] = 2), b), /version/);
    bad((b) => b.subarray(0, b.length - 1), /expected 40 bytes/);
    bad((b) => (new DataView(b.buffer).setUint32(8, 0xffffffff, true), b), /vocab/); // a huge header, few bytes: refused before allocating
    bad((b) => ((b[12] = 65), b), /topK/);
    bad((b) => (new DataView(b.buffer).setInt32(16 + 4 * 3, 3, true), b), /entry 3 \(row 1\).*\[-1, 3\).*received 3/);
    expect(() => TokenRecyclingDrafter.load('x' as unknown as Uint8Array)).toThrow(TypeError);
  });
});

describe('Token Recycling hostile inputs', () => {
  const d = new TokenRecyclingDrafter({ vocab: 300 });
  const tree = { tokens: Int32Array.of(1, 2), parents: Int32Array.of(-1, 0) };

  test('options: vocab and topK must be integers in range; unknown options are named', () => {
    expect(() => new TokenRecyclingDrafter({ vocab: 300.5 })).toThrow(/options\.vocab: expected an integer/);
    expect(() => new TokenRecyclingDrafter({ vocab: 0 })).toThrow(RangeError);
    expect(() => new TokenRecyclingDrafter({ vocab: '300' as unknown as number })).toThrow(TypeError);
    expect(() => new TokenRecyclingDrafter({ vocab: 2 ** 25 })).toThrow(RangeError);
    expect(() => new TokenRecyclingDrafter({ vocab: 300, topK: 0 })).toThrow(/options\.topK/);
    expect(() => new TokenRecyclingDrafter({ vocab: 300, topk: 8 } as never)).toThrow(/did you mean "topK"/);
    expect(() => new TokenRecyclingDrafter(undefined as never)).toThrow(TypeError);
  });

  test('draft: context and maxNodes are checked', () => {
    expect(() => d.draft(new Int32Array(0))).toThrow(/context: expected at least one token/);
    expect(() => d.draft(Int32Array.of(1, 300))).toThrow(/context\[1\]: expected a token in \[0, 300\)/);
    expect(() => d.draft(Int32Array.of(-1))).toThrow(RangeError);
    expect(() => d.draft([1, 2] as unknown as Int32Array)).toThrow(TypeError);
    expect(() => d.draft(Int32Array.of(1), 0)).toThrow(/maxNodes/);
    expect(() => d.draft(Int32Array.of(1), 1.5)).toThrow(/maxNodes/);
  });

  test('update: wrong lengths, vocab of another table, bad trees are refused and the table is unchanged', () => {
    d.setTable(randomTable(mulberry32(3), 300, 8));
    const before = d.table();
    expect(() => d.update(tree, new Float32Array(599), 300)).toThrow(/logits: expected 2 \* 300 = 600 floats/);
    expect(() => d.update(tree, new Float64Array(600) as unknown as Float32Array, 300)).toThrow(TypeError);
    expect(() => d.update(tree, new Float32Array(602), 301)).toThrow(/vocab: expected the drafter's vocab 300, received 301/);
    expect(() => d.update(tree, new Float32Array(600), 299.5)).toThrow(/vocab: expected an integer/);
    expect(() => d.update({ tokens: Int32Array.of(1, 300), parents: Int32Array.of(-1, 0) }, new Float32Array(600), 300)).toThrow(
      /tree\.tokens\[1\]: expected a token in \[0, 300\)/,
    );
    expect(() => d.update({ tokens: Int32Array.of(1, 2), parents: Int32Array.of(-1) }, new Float32Array(600), 300)).toThrow(/tree\.parents/);
    expect(() => d.updateTopK(tree, Int32Array.of(1, 2, 3))).toThrow(/ids: expected \[nodes, k\]/);
    expect(() => d.updateTopK(tree, Int32Array.of(1, 2, 3, 300))).toThrow(/ids\[1\]\[1\]: expected a token in \[-1, 300\)/);
    expect(() => d.updateTopK(tree, BigInt64Array.of(1n, 2n, 3n, 2n ** 40n))).toThrow(/ids\[3\]/);
    expect(() => d.updateTopK(tree, new Int32Array(18))).toThrow(RangeError); // k = 9 > topK
    expect(d.table()).toEqual(before);
  });

  test('setTable: a table of another vocab or with out-of-range entries is refused whole', () => {
    const before = d.table();
    expect(() => d.setTable(new Int32Array(301 * 8))).toThrow(/table: expected 300 \* 8 = 2400 entries/);
    const t = new Int32Array(300 * 8);
    t[2399] = 300;
    expect(() => d.setTable(t)).toThrow(/table\[2399\]: expected a token in \[-1, 300\)/);
    expect(() => d.setTable(new Float32Array(2400) as unknown as Int32Array)).toThrow(TypeError);
    expect(d.table()).toEqual(before);
  });

  test('the native calls re-check lengths, indices and aliasing (errors, no crash)', () => {
    const n = native();
    const table = new Int32Array(10 * 2).fill(-1);
    const parents = Int32Array.of(-1, 0);
    const ranks = Int32Array.of(-1, 0);
    const out = () => ({ outTokens: new Int32Array(2), outParents: new Int32Array(2) });
    const base = { table, vocab: 10, topK: 2, parents, ranks, root: 1, maxNodes: 2 };
    expect(n.trDraft({ ...base, ...out() })).toBe(1);
    expect(() => n.trDraft({ ...base, ...out(), table: new Int32Array(19) })).toThrow(/table: expected vocab \* topK = 20/);
    expect(() => n.trDraft({ ...base, ...out(), root: 10 })).toThrow(/root/);
    expect(() => n.trDraft({ ...base, ...out(), maxNodes: 3 })).toThrow(/outTokens: expected at least maxNodes = 3 entries/);
    expect(() => n.trDraft({ ...base, ...out(), ranks: Int32Array.of(-1, 2) })).toThrow(/template\.ranks\[1\]/);
    expect(() => n.trDraft({ ...base, ...out(), parents: Int32Array.of(-1, 1) })).toThrow(/template\.parents\[1\]/);
    expect(() => n.trDraft({ ...base, ...out(), ranks: Int32Array.of(-1) })).toThrow(/ranks: expected 2 entries/);
    expect(() => n.trDraft({ ...base, ...out(), topK: 65, table: new Int32Array(650) })).toThrow(/topK/);
    const bad = table.slice();
    bad[2] = 1 << 30; // a corrupted slot of row 1 would index far outside the table
    expect(() => n.trDraft({ ...base, ...out(), table: bad })).toThrow(/table\[1\]\[0\]: expected a token in \[-1, 10\)/);
    expect(() => n.trDraft({ ...base, outTokens: table.subarray(0, 2), outParents: new Int32Array(2) })).toThrow(/shares no memory/);
    const tokens = Int32Array.of(1, 2);
    expect(() => n.trUpdate({ table, vocab: 10, topK: 2, tokens, logits: new Float32Array(19) })).toThrow(/logits: expected nodes \* vocab = 20/);
    expect(() => n.trUpdate({ table, vocab: 10, topK: 2, tokens, ids: new Int32Array(4), idsK: 3 })).toThrow(/ids/);
    expect(() => n.trUpdate({ table, vocab: 10, topK: 2, tokens: Int32Array.of(1, 10), ids: new Int32Array(4), idsK: 2 })).toThrow(/tree\.tokens\[1\]/);
    expect(() => n.trUpdate({ table, vocab: 10, topK: 2, tokens, logits: new Float32Array(20), ids: new Int32Array(4), idsK: 2 } as never)).toThrow(
      /exactly one of logits or ids/,
    );
    expect(() => n.trUpdate({ table, vocab: 10, topK: 2, tokens: table.subarray(0, 2), ids: new Int32Array(4), idsK: 2 })).toThrow(/shares no memory/);
    expect(Array.from(table)).toEqual(new Array(20).fill(-1));
  });
});

describe('prompt lookup', () => {
  const pl = new PromptLookupDrafter();
  const draft = (ctx: number[], maxNodes?: number) => Array.from(pl.draft(Int32Array.from(ctx), maxNodes).tokens);

  test('the earliest match of the last 3 tokens wins; the chain starts at the root', () => {
    //           0  1  2  3   4  5  6  7   8  9 10 11
    const ctx = [1, 2, 3, 9, 1, 2, 3, 8, 5, 1, 2, 3];
    expect(draft(ctx)).toEqual([3, 9, 1, 2, 3, 8, 5, 1, 2, 3]); // from index 3 to the end (9 tokens)
    const t = pl.draft(Int32Array.from(ctx));
    expect(Array.from(t.parents)).toEqual([-1, 0, 1, 2, 3, 4, 5, 6, 7, 8]);
  });

  test('n-gram fallback 3 -> 2 -> 1', () => {
    expect(draft([7, 2, 3, 4, 1, 2, 3])).toEqual([3, 4, 1, 2, 3]); // [1,2,3] never earlier; [2,3] at 1
    expect(draft([5, 3, 6, 9, 8, 3])).toEqual([3, 6, 9, 8, 3]); // only [3] matches, at 1
    expect(draft([5, 3, 6, 3, 8, 3])).toEqual([3, 6, 3, 8, 3]); // earliest of the two 1-gram matches
  });

  test('no match -> the root alone; a one-token context -> the root alone', () => {
    expect(draft([1, 2, 3, 4])).toEqual([4]);
    expect(draft([4])).toEqual([4]);
  });

  test('at most 10 tokens (maxTokens), and at most maxNodes - 1', () => {
    const ctx = [...Array.from({ length: 30 }, (_, i) => i + 100), 100];
    expect(draft(ctx)).toEqual([100, ...Array.from({ length: 10 }, (_, i) => i + 101)]);
    expect(draft(ctx, 4)).toEqual([100, 101, 102, 103]);
    expect(draft(ctx, 1)).toEqual([100]);
    expect(Array.from(new PromptLookupDrafter({ maxTokens: 3 }).draft(Int32Array.from(ctx)).tokens)).toEqual([100, 101, 102, 103]);
  });

  test('a match may overlap the tail (transformers rule): [7, 7, 7, 7] proposes [7]', () => {
    expect(draft([7, 7, 7, 7])).toEqual([7, 7]);
    expect(draft([4, 4])).toEqual([4, 4]);
  });

  test('matches the brute-force reference on random small-alphabet contexts', () => {
    const rng = mulberry32(77);
    for (let trial = 0; trial < 300; trial++) {
      const len = 1 + Math.floor(rng() * 60);
      const alpha = 2 + Math.floor(rng() * 6);
      const ctx = Array.from({ length: len }, () => Math.floor(rng() * alpha));
      const maxNgram = 1 + Math.floor(rng() * 4);
      const got = Array.from(new PromptLookupDrafter({ maxNgram }).lookup(Int32Array.from(ctx)));
      expect(got).toEqual(referencePromptLookup(ctx, maxNgram, 10));
    }
  });

  test('bad options and contexts are refused by name', () => {
    expect(() => new PromptLookupDrafter({ maxNgram: 0 })).toThrow(/options\.maxNgram/);
    expect(() => new PromptLookupDrafter({ maxTokens: 2.5 })).toThrow(/options\.maxTokens/);
    expect(() => new PromptLookupDrafter({ maxNGram: 2 } as never)).toThrow(/did you mean "maxNgram"/);
    expect(() => pl.draft(new Int32Array(0))).toThrow(/context/);
    expect(() => pl.draft(Int32Array.of(1), 0)).toThrow(/maxNodes/);
  });
});

describe('callback drafter', () => {
  const ctx = Int32Array.of(4, 5, 6);

  test('wraps a function; plain arrays become Int32Array; maxNodes is passed on', () => {
    let seen = 0;
    const d = callbackDrafter('mine', (c, maxNodes) => {
      seen = maxNodes;
      return { tokens: [c[c.length - 1]!, 7, 8, 9], parents: [-1, 0, 0, 1] };
    }, { vocab: 10 });
    expect(d.name).toBe('mine');
    const t = d.draft(ctx, 5);
    expect(seen).toBe(5);
    expect(t.tokens).toBeInstanceOf(Int32Array);
    expect(Array.from(t.tokens)).toEqual([6, 7, 8, 9]);
    expect(Array.from(t.parents)).toEqual([-1, 0, 0, 1]);
    expect(d.update).toBeUndefined();
  });

  test('every malformed result is refused with an error naming the drafter and the field', () => {
    const run = (result: unknown, maxNodes?: number) => callbackDrafter('mine', () => result as never, { vocab: 10 }).draft(ctx, maxNodes);
    expect(() => run({ tokens: [6, 10], parents: [-1, 0] })).toThrow(/drafter "mine" result\.tokens\[1\]: expected a token in \[0, 10\), received 10/);
    expect(() => run({ tokens: [6, 1], parents: [0, 0] })).toThrow(/result\.parents\[0\]: expected -1/);
    expect(() => run({ tokens: [6, 1, 2], parents: [-1, 0, 2] })).toThrow(/result\.parents\[2\]: expected a parent index in \[0, 2\)/);
    expect(() => run({ tokens: [6, 1], parents: [-1] })).toThrow(/result\.parents: expected 2 entries/);
    expect(() => run({ tokens: [6, 1, 1], parents: [-1, 0, 0] })).toThrow(/result\.tokens\[2\]: expected a token distinct from its sibling/);
    expect(() => run({ tokens: [5, 1], parents: [-1, 0] })).toThrow(/result\.tokens\[0\]: expected the root = the context's last token 6/);
    expect(() => run({ tokens: [6, 1, 2], parents: [-1, 0, 1] }, 2)).toThrow(/at most maxNodes = 2 nodes/);
    expect(() => run({ tokens: [6, 1.5], parents: [-1, 0] })).toThrow(/result\.tokens\[1\]: expected an int32 integer/);
    expect(() => run({ tokens: new Float32Array(2), parents: [-1, 0] })).toThrow(TypeError);
    expect(() => run({ tokens: [], parents: [] })).toThrow(/at least the root/);
    expect(() => run(null)).toThrow(/drafter "mine" result: expected an object/);
    expect(() => run(Promise.resolve({}))).toThrow(/synchronous/);
  });

  test('bad arguments are named; update is validated then passed on', () => {
    expect(() => callbackDrafter('', () => ({ tokens: [], parents: [] }))).toThrow(/name/);
    expect(() => callbackDrafter('x', 3 as never)).toThrow(/fn: expected a function/);
    expect(() => callbackDrafter('x', () => ({ tokens: [], parents: [] }), { vocab: 1.5 })).toThrow(/options\.vocab/);
    expect(() => callbackDrafter('x', () => ({ tokens: [], parents: [] }), { updat: 1 } as never)).toThrow(/did you mean "update"/);
    const calls: number[] = [];
    const d = callbackDrafter('x', (c) => ({ tokens: [c[c.length - 1]!], parents: [-1] }), { update: (t, _l, v) => calls.push(t.tokens.length, v) });
    d.update!({ tokens: Int32Array.of(1), parents: Int32Array.of(-1) }, new Float32Array(3), 3);
    expect(calls).toEqual([1, 3]);
    expect(() => d.update!({ tokens: Int32Array.of(1), parents: Int32Array.of(0) }, new Float32Array(3), 3)).toThrow(/tree\.parents\[0\]/);
  });

  test('checkDraftTree checks vocab itself', () => {
    expect(() => checkDraftTree({ tokens: Int32Array.of(1), parents: Int32Array.of(-1) }, 2.5)).toThrow(/vocab: expected an integer/);
    const t = { tokens: Int32Array.of(1), parents: Int32Array.of(-1) };
    expect(checkDraftTree(t, 2)).toBe(t); // Int32Array fields are returned as they are
  });
});
