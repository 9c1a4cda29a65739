/**
 * `tokenpress generate`: text from a built-in byte-level transformer
 * (models/lm/main or draft) or a directory export.py wrote, with tokenpress
 * attention over a KvCache (optionally compressed by a policy as it grows)
 * or ORT's plain past_key_values graph (--plain). Prints the text, prefill and
 * decode tokens/s, and the cache's memory against a full cache.
 */
import { Command, InvalidArgumentError } from 'commander';
import { intArg } from './int-arg.js';
import { KV_POLICY_NAMES } from '../kv/policies.js';
import { KV_CACHE_POLICY_NAMES } from '../kv/compression.js';
import type { KvCacheDtype } from '../kv/cache.js';
import { ByteLm, cardTrainingSteps } from '../model/byte-lm.js';
import { generate, type GenerateResult } from '../model/generate.js';

export const DEFAULT_PROMPT = 'ABANDON, v. t. To give up wholly; to forsake. ';

const POLICIES: readonly string[] = [...KV_POLICY_NAMES, ...KV_CACHE_POLICY_NAMES];
const DTYPES: readonly KvCacheDtype[] = ['f32', 'f16', 'int8', 'int4'];


function temperatureArg(value: string): number {
  const t = Number(value);
  if (value.trim() === '' || !Number.isFinite(t) || t < 0) throw new InvalidArgumentError(`--temperature: expected a number >= 0 (0 = greedy), received "${value}"`);
  return t;
}

function budgetArg(value: string): number {
  const s = value.trim();
  const b = s.endsWith('%') ? Number(s.slice(0, -1)) / 100 : Number(s);
  if (s === '' || !Number.isFinite(b) || b <= 0 || (b >= 1 && !Number.isInteger(b))) {
    throw new InvalidArgumentError(`--budget: expected tokens per head to keep (an integer >= 1) or a fraction of the prompt in (0, 1) (or a percentage like 25%), received "${value}"`);
  }
  return b;
}

function policyArg(value: string): string {
  if (!POLICIES.includes(value)) throw new InvalidArgumentError(`--policy: expected one of ${POLICIES.join(', ')}, received "${value}"`);
  return value;
}

function dtypeArg(value: string): KvCacheDtype {
  if (!(DTYPES as readonly string[]).includes(value)) throw new InvalidArgumentError(`--cache-dtype: expected one of ${DTYPES.join(', ')}, received "${value}"`);
  return value as KvCacheDtype;
}

interface GenerateFlags {
  model: string;
  prompt: string;
  maxTokens: number;
  temperature: number;
  topK: number;
  seed: number;
  policy?: string;
  budget?: number;
  interval: number;
  cacheDtype?: KvCacheDtype;
  plain?: boolean;
  threads: number;
  json?: boolean;
}

const KiB = (n: number) => `${(n / 1024).toFixed(1)} KiB`;

/** The lines after the text: speed and memory. */
export function formatGenerateStats(r: GenerateResult): string {
  const lines = [
    `prefill: ${r.prefill.tokens} bytes in ${r.prefill.ms.toFixed(1)} ms (${r.prefill.tokensPerSecond.toFixed(0)} tokens/s); ` +
      `decode: ${r.decode.tokens} steps in ${r.decode.ms.toFixed(1)} ms (${r.decode.tokensPerSecond.toFixed(0)} tokens/s)`,
  ];
  const m = r.memory;
  if (r.path === 'plain') {
    lines.push(`cache: ORT past_key_values f32, ${m.tokensSeen} tokens, ${KiB(m.bytes)}`);
  } else {
    const policy = m.policy !== undefined ? `${m.policy} keep ${m.keep} (+ interval ${m.interval})` : 'no policy';
    lines.push(
      `cache: ${r.cacheDtype}, ${policy}: ${m.tokensKept} of ${m.tokensSeen} tokens per head kept, ${KiB(m.bytes)} ` +
        `vs ${KiB(m.fullBytes)} for every token (${((m.bytes / m.fullBytes) * 100).toFixed(0)}%)`,
    );
  }
  return lines.join('\n');
}

