/** A helper for tests of file readers that must refuse a corrupt file. */
import { expect } from 'vitest';
import { TokenpressError } from '../../lib/errors.js';

/** The message of the ERR_BAD_FILE TokenpressError that `run` throws; fails if it throws nothing or anything else. */
export function badFileMessage(run: () => unknown): string {
  try {
    run();
  } catch (e) {
    expect(e).toBeInstanceOf(TokenpressError);
    expect((e as TokenpressError).code).toBe('ERR_BAD_FILE');
    return (e as Error).message;
  }
  throw new Error('expected the file to be refused with ERR_BAD_FILE');
}
