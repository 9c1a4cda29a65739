/**
 * The public English corpus the default byte model is trained on, from
 * Debian packages (fetched with `apt-get download`, unpacked with dpkg-deb):
 *
 *   dict-gcide  GCIDE 0.48 (the GNU Collaborative International Dictionary
 *               of English), /usr/share/dictd/gcide.dict.dz (gzip-compatible)
 *   fortunes    the fortune cookie text files of /usr/share/games/fortunes/
 *               (every regular file but *.dat, sorted by name; symlinks skipped)
 *
 * Corpus = the gcide text, then the fortunes files, in that fixed order. It
 * is split into 64 KiB blocks; block i is held out when i % 7 == 6, else it
 * goes to training (about 1/7 held out). Training never sees the held-out
 * split. Everything is cached under .corpus/ at the repository root.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gunzipSync } from 'node:zlib';

export const CORPUS_BLOCK = 64 * 1024;
export const CORPUS_HOLDOUT_EVERY = 7; // block i held out when i % 7 == 6

export interface Corpus {
  trainPath: string;
  heldOutPath: string;
  description: string;
  trainBytes: number;
  heldOutBytes: number;
}

export interface CorpusOptions {
  /** Cache directory (default <repo>/.corpus). */
  cacheDir?: string;
  /** Progress messages (default: none). */
  log?: (message: string) => void;
}

/** The repository root (the directory with package.json next to binding.gyp). */
export function repoRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (existsSync(join(dir, 'package.json')) && existsSync(join(dir, 'binding.gyp'))) return dir;
    const up = dirname(dir);
    if (up === dir) throw new Error('corpus: cannot find the repository root (package.json next to binding.gyp)');
    dir = up;
  }
}

const PACKAGES = ['dict-gcide', 'fortunes'] as const;

/** The cached .deb of `pkg` in `dir` (the first by name), if any. */
export function debFor(dir: string, pkg: string): string | undefined {
  const name = readdirSync(dir).filter((f) => f.startsWith(`${pkg}_`) && f.endsWith('.deb')).sort()[0];
  return name === undefined ? undefined : join(dir, name);
}

/**
 * `apt-get download` of every package in `packages` that has no .deb in
 * `debDir` yet (one `apt-get update` and a retry on failure). Shared by the
 * coding corpus and the vision eval's images (lib/vision/eval/images.ts).
 */
export function aptDownload(debDir: string, packages: readonly string[], log: (m: string) => void): void {
  if (packages.every((p) => debFor(debDir, p) !== undefined)) return;
  const run = () => execFileSync('apt-get', ['download', ...packages], { cwd: debDir, stdio: 'pipe' });
  try {
    log(`apt-get download ${packages.join(' ')}`);
    run();
  } catch {
    log('apt-get download failed; running apt-get update, then retrying');
    execFileSync('apt-get', ['update'], { stdio: 'pipe' });
    run();
  }
}

/** The Version field of a .deb (dpkg-deb -f). */
export function debVersion(deb: string): string {
  return execFileSync('dpkg-deb', ['-f', deb, 'Version'], { encoding: 'utf8' }).trim();
}

/** Splits text into 64 KiB blocks, every 7th (i % 7 == 6) held out. */
export function splitCorpus(text: Uint8Array): { train: Uint8Array; heldOut: Uint8Array } {
  const nBlocks = Math.ceil(text.length / CORPUS_BLOCK);
  let heldBytes = 0;
  for (let i = CORPUS_HOLDOUT_EVERY - 1; i < nBlocks; i += CORPUS_HOLDOUT_EVERY) {
    heldBytes += Math.min(CORPUS_BLOCK, text.length - i * CORPUS_BLOCK);
  }
  const train = new Uint8Array(text.length - heldBytes);
  const heldOut = new Uint8Array(heldBytes);
  let t = 0;
  let h = 0;
  for (let i = 0; i < nBlocks; i++) {
    const block = text.subarray(i * CORPUS_BLOCK, Math.min(text.length, (i + 1) * CORPUS_BLOCK));
    if (i % CORPUS_HOLDOUT_EVERY === CORPUS_HOLDOUT_EVERY - 1) {
      heldOut.set(block, h);
      h += block.length;
    } else {
      train.set(block, t);
      t += block.length;
    }
  }
  return { train, heldOut };
}

/** Fetches, unpacks and splits the corpus once; later calls read the cache. */
export async function ensureCorpus(opts: CorpusOptions = {}): Promise<Corpus> {
  const cache = opts.cacheDir ?? join(repoRoot(), '.corpus');
  const log = opts.log ?? (() => {});
  const trainPath = join(cache, 'train.txt');
  const heldOutPath = join(cache, 'heldout.txt');
  const manifestPath = join(cache, 'corpus.json');
  if (existsSync(trainPath) && existsSync(heldOutPath) && existsSync(manifestPath)) {
    const saved = JSON.parse(readFileSync(manifestPath, 'utf8')) as Corpus;
    return { ...saved, trainPath, heldOutPath };
  }
  const debDir = join(cache, 'debs');
  const root = join(cache, 'root');
  mkdirSync(debDir, { recursive: true });
  aptDownload(debDir, PACKAGES, log);
  const versions: string[] = [];
  for (const pkg of PACKAGES) {
    const deb = debFor(debDir, pkg)!;
    versions.push(`${pkg} ${debVersion(deb)}`);
    log(`dpkg-deb -x ${deb}`);
    execFileSync('dpkg-deb', ['-x', deb, root], { stdio: 'pipe' });
  }
  const parts: Uint8Array[] = [gunzipSync(readFileSync(join(root, 'usr/share/dictd/gcide.dict.dz')))];
  const fortuneDir = join(root, 'usr/share/games/fortunes');
  const names = readdirSync(fortuneDir).filter((f) => !f.endsWith('.dat')).sort();
  let nFortunes = 0;
  for (const name of names) {
    const path = join(fortuneDir, name);
    const st = lstatSync(path);
    if (!st.isFile()) continue; // symlinks (*.u8) and directories
    parts.push(readFileSync(path));
    nFortunes++;
  }
  const total = parts.reduce((n, p) => n + p.length, 0);
  const text = new Uint8Array(total);
  let at = 0;
  for (const p of parts) {
    text.set(p, at);
    at += p.length;
  }
  const { train, heldOut } = splitCorpus(text);
  writeFileSync(trainPath, train);
  writeFileSync(heldOutPath, heldOut);
  const corpus: Corpus = {
    trainPath,
    heldOutPath,
    description:
      `Debian ${versions.join(', ')}: GCIDE 0.48 dictionary text then ${nFortunes} fortunes files (${total} bytes); ` +
      `64 KiB blocks, block i held out when i % 7 == 6`,
    trainBytes: train.length,
    heldOutBytes: heldOut.length,
  };
  writeFileSync(manifestPath, JSON.stringify(corpus, null, 2) + '\n');
  return corpus;
}