export async function runGenerate(flags: GenerateFlags): Promise<GenerateResult> {
  const model = await ByteLm.load(flags.model, { threads: flags.threads, plain: flags.plain === true, stages: flags.plain !== true });
  try {
    const decoder = new TextDecoder('utf-8');
    const stream = flags.json !== true;
    const r = await generate(model, flags.prompt, {
      maxTokens: flags.maxTokens,
      temperature: flags.temperature,
      topK: flags.topK,
      seed: flags.seed,
      interval: flags.interval,
      ...(flags.policy !== undefined ? { policy: flags.policy as never } : {}),
      ...(flags.budget !== undefined ? { budget: flags.budget } : {}),
      ...(flags.cacheDtype !== undefined ? { cacheDtype: flags.cacheDtype } : {}),
      ...(flags.plain === true ? { plain: true } : {}),
      ...(stream ? { onToken: (b: number) => process.stdout.write(decoder.decode(Uint8Array.of(b), { stream: true })) } : {}),
    });
    if (stream) {
      process.stdout.write(decoder.decode() + '\n\n');
      const step = cardTrainingSteps(model.card);
      console.log(`model ${model.config.name} (${(model.parameters / 1e6).toFixed(2)}M parameters${step !== undefined ? `, ${String(step)} training steps` : ''}), ` +
        `${r.path === 'plain' ? "ORT's plain graph" : 'tokenpress attention'}, onnxruntime-node ${model.ortVersion} (${model.runner} run), seed ${r.seed}`);
      console.log(formatGenerateStats(r));
    } else {
      console.log(JSON.stringify({ model: model.config.name, dir: model.dir, ...r, tokens: Array.from(r.tokens) }, null, 2));
    }
    return r;
  } finally {
    await model.release();
  }
}

export function registerGenerate(program: Command): void {
  program
    .command('generate')
    .description(
      'Generate text with the built-in byte-level transformer (models/lm/main or draft): tokenpress attention over a KvCache ' +
        '(optionally compressed by a policy as it grows) or ORT\'s plain graph; prints the text, tokens/s and the cache\'s memory.',
    )
    .option('--model <name-or-dir>', 'main, draft, or a directory export.py wrote', 'main')
    .option('--prompt <text>', 'the prompt (UTF-8)', DEFAULT_PROMPT)
    .option('--max-tokens <n>', 'bytes to generate', intArg('--max-tokens', 1, 1 << 20), 128)
    .option('--temperature <t>', 'sampling temperature; 0 = greedy', temperatureArg, 0.8)
    .option('--top-k <k>', 'sample among the k most likely bytes; 0 = all', intArg('--top-k', 0, 256), 40)
    .option('--seed <s>', 'sampler seed (the same seed gives the same text)', intArg('--seed', 0, 0xffffffff), 1)
    .option('--policy <name>', `keep the cache under --budget with this policy (${POLICIES.join(', ')})`, policyArg)
    .option('--budget <n-or-fraction>', 'tokens per head to keep, or a fraction (or %) of the prompt', budgetArg)
    .option('--interval <n>', 'compress a layer once a head holds budget + interval tokens', intArg('--interval', 1, 1 << 30), 64)
    .option('--cache-dtype <dtype>', `the KvCache's dtype (${DTYPES.join(', ')}; default f16)`, dtypeArg)
    .option('--plain', "ORT's plain graph with its own attention over f32 past_key_values")
    .option('--threads <n>', 'ORT intra-op threads per graph', intArg('--threads', 1, 256), 1)
    .option('--json', 'print a JSON report instead of the text and stats')
    .action(async (flags: GenerateFlags) => {
      if (flags.policy !== undefined && flags.budget === undefined) throw new InvalidArgumentError('--policy needs --budget (tokens per head, or a fraction of the prompt)');
      if (flags.budget !== undefined && flags.policy === undefined) throw new InvalidArgumentError('--budget needs --policy');
      if (flags.plain && (flags.policy !== undefined || (flags.cacheDtype !== undefined && flags.cacheDtype !== 'f32'))) {
        throw new InvalidArgumentError('--plain runs ORT\'s graph over f32 past_key_values: it takes no --policy and no --cache-dtype other than f32');
      }
      await runGenerate(flags);
    });
}
