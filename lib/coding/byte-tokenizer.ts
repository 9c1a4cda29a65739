/** The baseline: one token per UTF-8 byte (vocabSize 256), same interface as EqualInfoTokenizer. */
import { StatsCounter, bytesToText, toBytes, toTokenArray, type Tokenizer, type TokenizerStats } from './tokenizer.js';

export class ByteTokenizer implements Tokenizer {
  readonly vocabSize = 256;
  private readonly counter = new StatsCounter();

  get stats(): TokenizerStats {
    return this.counter.snapshot();
  }

  encode(text: string | Uint8Array): Uint16Array {
    const bytes = toBytes('text', text);
    this.counter.add(bytes.length, bytes.length);
    return Uint16Array.from(bytes);
  }

  decode(ids: Uint16Array | Uint32Array | readonly number[]): string {
    return bytesToText(this.decodeBytes(ids));
  }

  decodeBytes(ids: Uint16Array | Uint32Array | readonly number[]): Uint8Array {
    return Uint8Array.from(toTokenArray('ids', ids, 8));
  }
}
