/** Errors thrown by tokenpress. Argument errors are plain TypeError/RangeError. */

export type TokenpressErrorCode =
  | 'ERR_NATIVE_LOAD'
  | 'ERR_NATIVE'
  | 'ERR_UNSUPPORTED'
  | 'ERR_CACHE_BUSY'
  | 'ERR_BAD_FILE'
  | 'ERR_OUT_OF_MEMORY'
  | 'ERR_CUDA'
  | 'ERR_NO_CUDA'
  | 'ERR_THREADS'
  | 'ERR_OUTPUT_CHANGED'
  | 'ERR_ORT_MISSING'
  | 'ERR_RELEASED'
  | 'ERR_INVALID_STATE';

/** An error that is not about one argument, with a stable `code`. */
export class TokenpressError extends Error {
  readonly code: TokenpressErrorCode;
  constructor(code: TokenpressErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'TokenpressError';
    this.code = code;
  }
}

/** Short, safe description of any value for error messages. */
export function describe(value: unknown): string {
  if (value === null) return 'null';
  if (value === undefined) return 'undefined';
  if (typeof value === 'number') return Number.isNaN(value) ? 'NaN' : String(value);
  if (typeof value === 'string') return JSON.stringify(value.length > 40 ? value.slice(0, 40) + '…' : value);
  if (typeof value === 'bigint') return `${value}n`;
  if (typeof value === 'boolean' || typeof value === 'symbol') return String(value);
  if (typeof value === 'function') return 'a function';
  if (Array.isArray(value)) return `an array of length ${value.length}`;
  if (ArrayBuffer.isView(value)) {
    const name = value.constructor.name;
    const len = 'length' in value ? (value as unknown as { length: number }).length : value.byteLength;
    return `${name}(${len})`;
  }
  if (value instanceof ArrayBuffer) return `ArrayBuffer(${value.byteLength})`;
  const name = (value as object).constructor?.name;
  return name && name !== 'Object' ? `a ${name}` : 'an object';
}

/** The one message template: `<arg>: expected <what>, received <got>`. */
export function argMessage(arg: string, expected: string, received: unknown): string {
  return `${arg}: expected ${expected}, received ${describe(received)}`;
}

export function typeError(arg: string, expected: string, received: unknown): TypeError {
  return new TypeError(argMessage(arg, expected, received));
}

export function rangeError(arg: string, expected: string, received: unknown): RangeError {
  return new RangeError(argMessage(arg, expected, received));
}
