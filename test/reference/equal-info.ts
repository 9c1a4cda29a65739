/**
 * A slow, independent reference of the Equal-Info coding spec, in exact
 * BigInt arithmetic: probabilities -> masses -> quantized frequencies ->
 * window intervals -> bits -> tokens, and back. It mirrors the written rules
 * (native/coding/quantize.h, window_coder.h, bit_io.h), not the native code.
 */

/** probabilities_to_masses: floor(p / sum * 2^30), the sum taken in index order. */
export function probabilitiesToMasses(p: ArrayLike<number>): bigint[] {
  let sum = 0;
  for (let i = 0; i < 256; i++) sum += p[i]!;
  const out: bigint[] = [];
  for (let i = 0; i < 256; i++) out.push(BigInt(Math.floor((p[i]! / sum) * 1073741824)));
  return out;
}

/** The cumulative rule of quantize.h: C_j = j + floor(P_j (T - 256) / M), P_j the mass before byte j. */
export function quantize(masses: bigint[], totalLog2: number): bigint[] {
  const total = masses.reduce((a, b) => a + b, 0n);
  const spread = (1n << BigInt(totalLog2)) - 256n;
  const cum: bigint[] = [];
  let prefix = 0n;
  for (let j = 0; j <= 256; j++) {
    cum.push(BigInt(j) + (prefix * spread) / total);
    if (j < 256) prefix += masses[j]!;
  }
  return masses.map((_, j) => cum[j + 1]! - cum[j]!);
}

export function totalLog2For(windowBits: number): number {
  return windowBits <= 16 ? 15 : 16;
}

interface Interval {
  w: bigint;
  s: bigint;
}

function fresh(windowBits: number): Interval {
  return windowBits <= 47 ? { w: 1n << BigInt(windowBits), s: 0n } : { w: 1n << 47n, s: BigInt(windowBits - 47) };
}

function renormalize(iv: Interval): void {
  while (iv.s > 0n && iv.w < 1n << 40n) {
    const k = iv.s < 8n ? iv.s : 8n;
    iv.w <<= k;
    iv.s -= k;
  }
}

function shareStart(w: bigint, c: bigint, totalLog2: number): bigint {
  return 1n + (((w - 1n) * c) >> BigInt(totalLog2));
}

export type Predict = (context: Uint8Array) => ArrayLike<number>;

/** Window values (as BigInt) of one document. */
export function encodeWindows(text: Uint8Array, windowBits: number, predict: Predict): bigint[] {
  const L = totalLog2For(windowBits);
  const windows: bigint[] = [];
  let pos = 0;
  while (pos < text.length) {
    const start = pos;
    const iv = fresh(windowBits);
    let lo = 0n;
    while (pos < text.length) {
      const f = quantize(probabilitiesToMasses(predict(text.subarray(start, pos))), L);
      const byte = text[pos]!;
      const cum = f.slice(0, byte).reduce((a, b) => a + b, 0n);
      const first = shareStart(iv.w, cum, L);
      const end = shareStart(iv.w, cum + f[byte]!, L);
      if (end === first) break;
      lo += first << iv.s;
      iv.w = end - first;
      renormalize(iv);
      pos++;
    }
    if (pos === start) throw new Error('reference: a byte does not fit a fresh window');
    windows.push(lo);
  }
  return windows;
}

/** The bytes of one window value. */
export function decodeWindow(value: bigint, windowBits: number, predict: Predict): Uint8Array {
  const L = totalLog2For(windowBits);
  const iv = fresh(windowBits);
  let d = value;
  const out: number[] = [];
  for (;;) {
    const u = d >> iv.s;
    if (u === 0n) return Uint8Array.from(out);
    const f = quantize(probabilitiesToMasses(predict(Uint8Array.from(out))), L);
    const target = ((u << BigInt(L)) - 1n) / (iv.w - 1n);
    let cum = 0n;
    let byte = 0;
    while (byte < 255 && cum + f[byte]! <= target) cum += f[byte++]!;
    const first = shareStart(iv.w, cum, L);
    const end = shareStart(iv.w, cum + f[byte]!, L);
    d -= first << iv.s;
    iv.w = end - first;
    renormalize(iv);
    out.push(byte);
  }
}

/** Window values -> tokens: windows back to back, most significant bit first, cut into t-bit tokens, zero-padded. */
export function windowsToTokens(windows: bigint[], windowBits: number, tokenBits: number): number[] {
  let bits = '';
  for (const w of windows) bits += w.toString(2).padStart(windowBits, '0');
  while (bits.length % tokenBits !== 0) bits += '0';
  const tokens: number[] = [];
  for (let i = 0; i < bits.length; i += tokenBits) tokens.push(parseInt(bits.slice(i, i + tokenBits), 2));
  return tokens;
}

export function tokensToWindows(tokens: ArrayLike<number>, windowBits: number, tokenBits: number): bigint[] {
  let bits = '';
  for (let i = 0; i < tokens.length; i++) bits += tokens[i]!.toString(2).padStart(tokenBits, '0');
  const out: bigint[] = [];
  for (let i = 0; i + windowBits <= bits.length; i += windowBits) out.push(BigInt('0b' + bits.slice(i, i + windowBits)));
  return out;
}
