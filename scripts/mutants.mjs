#!/usr/bin/env node
// Native mutation testing: applies each mutant of scripts/mutants/native.json
// (one realistic bug in native/, one at a time), rebuilds the addon
// incrementally (node-gyp build: only the translation units that include the
// mutated file recompile; see native/unity/), runs the mutant's test files
// with vitest and records whether a test failed ("killed", with the failing
// tests) or all passed ("survived"). The source is always restored: in a
// finally block, on SIGINT / SIGTERM, and checked at the end with
// `git diff --quiet native/`. The addon is rebuilt from the clean source
// before exit so build/ never keeps a mutant.
//
// Usage: node scripts/mutants.mjs [--only id,id] [--all-tests] [--check]
//          [--list] [--timeout s] [--no-baseline] [--out dir]
//   --only        run these mutant ids only
//   --all-tests   run the whole suite (test/**/*.test.ts) for every mutant,
//                 stopping at its first failing test (vitest --bail=1)
//   --check       verify every mutant applies (each search text found exactly
//                 once), build nothing, run nothing
//   --list        print the mutants and exit
//   --timeout     seconds allowed for one mutant's test run (default 900);
//                 a run past it counts as killed ("timeout")
//   --no-baseline skip the unmutated run of the selected test files
//   --bail        stop each mutant's own test files at the first failing
//                 test too (vitest --bail=1): faster, names one killer only
//   --out         report folder (default bench-results/mutants)
// Writes <out>/native-<stamp>.json and .md, and prints the table.
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const listPath = path.join(root, 'scripts/mutants/native.json');

function parseArgs(argv) {
  const o = { only: null, allTests: false, bail: false, check: false, list: false, timeout: 900, baseline: true, out: 'bench-results/mutants' };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const value = () => {
      if (i + 1 >= argv.length) throw new Error(`${a}: expected a value`);
      return argv[++i];
    };
    if (a === '--only') o.only = value().split(',').map((s) => s.trim()).filter(Boolean);
    else if (a === '--all-tests') o.allTests = true;
    else if (a === '--bail') o.bail = true;
    else if (a === '--check') o.check = true;
    else if (a === '--list') o.list = true;
    else if (a === '--no-baseline') o.baseline = false;
    else if (a === '--timeout') o.timeout = Number(value());
    else if (a === '--out') o.out = value();
    else throw new Error(`unknown option ${a} (expected --only, --all-tests, --bail, --check, --list, --timeout, --no-baseline, --out)`);
  }
  if (!(o.timeout > 0)) throw new Error('--timeout: expected a positive number of seconds');
  return o;
}

// A mutant's edits: [{ file, search, replace }] (single-edit mutants give them at top level).
function editsOf(m) {
  return m.edits ?? [{ file: m.file, search: m.search, replace: m.replace }];
}

function countOccurrences(text, search) {
  if (search.length === 0) return 0;
  let n = 0;
  for (let at = text.indexOf(search); at !== -1; at = text.indexOf(search, at + 1)) n++;
  return n;
}

// Throws unless every edit's search text occurs exactly once in its file.
// Edits of one mutant in the same file are checked against the text as the
// earlier edits leave it.
function planMutant(m) {
  const files = new Map();  // path -> { original, mutated }
  for (const e of editsOf(m)) {
    if (!e.file || typeof e.search !== 'string' || typeof e.replace !== 'string') {
      throw new Error(`${m.id}: each edit needs file, search and replace`);
    }
    const abs = path.join(root, e.file);
    if (!files.has(abs)) {
      if (!fs.existsSync(abs)) throw new Error(`${m.id}: ${e.file} does not exist`);
      const text = fs.readFileSync(abs, 'utf8');
      files.set(abs, { original: text, mutated: text });
    }
    const f = files.get(abs);
    const n = countOccurrences(f.mutated, e.search);
    if (n !== 1) throw new Error(`${m.id}: search text found ${n} times in ${e.file} (expected exactly once): ${JSON.stringify(e.search)}`);
    f.mutated = f.mutated.replace(e.search, () => e.replace);
  }
  return files;
}

