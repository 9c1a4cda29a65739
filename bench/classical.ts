/**
 * Classical compressors on one file, the peers of `tokenpress bench coding`:
 * gzip -9, bzip2 -9, xz -9e, zstd -19, brotli -q 11, 7-Zip's PPMd (the -mx=9
 * preset and a higher-memory order-16 model) and zpaq -m4 / -m5.
 *
 * Each tool is run as its own command line on a copy of the file in a temp
 * dir; the row gives the compressed size (bits per input byte), compression
 * and decompression speed in MB/s of the ORIGINAL size (10^6 bytes/s, wall
 * time of the child process, so process start-up is included: a few ms,
 * small against the seconds these take on multi-MB inputs) and whether the
 * decompressed bytes equal the input. Timing: one run per step; a step that
 * finished in under a second is run twice more and the median of the three
 * is kept (the slow ones are too slow to repeat, and their noise is smaller
 * than their differences). Every tool is pinned to one thread (-T1, -mmt=1,
 * -t1) so the speeds are per core, like ours.
 *
 * Missing tools are installed from Debian with apt-get when `install` is
 * true (the default) and we are root; when that is impossible or fails the
 * row has null figures and a note saying why. The 7z and zpaq sizes are
 * whole archives (a few dozen bytes of headers and the file name included).
 */
import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { closeSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';

export interface ClassicalRow {
  /** Short name, e.g. "xz -9e". */
  name: string;
  /** The compression command line as run (input file called "input"). */
  command: string;
  /** The tool's version line, when it gives one. */
  version?: string;
  /** Compressed size in bytes (whole archive for 7z/zpaq); null when skipped or failed. */
  bytes: number | null;
  /** 8 * bytes / original bytes. */
  bitsPerByte: number | null;
  /** Original bytes / compression wall time, in 10^6 bytes per second. */
  compressMBs: number | null;
  /** Original bytes / decompression wall time, in 10^6 bytes per second. */
  decompressMBs: number | null;
  /** The decompressed bytes equal the input; null when not run. */
  roundTripOk: boolean | null;
  /** Why a row is empty, or what is special about it. */
  note?: string;
}

export interface ClassicalOptions {
  /** Called with a compressor's name just before it runs. */
  onProgress?: (name: string) => void;
  /** apt-get install missing tools (needs root). Default true. */
  install?: boolean;
  /** Only these compressors (by name, as in CLASSICAL_COMPRESSORS); default all. */
  only?: readonly string[];
}

/** How to run one compressor. Output of compress is "x.<ext>"; decompress must recreate the input's bytes. */
interface Compressor {
  name: string;
  /** The executable, and the Debian package that provides it. */
  tool: string;
  pkg: string;
  /** Arguments for the version query; the first non-empty line of stdout or stderr containing a digit is kept. */
  versionArgs: string[];
  ext: string;
  /** Compress "input" (in cwd) to `archive`; stdout goes to the archive when `toStdout`. */
  compress: (archive: string) => { args: string[]; toStdout: boolean };
  /** Decompress `archive`; writes to stdout when `toStdout`, else to out/input. */
  decompress: (archive: string) => { args: string[]; toStdout: boolean };
  note?: string;
}

const stream = (tool: string, pkg: string, name: string, ext: string, level: string[], dArgs: string[] = []): Compressor => ({
  name,
  tool,
  pkg,
  versionArgs: ['--version'],
  ext,
  compress: () => ({ args: [...level, '-c', 'input'], toStdout: true }),
  decompress: (archive) => ({ args: ['-d', '-c', ...dArgs, archive], toStdout: true }),
});

const sevenZip = (name: string, method: string, note?: string): Compressor => ({
  name,
  tool: '7zz',
  pkg: '7zip',
  versionArgs: [],
  ext: '7z',
  compress: (archive) => ({ args: ['a', '-t7z', ...method.split(' '), '-mmt=1', '-bso0', '-bsp0', archive, 'input'], toStdout: false }),
  decompress: (archive) => ({ args: ['e', archive, '-oout', '-y', '-mmt=1', '-bso0', '-bsp0'], toStdout: false }),
  ...(note ? { note } : {}),
});

const zpaq = (level: number): Compressor => ({
  name: `zpaq -m${level}`,
  tool: 'zpaq',
  pkg: 'zpaq',
  versionArgs: [],
  ext: 'zpaq',
  compress: (archive) => ({ args: ['a', archive, 'input', `-m${level}`, '-t1'], toStdout: false }),
  decompress: (archive) => ({ args: ['x', archive, '-to', 'out', '-t1'], toStdout: false }),
});

/** The compressors, in table order. */
const COMPRESSORS: readonly Compressor[] = [
  stream('gzip', 'gzip', 'gzip -9', 'gz', ['-9']),
  stream('bzip2', 'bzip2', 'bzip2 -9', 'bz2', ['-9']),
  stream('xz', 'xz-utils', 'xz -9e', 'xz', ['-9e', '-T1'], ['-T1']),
  stream('zstd', 'zstd', 'zstd -19', 'zst', ['-19', '-T1', '-q'], ['-q']),
  stream('brotli', 'brotli', 'brotli -q 11', 'br', ['-q', '11']),
  sevenZip('7zz PPMd -mx=9', '-m0=PPMd -mx=9', 'the -mx=9 preset is order 32, 192 MB (-m0=PPMd:o=32:mem=192m gives the same bytes)'),
  sevenZip(
    '7zz PPMd o=16',
    '-m0=PPMd:o=16:mem=1g',
    'order 16, up to 1 GB model memory (7-Zip caps it near the input size): the best of orders 8/12/16/32 on English text',
  ),
  zpaq(4),
  zpaq(5),
];

/** Names accepted by `only`. */
export const CLASSICAL_COMPRESSORS: readonly string[] = COMPRESSORS.map((c) => c.name);

/** The compression command line as a shell would read it. */
function commandLine(c: Compressor): string {
  const archive = `x.${c.ext}`;
  const comp = c.compress(archive);
  return [c.tool, ...comp.args].join(' ') + (comp.toStdout ? ` > ${archive}` : '');
}

/** The executable's path on PATH, or null. */
function which(tool: string): string | null {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (!dir) continue;
    const p = join(dir, tool);
    try {
      if (statSync(p).isFile()) return p;
    } catch {
      // not in this dir
    }
  }
  return null;
}

