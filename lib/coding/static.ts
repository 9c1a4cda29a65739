/**
 * Plain whole-document coding with a frozen built-in model (no windows): the
 * model sees the document's preceding maxOrder bytes. The payload has no
 * length of its own; keep the length (the .tpz container does).
 */
import { checkInteger } from '../validate.js';
import { typeError } from '../errors.js';
import { native } from '../native.js';
import { ByteModel } from './model.js';
import { toBytes } from './tokenizer.js';

const DEFAULT_MAX_BYTES = 2 ** 32;

function modelArg(model: unknown): ByteModel {
  if (!(model instanceof ByteModel)) throw typeError('model', 'a ByteModel', model);
  return model;
}

function docsArg(docs: unknown): Uint8Array[] {
  if (!Array.isArray(docs)) throw typeError('docs', 'an array of strings or Uint8Arrays', docs);
  return docs.map((d, i) => toBytes(`docs[${i}]`, d));
}

function payloadsArg(payloads: unknown, lengths: unknown): { payloads: Uint8Array[]; lengths: number[] } {
  if (!Array.isArray(payloads)) throw typeError('payloads', 'an array of Uint8Arrays', payloads);
  if (!Array.isArray(lengths) || lengths.length !== payloads.length) {
    throw typeError('lengths', `an array of ${payloads.length} lengths (one per payload)`, lengths);
  }
  payloads.forEach((p, i) => {
    if (!(p instanceof Uint8Array)) throw typeError(`payloads[${i}]`, 'a Uint8Array', p);
  });
  return {
    payloads: payloads as Uint8Array[],
    lengths: lengths.map((n, i) => checkInteger(`lengths[${i}]`, n, 0, DEFAULT_MAX_BYTES)),
  };
}

/** Compresses one document. */
export function compressStatic(model: ByteModel, data: string | Uint8Array): Uint8Array {
  return native().staticEncode({ model: modelArg(model).handle, docs: [toBytes('data', data)] })[0]!;
}

/** Decompresses exactly `length` bytes; throws a RangeError for a payload this model did not write. */
export function decompressStatic(model: ByteModel, payload: Uint8Array, length: number): Uint8Array {
  const p = payloadsArg([payload], [length]);
  return native().staticDecode({ model: modelArg(model).handle, ...p, maxBytes: DEFAULT_MAX_BYTES })[0]!;
}

/** Many documents in parallel, off the event loop. */
export function compressStaticBatchAsync(model: ByteModel, docs: readonly (string | Uint8Array)[]): Promise<Uint8Array[]> {
  return native().staticEncodeAsync({ model: modelArg(model).handle, docs: docsArg(docs) });
}

export function decompressStaticBatchAsync(model: ByteModel, payloads: readonly Uint8Array[], lengths: readonly number[]): Promise<Uint8Array[]> {
  const p = payloadsArg(payloads, lengths);
  return native().staticDecodeAsync({ model: modelArg(model).handle, ...p, maxBytes: DEFAULT_MAX_BYTES });
}
