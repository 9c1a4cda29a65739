// JS reference of GlobalCom2 (float64). Official: xuyang-liu16/GlobalCom2
// llava/model/llava_arch.py. Written from the official functions'
// semantics, independently of native/reduce/globalcom2.cpp.
import { topkReference } from './topk.js';

/** Crop ratios: generate_scale_for_crop_features. */
export function globalCom2ScalesReference(thumb: ArrayLike<number>, side: number, nph: number, npw: number, base: number, temperature: number): Float64Array {
  const pw = Math.max(Math.floor(side / npw), 1), ph = Math.max(Math.floor(side / nph), 1);
  const sums = new Float64Array(nph * npw);
  for (let idx = 0; idx < side * side; idx++) {
    const i = Math.floor(idx / side), j = idx % side;
    sums[Math.min(Math.floor(i / ph), nph - 1) * npw + Math.min(Math.floor(j / pw), npw - 1)]! += thumb[idx]!;
  }
  const mx = Math.max(...sums);
  const e = Array.from(sums, (s) => Math.exp((s - mx) / temperature));
  const tot = e.reduce((a, b) => a + b, 0);
  const sm = e.map((x) => x / (tot + 1e-8));
  const smSum = sm.reduce((a, b) => a + b, 0);
  if (smSum === 0) return new Float64Array(sums.length).fill(base);
  const mean = smSum / sm.length;
  return Float64Array.from(sm, (s) => Math.min(base * (1 + s - mean), 1));
}

/** F.interpolate(mode='bilinear', align_corners=False) of src [ih, iw] to [oh, ow]. */
export function bilinearReference(src: ArrayLike<number>, ih: number, iw: number, oh: number, ow: number): Float64Array {
  const out = new Float64Array(oh * ow);
  const coord = (d: number, inn: number, out_: number): [number, number, number] => {
    const s = Math.max(0, (d + 0.5) * (inn / out_) - 0.5);
    const i0 = Math.min(Math.floor(s), inn - 1);
    return [i0, Math.min(i0 + 1, inn - 1), s - i0];
  };
  for (let y = 0; y < oh; y++) {
    const [y0, y1, ly] = coord(y, ih, oh);
    for (let x = 0; x < ow; x++) {
      const [x0, x1, lx] = coord(x, iw, ow);
      const v00 = src[y0 * iw + x0]!, v01 = src[y0 * iw + x1]!, v10 = src[y1 * iw + x0]!, v11 = src[y1 * iw + x1]!;
      out[y * ow + x] = (1 - ly) * ((1 - lx) * v00 + lx * v01) + ly * ((1 - lx) * v10 + lx * v11);
    }
  }
  return out;
}

export interface GlobalCom2Ref {
  thumbKeep: Int32Array;
  ratios: Float64Array;
  /** Per crop, kept local indices ascending. */
  cropKeep: Int32Array[];
  cropScores: Float64Array;
}

export function globalCom2Reference(
  thumb: ArrayLike<number>, side: number, crops: ArrayLike<number>, nph: number, npw: number, h: number, w: number, base: number, temperature: number,
): GlobalCom2Ref {
  const thumbKeep = topkReference(thumb, Math.floor(side * side * base));
  const ratios = globalCom2ScalesReference(thumb, side, nph, npw, base, temperature);
  const gh = nph * h, gw = npw * w;
  const up = bilinearReference(thumb, side, side, gh, gw);
  const nc = h * w;
  const cropScores = new Float64Array(nph * npw * nc);
  const cropKeep: Int32Array[] = [];
  for (let c = 0; c < nph * npw; c++) {
    const ci = Math.floor(c / npw), cj = c % npw;
    const local = Array.from({ length: nc }, (_, p) => crops[c * nc + p]!);
    const glob = Array.from({ length: nc }, (_, p) => up[(ci * h + Math.floor(p / w)) * gw + cj * w + (p % w)]!);
    const ln = Math.max(Math.hypot(...local), 1e-12), gn = Math.max(Math.hypot(...glob), 1e-12);
    const s = local.map((v, p) => v / ln + glob[p]! / gn);
    cropScores.set(s, c * nc);
    cropKeep.push(topkReference(s, Math.floor(nc * ratios[c]!)));
  }
  return { thumbKeep, ratios, cropKeep, cropScores };
}
