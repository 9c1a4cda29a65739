// Runs a hardening fixture (test/fixtures/hardening-*.mjs) in a child process
// and reads its JSON lines, so that a crash or an abort of the native code
// fails the calling test instead of killing vitest.
import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'vitest';

export const FIXTURES = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'fixtures');

export interface CaseResult {
  case: string;
  outcome: 'ok' | 'threw';
  type?: string;
  message?: string;
  code?: string;
  value?: unknown;
  [k: string]: unknown;
}

export interface FixtureRun {
  status: number | null;
  signal: NodeJS.Signals | null;
  stderr: string;
  cases: CaseResult[];
  done: Record<string, unknown> | undefined;
}

export interface RunOptions {
  env?: Record<string, string>;
  /** `ulimit -v` in KiB for the child (runs it through bash). */
  ulimitV?: number;
  timeoutMs?: number;
}

/** Runs `node --expose-gc <fixture> ...args`; never throws for a crash (see expectSurvived). */
export function runFixture(fixture: string, args: string[] = [], opts: RunOptions = {}): FixtureRun {
  const script = join(FIXTURES, fixture);
  const node = [process.execPath, '--expose-gc', script, ...args];
  const env = { ...process.env, ...opts.env };
  const r = opts.ulimitV === undefined
    ? spawnSync(node[0]!, node.slice(1), { env, encoding: 'utf8', timeout: opts.timeoutMs ?? 240_000, maxBuffer: 64 << 20 })
    : spawnSync('bash', ['-c', `ulimit -v ${opts.ulimitV} && exec "$@"`, 'bash', ...node], { env, encoding: 'utf8', timeout: opts.timeoutMs ?? 240_000, maxBuffer: 64 << 20 });
  const lines = (r.stdout ?? '').split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, unknown>);
  const done = lines.find((l) => l.done === true);
  return { status: r.status, signal: r.signal, stderr: r.stderr ?? '', cases: lines.filter((l) => 'case' in l) as CaseResult[], done };
}

/** The child ran to its end: no signal (SIGSEGV, SIGABRT), exit code 0, a final { done } line. */
export function expectSurvived(run: FixtureRun): void {
  const last = run.cases.at(-1)?.case ?? '(none)';
  expect({ signal: run.signal, status: run.status, done: run.done !== undefined, lastCase: run.done ? undefined : last, stderr: run.done ? '' : run.stderr.slice(-2000) })
    .toEqual({ signal: null, status: 0, done: true, lastCase: undefined, stderr: '' });
}