function lastLine(text: string): string {
  const lines = text.split('\n').map((l) => l.trim()).filter(Boolean);
  return lines[lines.length - 1] ?? '';
}

/**
 * Makes `tool` available: null when it is (or now is) on PATH, else the reason it is not.
 * Remembers attempts per package in `tried` so one run asks apt once.
 */
function ensureTool(c: Compressor, install: boolean, tried: Map<string, string | null>): string | null {
  if (which(c.tool)) return null;
  if (!install) return `${c.tool} not found (package ${c.pkg}); not installing (install: false)`;
  if (tried.has(c.pkg)) return tried.get(c.pkg) ?? `${c.tool} is still missing after installing ${c.pkg}`;
  let why: string | null = null;
  if (typeof process.getuid === 'function' && process.getuid() !== 0) {
    why = `${c.tool} not found; installing Debian package ${c.pkg} needs root (run: sudo apt-get install -y ${c.pkg})`;
  } else if (!which('apt-get')) {
    why = `${c.tool} not found and there is no apt-get to install ${c.pkg} with`;
  } else {
    const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
    const apt = (args: string[]) => spawnSync('apt-get', args, { env, encoding: 'utf8', timeout: 600_000 });
    let r = apt(['install', '-y', '-q', c.pkg]);
    if (r.status !== 0) {
      apt(['update', '-q']);
      r = apt(['install', '-y', '-q', c.pkg]);
    }
    if (r.status !== 0) why = `apt-get install ${c.pkg} failed: ${lastLine(r.stderr || r.stdout || String(r.error ?? 'no output'))}`;
    else if (!which(c.tool)) why = `apt-get installed ${c.pkg} but ${c.tool} is still not on PATH`;
  }
  tried.set(c.pkg, why);
  return why;
}

function versionOf(c: Compressor): string | undefined {
  const r = spawnSync(c.tool, c.versionArgs, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 10_000 });
  const text = `${r.stdout ?? ''}\n${r.stderr ?? ''}`;
  const line = text.split('\n').map((l) => l.trim()).find((l) => /\d/.test(l));
  // Drop zstd's asterisks and 7-Zip's " : Copyright ..." tail.
  return line ? line.replace(/^\*+\s*|\s*\*+$/g, '').split(' : ')[0] : undefined;
}

/** Runs one command in `cwd`, stdout to `stdoutFile` when given; returns wall ms. Throws with stderr on failure. */
function timedRun(tool: string, args: string[], cwd: string, stdoutFile: string | null): number {
  const fd = stdoutFile ? openSync(join(cwd, stdoutFile), 'w') : null;
  let r: SpawnSyncReturns<Buffer>;
  const t0 = process.hrtime.bigint();
  try {
    r = spawnSync(tool, args, { cwd, stdio: ['ignore', fd ?? 'ignore', 'pipe'], maxBuffer: 16 * 2 ** 20 });
  } finally {
    if (fd !== null) closeSync(fd);
  }
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  if (r.error) throw r.error;
  if (r.status !== 0) throw new Error(`${tool} ${args.join(' ')} exited with ${r.status ?? r.signal}: ${lastLine(r.stderr.toString())}`);
  return ms;
}

/** Wall ms of `step`: one run, or the median of three when the first took under a second. */
function medianMs(step: () => number): number {
  const first = step();
  if (first >= 1000) return first;
  const all = [first, step(), step()].sort((a, b) => a - b);
  return all[1]!;
}

