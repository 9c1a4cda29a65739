/**
 * The two native builds must compile the same C++: binding.gyp (node-gyp, the
 * CPU addon `npm ci` builds) and CMakeLists.txt (cmake-js, `npm run
 * build:cuda`). CMake additionally compiles every native/cuda/*.cu. Neither
 * may ship -march=native (the baseline must stay portable; ISA paths are
 * picked at run time). Most sources are compiled through native/unity/*.cpp
 * (groups included into one translation unit, for build time); each source
 * must be compiled exactly once, and kernels built for an ISA (#pragma GCC
 * target) must stay translation units of their own.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('../../', import.meta.url));
const read = (rel: string): string => readFileSync(join(root, rel), 'utf8');

interface GypTarget {
  target_name: string;
  sources?: string[];
}

function gypSources(): string[] {
  const gyp = JSON.parse(read('binding.gyp')) as { targets: GypTarget[] };
  const target = gyp.targets.find((t) => t.target_name === 'tokenpress');
  if (!target?.sources) throw new Error('binding.gyp: no "tokenpress" target with sources');
  return target.sources;
}

/** Entries of `set(<name> ...)` in CMakeLists.txt, comments stripped. */
function cmakeList(name: string): string[] {
  const text = read('CMakeLists.txt').replace(/#[^\n]*/g, '');
  const match = new RegExp(`\\bset\\(\\s*${name}\\s+([^)]*)\\)`).exec(text);
  if (!match?.[1]) throw new Error(`CMakeLists.txt: no set(${name} ...)`);
  return match[1].split(/\s+/).filter((s) => s.length > 0);
}

/** Human-readable difference of two source lists, '' when equal as sets. */
function setDifference(a: string[], aName: string, b: string[], bName: string): string {
  const sa = new Set(a);
  const sb = new Set(b);
  const onlyA = [...sa].filter((s) => !sb.has(s)).sort();
  const onlyB = [...sb].filter((s) => !sa.has(s)).sort();
  const lines: string[] = [];
  if (onlyA.length) lines.push(`only in ${aName}: ${onlyA.join(', ')}`);
  if (onlyB.length) lines.push(`only in ${bName}: ${onlyB.join(', ')}`);
  return lines.join('\n');
}

/** Every .cpp under native/, as a repo-relative path. */
function cppOnDisk(dir = 'native'): string[] {
  return readdirSync(join(root, dir), { withFileTypes: true }).flatMap((e) => {
    const rel = `${dir}/${e.name}`;
    if (e.isDirectory()) return cppOnDisk(rel);
    return e.name.endsWith('.cpp') ? [rel] : [];
  });
}

/** The .cpp files a unity translation unit includes, as repo-relative paths. */
function unityMembers(unity: string): string[] {
  return [...read(unity).matchAll(/^#include "([^"]+\.cpp)"/gm)].map((m) => join(unity, '..', m[1]!).replaceAll('\\', '/'));
}

function duplicates(list: string[]): string[] {
  return list.filter((s, i) => list.indexOf(s) !== i);
}

describe('native build files', () => {
  it('binding.gyp and CMakeLists.txt list the same C++ sources', () => {
    const gyp = gypSources();
    const cmake = cmakeList('TOKENPRESS_SOURCES');
    expect(setDifference(gyp, 'binding.gyp', cmake, 'CMakeLists.txt (TOKENPRESS_SOURCES)')).toBe('');
    expect(duplicates(gyp), 'duplicates in binding.gyp').toEqual([]);
    expect(duplicates(cmake), 'duplicates in CMakeLists.txt').toEqual([]);
  });

  it('every C++ source under native/ is compiled exactly once (listed, or included by one unity file)', () => {
    const listed = gypSources();
    const isUnity = (s: string) => s.startsWith('native/unity/');
    const compiled = [...listed.filter((s) => !isUnity(s)), ...listed.filter(isUnity).flatMap(unityMembers)];
    const onDisk = cppOnDisk().filter((s) => !isUnity(s));
    expect(setDifference(onDisk, 'native/ (on disk)', compiled, 'the build')).toBe('');
    expect(duplicates(compiled), 'sources compiled twice').toEqual([]);
    expect(cppOnDisk().filter(isUnity).filter((u) => !listed.includes(u)), 'unity files not built').toEqual([]);
  });

  it('kernels compiled for an ISA are never inside a unity translation unit', () => {
    const members = gypSources().filter((s) => s.startsWith('native/unity/')).flatMap(unityMembers);
    expect(members.filter((m) => /#pragma GCC target/.test(read(m)))).toEqual([]);
  });

  it('every listed source exists and no glob is used', () => {
    const all = [...gypSources(), ...cmakeList('TOKENPRESS_SOURCES'), ...cmakeList('TOKENPRESS_CUDA_SOURCES')];
    const missing = all.filter((s) => /[*?$<]/.test(s) || !existsSync(join(root, s)));
    expect(missing, 'sources that are globs, variables or missing files').toEqual([]);
  });

  it('CMakeLists.txt lists exactly the .cu files in native/cuda (and binding.gyp none)', () => {
    const onDisk = readdirSync(join(root, 'native/cuda'))
      .filter((f) => f.endsWith('.cu'))
      .map((f) => `native/cuda/${f}`);
    const cmake = cmakeList('TOKENPRESS_CUDA_SOURCES');
    expect(setDifference(onDisk, 'native/cuda', cmake, 'CMakeLists.txt (TOKENPRESS_CUDA_SOURCES)')).toBe('');
    expect(gypSources().filter((s) => s.endsWith('.cu'))).toEqual([]);
    expect(cmakeList('TOKENPRESS_SOURCES').filter((s) => s.endsWith('.cu'))).toEqual([]);
  });

  it('no build file uses -march=native', () => {
    const scripts = existsSync(join(root, 'scripts'))
      ? readdirSync(join(root, 'scripts')).map((f) => `scripts/${f}`)
      : [];
    const files = ['binding.gyp', 'CMakeLists.txt', 'package.json', '.ci/run', ...scripts].filter(
      (f) => existsSync(join(root, f)) && statSync(join(root, f)).isFile(),
    );
    const offenders = files.filter((f) => /-march=native|-mtune=native|\/arch:native/i.test(read(f)));
    expect(offenders).toEqual([]);
  });
});
