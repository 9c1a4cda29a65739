/**
 * `tokenpress compress-prompt <file|->`: compresses a prompt with
 * LLMLingua-2's rules (lib/prompt/llmlingua2.ts) and a scorer from
 * PROMPT_SCORERS; prints the compressed text, then the statistics on stderr
 * (or everything as JSON with --json).
 */
import { readFileSync } from 'node:fs';
import { type Command, InvalidArgumentError } from 'commander';
import { compressPrompt, MAX_FORCE_TOKENS, type LLMLingua2Result } from '../prompt/llmlingua2.js';
import { PROMPT_SCORERS } from '../prompt/scorers.js';
import { TOKEN_COUNTERS } from '../prompt/tokenizers.js';
import { intArg } from './int-arg.js';

export interface CompressPromptCliOptions {
  rate?: number;
  targetTokens?: number;
  scorer: string;
  force?: string[];
  forceDigits?: boolean;
  dropConsecutive?: boolean;
  fillBudget?: boolean;
  wordProb?: 'mean' | 'first';
  countTokens: 'cl100k' | 'o200k';
  seed?: number;
  maxTokens?: number;
  json?: boolean;
}

export interface CompressPromptReport {
  file: string;
  scorer: string;
  counter: string;
  originalTokens: number;
  compressedTokens: number;
  targetRate: number | null;
  targetTokens: number | null;
  rate: number;
  words: number;
  keptWords: number;
  chunks: number;
  ms: number;
  text: string;
}

function rateArg(v: string): number {
  const n = Number(v);
  if (v.trim() === '' || !(n > 0 && n <= 1)) throw new InvalidArgumentError(`--rate: expected a number in (0, 1], received "${v}"`);
  return n;
}

/** "\n" and "\t" escapes, so a newline can be forced from a shell. */
function forceArg(v: string, prev: string[] | undefined): string[] {
  const s = v.replace(/\\n/g, '\n').replace(/\\t/g, '\t');
  if (s.length === 0) throw new InvalidArgumentError('--force: expected a non-empty string');
  const list = [...(prev ?? []), s];
  if (list.length > MAX_FORCE_TOKENS) throw new InvalidArgumentError(`--force: at most ${MAX_FORCE_TOKENS} force tokens`);
  return list;
}

/** Runs the command on `input` (the file's text); prints and returns the report. */
export async function runCompressPrompt(file: string, input: string, o: CompressPromptCliOptions): Promise<CompressPromptReport> {
  const factory = PROMPT_SCORERS[o.scorer];
  if (!factory) throw new InvalidArgumentError(`--scorer: expected one of ${Object.keys(PROMPT_SCORERS).join(', ')}, received "${o.scorer}"`);
  if (o.rate !== undefined && o.targetTokens !== undefined) throw new InvalidArgumentError('give --rate or --target-tokens, not both');
  const scorer = await factory({ ...(o.seed !== undefined ? { seed: o.seed } : {}), ...(o.maxTokens !== undefined ? { maxTokens: o.maxTokens } : {}) });
  const t0 = performance.now();
  const r: LLMLingua2Result = await compressPrompt(input, {
    scorer,
    ...(o.targetTokens !== undefined ? { targetTokens: o.targetTokens } : { rate: o.rate ?? 0.5 }),
    countTokens: TOKEN_COUNTERS[o.countTokens],
    forceTokens: o.force ?? [],
    forceReserveDigit: o.forceDigits === true,
    dropConsecutive: o.dropConsecutive === true,
    wordProb: o.wordProb ?? 'mean',
    fillBudget: o.fillBudget === true,
  });
  const ms = performance.now() - t0;
  const report: CompressPromptReport = {
    file,
    scorer: r.scorer,
    counter: o.countTokens,
    originalTokens: r.originalTokens,
    compressedTokens: r.compressedTokens,
    targetRate: o.targetTokens !== undefined ? null : o.rate ?? 0.5,
    targetTokens: o.targetTokens ?? null,
    rate: r.rate,
    words: r.words,
    keptWords: r.keptWords,
    chunks: r.chunks,
    ms,
    text: r.text,
  };
  if (o.json === true) console.log(JSON.stringify(report, null, 2));
  else {
    process.stdout.write(r.text.endsWith('\n') ? r.text : r.text + '\n');
    const target = o.targetTokens !== undefined ? `target ${o.targetTokens} tokens` : `target rate ${(o.rate ?? 0.5).toFixed(3)}`;
    console.error(
      `tokenpress compress-prompt: ${r.originalTokens} -> ${r.compressedTokens} ${o.countTokens} tokens, rate ${r.rate.toFixed(3)} ` +
        `(${target}); ${r.keptWords}/${r.words} words, ${r.chunks} chunks, scorer ${r.scorer}, ${ms.toFixed(1)} ms`,
    );
  }
  return report;
}

export function registerCompressPrompt(program: Command): void {
  program
    .command('compress-prompt')
    .description(
      "Compress a prompt with LLMLingua-2's rules (docs/prompt.md): keep the words a scorer ranks highest, weighted by target-LLM " +
        'tokens, until the rate or the token budget; prints the text, and the statistics on stderr.',
    )
    .argument('<file>', 'the prompt file, or - for stdin')
    .option('--rate <r>', 'share of target tokens to keep, in (0, 1] (default 0.5)', rateArg)
    .option('--target-tokens <n>', 'a token budget instead of a rate', intArg('--target-tokens', 1, Number.MAX_SAFE_INTEGER))
    .option('--scorer <name>', `token scorer: ${Object.keys(PROMPT_SCORERS).join(', ')}`, 'self-info')
    .option('--force <token>', 'a string always kept (repeatable; \\n for a newline)', forceArg)
    .option('--force-digits', 'keep every token that holds a digit')
    .option('--drop-consecutive', 'drop a force token repeated with nothing kept between')
    .option('--fill-budget', 'after the official rule, add the best dropped words that still fit the budget')
    .option('--word-prob <mode>', 'word score from token scores: mean or first', (v: string) => {
      if (v !== 'mean' && v !== 'first') throw new InvalidArgumentError(`--word-prob: expected mean or first, received "${v}"`);
      return v;
    })
    .option('--count-tokens <name>', 'target tokenizer: cl100k or o200k', (v: string) => {
      if (v !== 'cl100k' && v !== 'o200k') throw new InvalidArgumentError(`--count-tokens: expected cl100k or o200k, received "${v}"`);
      return v;
    }, 'cl100k')
    .option('--seed <n>', 'seed of the random scorer (default 1)', intArg('--seed', 0, 2 ** 32 - 1))
    .option('--max-tokens <n>', 'scorer tokens per chunk (default 510)', intArg('--max-tokens', 1, 1 << 20))
    .option('--json', 'print a JSON report (with the text) instead')
    .action(async (file: string, o: CompressPromptCliOptions) => {
      const input = readFileSync(file === '-' ? 0 : file, 'utf8');
      await runCompressPrompt(file, input, o);
    });
}