function runOne(c: Compressor, dir: string, original: Buffer): ClassicalRow {
  const archive = `x.${c.ext}`;
  const comp = c.compress(archive);
  const command = commandLine(c);
  const row: ClassicalRow = { name: c.name, command, bytes: null, bitsPerByte: null, compressMBs: null, decompressMBs: null, roundTripOk: null };
  const version = versionOf(c);
  if (version) row.version = version;
  if (c.note) row.note = c.note;
  const outDir = join(dir, 'out');
  try {
    const cMs = medianMs(() => {
      rmSync(join(dir, archive), { force: true }); // 7zz and zpaq would add to an existing archive
      return timedRun(c.tool, comp.args, dir, comp.toStdout ? archive : null);
    });
    const bytes = statSync(join(dir, archive)).size;
    const dec = c.decompress(archive);
    const restored = dec.toStdout ? 'restored' : join('out', 'input');
    const dMs = medianMs(() => {
      rmSync(outDir, { recursive: true, force: true });
      rmSync(join(dir, 'restored'), { force: true });
      mkdirSync(outDir);
      return timedRun(c.tool, dec.args, dir, dec.toStdout ? 'restored' : null);
    });
    const back = existsSync(join(dir, restored)) ? readFileSync(join(dir, restored)) : null;
    row.bytes = bytes;
    row.bitsPerByte = original.length > 0 ? (8 * bytes) / original.length : null;
    row.compressMBs = original.length / 1e3 / cMs;
    row.decompressMBs = original.length / 1e3 / dMs;
    row.roundTripOk = back !== null && back.equals(original);
    if (!row.roundTripOk) row.note = back === null ? 'decompression wrote no file' : `decompressed ${back.length} bytes differ from the input`;
  } catch (e) {
    row.bytes = row.bitsPerByte = row.compressMBs = row.decompressMBs = null;
    row.roundTripOk = null;
    row.note = `failed: ${e instanceof Error ? e.message : String(e)}`;
  } finally {
    rmSync(join(dir, archive), { force: true });
    rmSync(join(dir, 'restored'), { force: true });
    rmSync(outDir, { recursive: true, force: true });
  }
  return row;
}

/**
 * Compresses `file` with every classical compressor (or `opts.only`) and
 * returns one row each, in table order. Runs in a temp dir it removes.
 * Synchronous child processes inside: it blocks the event loop while a tool
 * runs (the benchmark has nothing else to do meanwhile).
 */
export async function runClassical(file: string, opts: ClassicalOptions = {}): Promise<ClassicalRow[]> {
  const original = readFileSync(file);
  const install = opts.install ?? true;
  const chosen = opts.only ? COMPRESSORS.filter((c) => opts.only!.includes(c.name)) : COMPRESSORS;
  if (opts.only) {
    const unknown = opts.only.filter((n) => !CLASSICAL_COMPRESSORS.includes(n));
    if (unknown.length > 0) throw new RangeError(`only: unknown compressor "${unknown[0]}"; known: ${CLASSICAL_COMPRESSORS.join(', ')}`);
  }
  const dir = mkdtempSync(join(tmpdir(), 'tokenpress-classical-'));
  const tried = new Map<string, string | null>();
  const rows: ClassicalRow[] = [];
  try {
    copyFileSync(file, join(dir, 'input'));
    for (const c of chosen) {
      opts.onProgress?.(c.name);
      const missing = ensureTool(c, install, tried);
      if (missing !== null) {
        rows.push({
          name: c.name,
          command: commandLine(c),
          bytes: null,
          bitsPerByte: null,
          compressMBs: null,
          decompressMBs: null,
          roundTripOk: null,
          note: `skipped: ${missing}`,
        });
        continue;
      }
      rows.push(runOne(c, dir, original));
      // Let progress bars and signals through between tools.
      await new Promise((resolve) => setImmediate(resolve));
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return rows;
}

/** The rows as a text table (one line each, notes below). */
export function formatClassicalTable(rows: readonly ClassicalRow[]): string {
  const f = (x: number | null, d: number) => (x === null ? '-' : x.toFixed(d));
  const lines = [`${'compressor'.padEnd(16)}${'bytes'.padStart(11)}${'bits/byte'.padStart(11)}${'comp MB/s'.padStart(11)}${'dec MB/s'.padStart(10)}  ok`];
  for (const r of rows) {
    const ok = r.roundTripOk === null ? '-' : r.roundTripOk ? 'yes' : 'NO';
    lines.push(
      `${r.name.padEnd(16)}${(r.bytes === null ? '-' : String(r.bytes)).padStart(11)}${f(r.bitsPerByte, 3).padStart(11)}${f(r.compressMBs, 2).padStart(11)}${f(r.decompressMBs, 2).padStart(10)}  ${ok}`,
    );
  }
  const notes = rows.filter((r) => r.note).map((r) => `  ${r.name}: ${r.note}`);
  if (notes.length > 0) lines.push('', ...notes);
  return lines.join('\n');
}