// Test patterns: paths, or globs with * in the file name (test/unit/kv-cache*.test.ts).
function resolveTests(patterns) {
  const out = new Set();
  for (const pat of patterns) {
    if (!pat.includes('*')) {
      if (fs.existsSync(path.join(root, pat))) out.add(pat);
      continue;
    }
    const dir = path.dirname(pat);
    const re = new RegExp('^' + path.basename(pat).split('*').map((s) => s.replace(/[.+?^${}()|[\]\\]/g, '\\$&')).join('.*') + '$');
    const abs = path.join(root, dir);
    if (!fs.existsSync(abs)) continue;
    for (const name of fs.readdirSync(abs).sort()) if (re.test(name)) out.add(path.posix.join(dir, name));
  }
  return [...out];
}

// --- restoring ---------------------------------------------------------------

let pending = null;  // Map of files currently mutated (abs -> { original })
let current = null;  // the running child (its own process group)
function restore() {
  if (!pending) return;
  for (const [abs, f] of pending) fs.writeFileSync(abs, f.original);
  pending = null;
}
function onSignal(sig) {
  restore();
  if (current) try { process.kill(-current.pid, 'SIGKILL'); } catch { /* gone */ }
  process.stderr.write(`\nmutants: ${sig}: native sources restored; build/ may hold a mutant: run \`npx node-gyp build\`\n`);
  process.exit(130);
}
process.on('SIGINT', onSignal);
process.on('SIGTERM', onSignal);
process.on('exit', restore);

function nativeClean() {
  return spawnSync('git', ['diff', '--quiet', '--', 'native/'], { cwd: root }).status === 0;
}

// --- running -----------------------------------------------------------------

const nodeGyp = path.join(root, 'node_modules/.bin/node-gyp');
const vitestBin = path.join(root, 'node_modules/.bin/vitest');

// Runs a command; resolves { code, signal, timedOut, seconds, log } with the
// output captured to a log file (vitest's output is long).
function run(cmd, args, { timeoutS, logFile, env }) {
  return new Promise((resolve) => {
    const t0 = Date.now();
    const fd = fs.openSync(logFile, 'w');
    const child = spawn(cmd, args, { cwd: root, stdio: ['ignore', fd, fd], env: { ...process.env, ...env }, detached: true });
    current = child;
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      try { process.kill(-child.pid, 'SIGKILL'); } catch { /* gone */ }
    }, timeoutS * 1000);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      current = null;
      fs.closeSync(fd);
      resolve({ code, signal, timedOut, seconds: (Date.now() - t0) / 1000, logFile });
    });
  });
}

function build(logFile) {
  return run(nodeGyp, ['build', '--jobs', 'max'], { timeoutS: 1800, logFile });
}

// The failing tests of a vitest JSON report: ["file > suite > test", ...].
function failuresOf(jsonFile) {
  try {
    const r = JSON.parse(fs.readFileSync(jsonFile, 'utf8'));
    const failed = [];
    for (const f of r.testResults ?? []) {
      const file = path.relative(root, f.name);
      const bad = (f.assertionResults ?? []).filter((a) => a.status === 'failed');
      for (const a of bad) failed.push(`${file} > ${a.fullName ?? a.title}`);
      if (bad.length === 0 && f.status === 'failed') failed.push(`${file} (file failed: ${(f.message ?? '').split('\n')[0].slice(0, 160)})`);
    }
    return { failed, numTotal: r.numTotalTests ?? 0 };
  } catch {
    return null;
  }
}

// bail: stop at the first failing test (the whole-suite runs: a killed
// mutant needs one failure, not eight minutes of them).
async function runTests(files, { timeoutS, logFile, jsonFile, bail = false }) {
  fs.rmSync(jsonFile, { force: true });
  const args = ['run', ...files, '--reporter=default', '--reporter=json', `--outputFile.json=${jsonFile}`, ...(bail ? ['--bail=1'] : [])];
  const r = await run(vitestBin, args, { timeoutS, logFile });
  const report = failuresOf(jsonFile);
  return { ...r, failed: report?.failed ?? [], numTotal: report?.numTotal ?? 0, reportMissing: report === null };
}

// Killed when any test failed, the run crashed (a signal, no report), or timed out.
function verdict(t) {
  if (t.timedOut) return { status: 'killed', how: 'timeout' };
  if (t.failed.length > 0) return { status: 'killed', how: 'test failed' };
  if (t.code !== 0) return { status: 'killed', how: t.signal ? `crash (${t.signal})` : t.reportMissing ? `crash (exit ${t.code}, no report)` : `exit ${t.code}` };
  return { status: 'survived', how: '' };
}

// --- reports -----------------------------------------------------------------

