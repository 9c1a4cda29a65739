#!/usr/bin/env node
// npm's install step for tokenpress.
//
// 1. A binary that loads on this machine is used as it is: a prebuild from
//    prebuilds/<platform>-<arch>/ (the npm tarball ships linux-x64) or an
//    earlier build in build/Release, found the way the library finds it at
//    run time (node-gyp-build). Nothing is compiled then.
// 2. Otherwise the addon is compiled from source with node-gyp on every core
//    (node-gyp-build's own fallback compiles on one, about twice as slow on a
//    2-core machine).
// `npm install --build-from-source` (or npm_config_build_from_source=true)
// skips step 1.
'use strict';

const { spawnSync } = require('node:child_process');
const path = require('node:path');

const root = path.join(__dirname, '..');

function loadsHere() {
  try {
    require('node-gyp-build')(root);
    return true;
  } catch {
    return false; // no binary for this platform, or one that does not load (libc, ABI)
  }
}

// node-gyp: the project's own when installed (devDependency), else npm's bundled one.
function nodeGypCommand() {
  try {
    return [process.execPath, require.resolve('node-gyp/bin/node-gyp.js')];
  } catch {
    const bundled = process.env.npm_config_node_gyp;
    return bundled ? [process.execPath, bundled] : ['node-gyp'];
  }
}

const fromSource = process.env.npm_config_build_from_source === 'true';
if (!fromSource && loadsHere()) process.exit(0);

const [cmd, ...args] = nodeGypCommand();
const jobs = process.env.JOBS || 'max';
const result = spawnSync(cmd, [...args, 'rebuild', '--jobs', jobs], { cwd: root, stdio: 'inherit' });
if (result.error) {
  console.error(`tokenpress: could not run node-gyp (${result.error.message}); install a C++ toolchain, or use a platform with a prebuild (linux-x64).`);
  process.exit(1);
}
process.exit(result.status ?? 1);
