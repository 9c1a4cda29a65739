/** Commander parsers shared by the `tokenpress` commands. */
import { InvalidArgumentError } from 'commander';

/** A flag parser for a decimal integer in [min, max]; the error names the flag and what it received. */
export function intArg(name: string, min: number, max: number) {
  return (value: string): number => {
    const n = Number(value);
    if (!/^\d+$/.test(value.trim()) || !Number.isSafeInteger(n) || n < min || n > max) {
      throw new InvalidArgumentError(`${name}: expected an integer in [${min}, ${max}], received "${value}"`);
    }
    return n;
  };
}