function table(results) {
  const rows = [['id', 'class', 'status', 'caught by', 'tests', 's']];
  for (const r of results) {
    const by = r.status === 'killed' ? (r.failed[0] ?? r.how) + (r.failed.length > 1 ? ` (+${r.failed.length - 1})` : '') : r.status === 'survived' ? '-' : r.how;
    rows.push([r.id, r.class, r.status, by, String(r.tests.length), r.seconds.toFixed(0)]);
  }
  return rows;
}

function score(results) {
  const counted = results.filter((r) => r.status === 'killed' || r.status === 'survived');
  const killed = counted.filter((r) => r.status === 'killed').length;
  return { killed, survived: counted.length - killed, notRun: results.length - counted.length, percent: counted.length ? (100 * killed) / counted.length : 0 };
}

function markdown(meta, results) {
  const s = score(results);
  const esc = (x) => String(x).replace(/\|/g, '\\|').replace(/\n/g, ' ');
  const lines = [
    `# Native mutants: ${s.killed} of ${s.killed + s.survived} killed (${s.percent.toFixed(1)}%)`,
    '',
    `- date: ${meta.date}`,
    `- commit: ${meta.commit}`,
    `- CPU: ${meta.cpu} (${meta.cores} cores)`,
    `- command: \`${meta.command}\``,
    `- tests: ${meta.allTests ? 'whole suite' : "each mutant's listed test files"}`,
    `- time: ${meta.seconds.toFixed(0)} s (baseline build ${meta.baselineBuildS?.toFixed(0) ?? '-'} s, baseline tests ${meta.baselineTestS?.toFixed(0) ?? '-'} s)`,
    s.notRun ? `- not counted (compile error / not applied): ${s.notRun}` : '',
    '',
  ].filter((l) => l !== '');
  const rows = table(results);
  lines.push('', `| ${rows[0].join(' | ')} |`, `|${rows[0].map(() => '---').join('|')}|`);
  for (const r of rows.slice(1)) lines.push(`| ${r.map(esc).join(' | ')} |`);
  const survivors = results.filter((r) => r.status === 'survived');
  if (survivors.length) {
    lines.push('', '## Survivors (no test caught them)', '');
    for (const r of survivors) lines.push(`- \`${r.id}\` (${r.class}): ${r.description}`);
  }
  return lines.join('\n') + '\n';
}

function printTable(results) {
  const rows = table(results);
  const w = rows[0].map((_, c) => Math.min(70, Math.max(...rows.map((r) => String(r[c]).length))));
  for (const r of rows) console.log(r.map((x, c) => String(x).slice(0, w[c]).padEnd(w[c])).join('  '));
}

