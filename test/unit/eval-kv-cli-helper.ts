// Runs `tokenpress eval kv <args>` in-process: stdout lines and commander's
// error text captured, exits turned into exceptions (commander's exitOverride).
import { vi } from 'vitest';
import { Command } from 'commander';
import { registerEvalKv } from '../../lib/cli/eval-kv.js';

export async function evalKvCli(args: string[]): Promise<{ out: string; err: string }> {
  const logs: string[] = [];
  const errs: string[] = [];
  vi.spyOn(console, 'log').mockImplementation((...a: unknown[]) => { logs.push(a.join(' ')); });
  const program = new Command().exitOverride().configureOutput({ writeErr: (s) => errs.push(s), writeOut: (s) => logs.push(s) });
  registerEvalKv(program.command('eval').exitOverride());
  for (const c of program.commands) for (const sub of c.commands) sub.exitOverride().configureOutput({ writeErr: (s) => errs.push(s), writeOut: (s) => logs.push(s) });
  await program.parseAsync(['node', 'tokenpress', 'eval', 'kv', '--no-progress', ...args]);
  return { out: logs.join('\n'), err: errs.join('') };
}
