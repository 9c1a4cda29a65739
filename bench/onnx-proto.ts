/**
 * A minimal ONNX ModelProto encoder: only the few protobuf fields that small
 * hand-built graphs use (nodes with float / int / ints attributes, float32 and
 * int64 initializers, typed inputs and outputs with fixed or symbolic dims),
 * so no protobuf dependency is needed. Used by bench/ort-graphs.ts (the
 * onnxruntime-node baselines) and by the tests' ONNX decoder graph
 * (test/fixtures/ort-decoder.ts). Opset 17 (plus com.microsoft 1 on request).
 */

export class Writer {
  private chunks: number[] = [];

  varint(value: number): this {
    if (!Number.isSafeInteger(value)) throw new RangeError(`varint: expected a safe integer, received ${value}`);
    // int64 fields: negatives are 10-byte two's complement varints.
    let v = BigInt.asUintN(64, BigInt(value));
    while (v >= 0x80n) {
      this.chunks.push(Number(v & 0x7fn) | 0x80);
      v >>= 7n;
    }
    this.chunks.push(Number(v));
    return this;
  }

  private key(field: number, wire: number): this {
    return this.varint(field * 8 + wire);
  }

  int(field: number, value: number): this {
    return this.key(field, 0).varint(value);
  }

  float(field: number, value: number): this {
    this.key(field, 5);
    const b = new Uint8Array(new Float32Array([value]).buffer);
    for (const x of b) this.chunks.push(x);
    return this;
  }

  bytes(field: number, data: Uint8Array): this {
    this.key(field, 2).varint(data.length);
    for (const x of data) this.chunks.push(x);
    return this;
  }

  string(field: number, s: string): this {
    return this.bytes(field, new TextEncoder().encode(s));
  }

  message(field: number, build: (w: Writer) => void): this {
    const inner = new Writer();
    build(inner);
    return this.bytes(field, inner.finish());
  }

  finish(): Uint8Array {
    return Uint8Array.from(this.chunks);
  }
}

/** ONNX TensorProto.DataType codes. */
export const ELEM = { float32: 1, int32: 6, int64: 7, float16: 10 } as const;
export type OrtElem = 'float32' | 'float16';
export type Elem = keyof typeof ELEM;
export type Dim = number | string;

export interface ValueInfo {
  name: string;
  elem: Elem;
  dims: Dim[];
}

export type AttrValue = { f: number } | { i: number } | { ints: number[] };

export interface NodeSpec {
  op: string;
  domain?: string;
  inputs: string[];
  outputs: string[];
  attrs?: Record<string, AttrValue>;
}

export interface Initializer {
  name: string;
  elem: 'int64' | 'float32';
  dims: number[];
  values: number[];
}

function writeValueInfo(w: Writer, v: ValueInfo): void {
  w.string(1, v.name);
  w.message(2, (type) =>
    type.message(1, (tensor) => {
      tensor.int(1, ELEM[v.elem]);
      tensor.message(2, (shape) => {
        for (const d of v.dims) {
          shape.message(1, (dim) => (typeof d === 'number' ? dim.int(1, d) : dim.string(2, d)));
        }
      });
    }),
  );
}

function writeNode(w: Writer, n: NodeSpec, index: number): void {
  for (const i of n.inputs) w.string(1, i);
  for (const o of n.outputs) w.string(2, o);
  w.string(3, `${n.op}_${index}`);
  w.string(4, n.op);
  for (const [name, value] of Object.entries(n.attrs ?? {})) {
    w.message(5, (a) => {
      a.string(1, name);
      if ('f' in value) a.float(2, value.f).int(20, 1); // AttributeProto.FLOAT
      else if ('i' in value) a.int(3, value.i).int(20, 2); // INT
      else {
        for (const x of value.ints) a.int(8, x);
        a.int(20, 7); // INTS
      }
    });
  }
  if (n.domain) w.string(7, n.domain);
}

function writeInitializer(w: Writer, t: Initializer): void {
  for (const d of t.dims) w.int(1, d);
  w.int(2, ELEM[t.elem]);
  w.string(8, t.name);
  const raw = t.elem === 'int64' ? new BigInt64Array(t.values.map((x) => BigInt(x))) : new Float32Array(t.values);
  w.bytes(9, new Uint8Array(raw.buffer));
}

export function encodeModel(spec: {
  name: string;
  nodes: NodeSpec[];
  inputs: ValueInfo[];
  outputs: ValueInfo[];
  initializers?: Initializer[];
  contrib?: boolean;
}): Uint8Array {
  const w = new Writer();
  w.int(1, 8); // ir_version 8 (opset 17 era)
  w.string(2, 'tokenpress-bench');
  w.message(8, (o) => o.string(1, '').int(2, 17));
  if (spec.contrib) w.message(8, (o) => o.string(1, 'com.microsoft').int(2, 1));
  w.message(7, (g) => {
    spec.nodes.forEach((n, i) => g.message(1, (nw) => writeNode(nw, n, i)));
    g.string(2, spec.name);
    for (const t of spec.initializers ?? []) g.message(5, (tw) => writeInitializer(tw, t));
    for (const v of spec.inputs) g.message(11, (vw) => writeValueInfo(vw, v));
    for (const v of spec.outputs) g.message(12, (vw) => writeValueInfo(vw, v));
  });
  return w.finish();
}