// --- main --------------------------------------------------------------------

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  const all = JSON.parse(fs.readFileSync(listPath, 'utf8')).mutants;
  const ids = new Set();
  for (const m of all) {
    if (!m.id || ids.has(m.id)) throw new Error(`native.json: missing or duplicate id ${m.id}`);
    ids.add(m.id);
  }
  if (opts.only) for (const id of opts.only) if (!ids.has(id)) throw new Error(`--only: no mutant ${id} (ids: node scripts/mutants.mjs --list)`);
  const chosen = opts.only ? all.filter((m) => opts.only.includes(m.id)) : all;

  if (opts.list) {
    for (const m of chosen) console.log(`${m.id.padEnd(42)} ${m.class.padEnd(28)} ${[...new Set(editsOf(m).map((e) => e.file))].join(', ')}`);
    return;
  }
  // Every chosen mutant must apply before anything is built.
  const problems = [];
  for (const m of chosen) {
    try { planMutant(m); } catch (e) { problems.push(e.message); }
  }
  if (problems.length) throw new Error(`mutants that do not apply:\n  ${problems.join('\n  ')}`);
  if (opts.check) {
    console.log(`${chosen.length} mutants apply (each search text found exactly once)`);
    return;
  }
  if (!nativeClean()) throw new Error('native/ has uncommitted changes: commit or stash them first (restoring relies on a clean native/)');

  const outDir = path.resolve(root, opts.out);
  const logDir = path.join(outDir, 'logs');
  fs.mkdirSync(logDir, { recursive: true });
  const testsOf = (m) => (opts.allTests ? ['test/'] : resolveTests(m.tests ?? []));
  const t0 = Date.now();
  const meta = {
    date: new Date().toISOString(),
    commit: spawnSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: root, encoding: 'utf8' }).stdout.trim(),
    cpu: os.cpus()[0]?.model ?? 'unknown',
    cores: os.cpus().length,
    command: `node scripts/mutants.mjs ${process.argv.slice(2).join(' ')}`.trim(),
    allTests: opts.allTests,
  };

  // Baseline: the clean addon must build and the selected tests must pass,
  // or every mutant would look killed.
  console.log('mutants: building the clean addon (node-gyp build)...');
  const b0 = await build(path.join(logDir, 'baseline-build.log'));
  meta.baselineBuildS = b0.seconds;
  if (b0.code !== 0) throw new Error(`the clean addon does not build: see ${path.relative(root, b0.logFile)}`);
  if (opts.baseline) {
    const files = [...new Set(chosen.flatMap(testsOf))];
    console.log(`mutants: baseline run of ${files.length} test files...`);
    const t = await runTests(files, { timeoutS: opts.timeout * 2, logFile: path.join(logDir, 'baseline-tests.log'), jsonFile: path.join(logDir, 'baseline-tests.json') });
    meta.baselineTestS = t.seconds;
    if (verdict(t).status !== 'survived') {
      throw new Error(`the unmutated tests fail (${verdict(t).how}): ${t.failed.slice(0, 5).join('; ')}; see ${path.relative(root, t.logFile)}`);
    }
  }

  const results = [];
  try {
    for (const [n, m] of chosen.entries()) {
      const tests = testsOf(m);
      const r = { id: m.id, class: m.class, issue: m.issue ?? null, description: m.description, files: editsOf(m).map((e) => e.file), tests, status: '', how: '', failed: [], seconds: 0, buildS: 0, testS: 0 };
      const tm = Date.now();
      process.stdout.write(`[${n + 1}/${chosen.length}] ${m.id}: `);
      const plan = planMutant(m);
      pending = plan;
      try {
        for (const [abs, f] of plan) fs.writeFileSync(abs, f.mutated);
        const b = await build(path.join(logDir, `${m.id}.build.log`));
        r.buildS = b.seconds;
        if (b.code !== 0) {
          r.status = 'compile-error';
          r.how = `does not compile: logs/${m.id}.build.log`;
        } else if (tests.length === 0) {
          r.status = 'no-tests';
          r.how = 'no listed test file exists';
        } else {
          const t = await runTests(tests, { timeoutS: opts.timeout, logFile: path.join(logDir, `${m.id}.tests.log`), jsonFile: path.join(logDir, `${m.id}.tests.json`), bail: opts.allTests || opts.bail });
          r.testS = t.seconds;
          Object.assign(r, verdict(t));
          r.failed = t.failed;
        }
      } finally {
        restore();
      }
      r.seconds = (Date.now() - tm) / 1000;
      console.log(`${r.status}${r.how ? ` (${r.how})` : ''}${r.failed[0] ? `: ${r.failed[0]}` : ''} [${r.seconds.toFixed(0)} s]`);
      results.push(r);
    }
  } finally {
    restore();
    // Leave build/ holding the clean addon.
    console.log('mutants: rebuilding the clean addon...');
    const b = await build(path.join(logDir, 'final-build.log'));
    if (b.code !== 0) console.error(`mutants: the clean rebuild failed: see ${path.relative(root, b.logFile)}`);
    if (!nativeClean()) console.error('mutants: WARNING: native/ differs from git after restoring: check `git diff native/`');
  }

  meta.seconds = (Date.now() - t0) / 1000;
  const s = score(results);
  const stamp = meta.date.replace(/[:.]/g, '-');
  const report = { ...meta, score: s, results };
  fs.writeFileSync(path.join(outDir, `native-${stamp}.json`), JSON.stringify(report, null, 2) + '\n');
  fs.writeFileSync(path.join(outDir, `native-${stamp}.md`), markdown(meta, results));
  fs.writeFileSync(path.join(outDir, 'native-latest.json'), JSON.stringify(report, null, 2) + '\n');
  fs.writeFileSync(path.join(outDir, 'native-latest.md'), markdown(meta, results));
  console.log('');
  printTable(results);
  console.log(`\nnative mutants: ${s.killed} of ${s.killed + s.survived} killed (${s.percent.toFixed(1)}%), goal >= 90%; ${meta.seconds.toFixed(0)} s`);
  console.log(`report: ${path.relative(root, path.join(outDir, `native-${stamp}.md`))}`);
}

main().catch((e) => {
  restore();
  console.error(`mutants: ${e.message}`);
  process.exitCode = 1;
});
