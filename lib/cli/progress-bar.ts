/**
 * The progress bar of the eval commands (cli-progress on stderr): `tick`
 * starts it on the first call; nothing is drawn when disabled or when stderr
 * is not a terminal.
 */
import cliProgress from 'cli-progress';

export interface ProgressBar {
  tick: (done: number, total: number, label: string) => void;
  stop: () => void;
}

/** A bar titled `title` ('eval kv', 'eval prompt'). */
export function makeProgressBar(title: string, enabled: boolean): ProgressBar {
  if (!enabled || !process.stderr.isTTY) return { tick: () => undefined, stop: () => undefined };
  const bar = new cliProgress.SingleBar(
    { stream: process.stderr, format: `${title} [{bar}] {value}/{total} {label}`, hideCursor: true, clearOnComplete: true },
    cliProgress.Presets.shades_classic,
  );
  let started = false;
  return {
    tick: (done, total, label) => {
      if (!started) { bar.start(total, 0, { label }); started = true; }
      bar.update(done, { label });
    },
    stop: () => { if (started) bar.stop(); },
  };
}
