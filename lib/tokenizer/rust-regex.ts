/**
 * Translation of the Rust regex dialect of tokenizer pre-tokenizer patterns
 * (tiktoken: fancy-regex; HF tokenizers: Oniguruma) into a JS RegExp source
 * for the `gu` flags. Done explicitly, construct by construct, because JS
 * differs where it matters:
 *
 * - `\s` is Unicode White_Space in Rust and Oniguruma; JS's `\s` adds U+FEFF
 *   (the BOM) and lacks U+0085 (NEL). `\s` becomes the explicit White_Space
 *   class, `\S` its complement. (gpt-tokenizer keeps JS's `\s`, so it differs
 *   from tiktoken on text with a BOM or NEL.)
 * - `\d` is Unicode (`\p{Nd}`) in Rust, ASCII in JS.
 * - `(?i:...)` groups (Node 20 has no modifiers): each ASCII letter inside
 *   becomes a class of its simple case folds (`s` -> `[sSſ]`, `k` -> `[kKK]`,
 *   as Rust's Unicode-aware (?i) matches; tiktoken's cl100k treats "'ſ" as a
 *   contraction).
 * - possessive quantifiers (`++`, `*+`, `?+`, `{n,m}+`) become greedy ones.
 *   In the tokenizer patterns they only guard against backtracking that could
 *   not change the match (tiktoken added them for speed); the tests check the
 *   translated patterns against tiktoken's own pre-tokens.
 * - `\x{HH}` becomes `\u{HH}`; escaped punctuation becomes `\u{HH}` (JS's u
 *   flag refuses identity escapes such as `\'`).
 * Anything else that JS would read differently (`\w`, `\b`, nested classes,
 * inline flags other than a `(?i:` group) is refused with ERR_UNSUPPORTED.
 */
import { TokenpressError } from '../errors.js';

/** Unicode White_Space (what `\s` means to Rust's regex and to Oniguruma), as class contents. */
export const WHITE_SPACE = String.raw`\t-\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000`;

const EXTRA_FOLDS: Record<string, string> = { s: '\u017f', k: '\u212a' };

function folds(c: string): string {
  const lo = c.toLowerCase();
  return lo + lo.toUpperCase() + (EXTRA_FOLDS[lo] ?? '');
}

function unsupported(pattern: string, at: number, what: string): TokenpressError {
  return new TokenpressError('ERR_UNSUPPORTED', `pre-tokenizer regex: ${what} at offset ${at} is not supported in ${JSON.stringify(pattern.length > 80 ? pattern.slice(0, 80) + '…' : pattern)}`);
}

/** The JS RegExp source (for flags `gu`) of a Rust/Oniguruma pre-tokenizer pattern. */
export function rustRegexToJs(pattern: string): string {
  let out = '';
  let inClass = false;
  const groups: boolean[] = []; // per open group: is it a (?i: group
  let ci = 0; // open (?i: groups
  let i = 0;
  const n = pattern.length;
  const cp = (c: string): string => `\\u{${c.codePointAt(0)!.toString(16)}}`;
  while (i < n) {
    const c = pattern[i]!;
    if (c === '\\') {
      const e = pattern[i + 1];
      if (e === undefined) throw unsupported(pattern, i, 'a trailing backslash');
      i += 2;
      if (e === 's') out += inClass ? WHITE_SPACE : `[${WHITE_SPACE}]`;
      else if (e === 'S') {
        if (inClass) throw unsupported(pattern, i - 2, '\\S inside a class');
        out += `[^${WHITE_SPACE}]`;
      } else if (e === 'd') out += String.raw`\p{Nd}`;
      else if (e === 'D') {
        if (inClass) throw unsupported(pattern, i - 2, '\\D inside a class');
        out += String.raw`\P{Nd}`;
      } else if (e === 'p' || e === 'P') {
        if (pattern[i] === '{') {
          const close = pattern.indexOf('}', i);
          if (close < 0) throw unsupported(pattern, i, 'an unclosed \\p{');
          out += `\\${e}${pattern.slice(i, close + 1)}`;
          i = close + 1;
        } else if (pattern[i] !== undefined && /[A-Z]/.test(pattern[i]!)) {
          out += `\\${e}{${pattern[i]}}`;
          i++;
        } else throw unsupported(pattern, i - 2, `\\${e} without a property`);
      } else if (e === 'x' && pattern[i] === '{') {
        const close = pattern.indexOf('}', i);
        if (close < 0) throw unsupported(pattern, i, 'an unclosed \\x{');
        out += `\\u{${pattern.slice(i + 1, close)}}`;
        i = close + 1;
      } else if ('rntfv0'.includes(e)) out += `\\${e}`;
      else if (e === 'x' || e === 'u') {
        out += `\\${e}`; // \xHH, \uHHHH: same meaning in JS
      } else if (/[A-Za-z0-9]/.test(e)) throw unsupported(pattern, i - 2, `the escape \\${e}`);
      else out += cp(e); // escaped punctuation: a literal
      continue;
    }
    if (inClass) {
      if (c === ']') { inClass = false; out += c; i++; continue; }
      if (c === '[') throw unsupported(pattern, i, 'a nested class');
      if ((c === '&' && pattern[i + 1] === '&') || (c === '-' && pattern[i + 1] === '-') || (c === '~' && pattern[i + 1] === '~')) {
        throw unsupported(pattern, i, 'a class set operation');
      }
      out += ci > 0 && /[A-Za-z]/.test(c) ? folds(c) : c;
      i++;
      continue;
    }
    if (c === '[') {
      inClass = true;
      out += '[';
      i++;
      if (pattern[i] === '^') { out += '^'; i++; }
      if (pattern[i] === ']') { out += '\\]'; i++; } // a leading ] is a literal in Rust
      continue;
    }
    if (c === '(') {
      if (pattern.startsWith('(?i:', i)) { groups.push(true); ci++; out += '(?:'; i += 4; continue; }
      if (pattern[i + 1] === '?' && !/[:=!<]/.test(pattern[i + 2] ?? '')) throw unsupported(pattern, i, 'an inline flag group');
      groups.push(false);
      out += c;
      i++;
      continue;
    }
    if (c === ')') {
      if (groups.pop()) ci--;
      out += c;
      i++;
      continue;
    }
    if (c === '+' || c === '*' || c === '?' || c === '{') {
      let q = c;
      if (c === '{') {
        const m = /^\{\d+(?:,\d*)?\}/.exec(pattern.slice(i));
        if (m === null) { out += '\\{'; i++; continue; } // a literal brace
        q = m[0];
      }
      out += q;
      i += q.length;
      if (pattern[i] === '+') i++; // possessive -> greedy
      else if (pattern[i] === '?') { out += '?'; i++; } // lazy stays lazy
      continue;
    }
    if (c === '}') { out += '\\}'; i++; continue; }
    if (ci > 0 && /[A-Za-z]/.test(c)) { out += `[${folds(c)}]`; i++; continue; }
    out += c;
    i++;
  }
  if (inClass) throw unsupported(pattern, n, 'an unclosed class');
  if (groups.length > 0) throw unsupported(pattern, n, 'an unclosed group');
  return out;
}
