#!/usr/bin/env node
// Stand-in for node-gyp so prebuildify can package the cmake-js (CUDA) build:
//   prebuildify --napi --strip --node-gyp scripts/prebuildify-cmake-shim.cjs
// prebuildify has no cmake-js backend; it runs
//   <node-gyp> rebuild --target=<version> --devdir=<dir> --arch=<arch> --release|--debug
// and then takes the first .node file in build/Release (or build/Debug).
// This script translates those arguments and runs `cmake-js rebuild`
// with TOKENPRESS_CUDA=ON (TOKENPRESS_CUDA=OFF in the environment turns it
// off). Node-API headers come from node-api-headers (package.json has
// binary.napi_versions, which puts cmake-js in Node-API mode), so --target
// needs no header download.
'use strict';

const os = require('node:os');
const path = require('node:path');

function parseArgs(argv) {
  const opts = { command: 'rebuild', debug: false, runtime: 'node' };
  for (const arg of argv) {
    const eq = arg.indexOf('=');
    const key = eq < 0 ? arg : arg.slice(0, eq);
    const value = eq < 0 ? undefined : arg.slice(eq + 1);
    switch (key) {
      case 'rebuild':
      case 'build':
        opts.command = key;
        break;
      case '--target':
        opts.runtimeVersion = value;
        break;
      case '--arch':
        opts.arch = value;
        break;
      case '--runtime':
        opts.runtime = value;
        break;
      case '--debug':
        opts.debug = true;
        break;
      case '--release':
        opts.debug = false;
        break;
      // node-gyp-only switches that mean nothing to cmake-js.
      case '--devdir':
      case '--dist-url':
      case '--build_v8_with_gn':
        break;
      default:
        throw new Error(`prebuildify-cmake-shim: unexpected argument ${arg}`);
    }
  }
  return opts;
}

function parallelism() {
  const fromEnv = Number(process.env.CMAKE_BUILD_PARALLEL_LEVEL);
  if (Number.isInteger(fromEnv) && fromEnv > 0) return fromEnv;
  return typeof os.availableParallelism === 'function' ? os.availableParallelism() : os.cpus().length;
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  const root = path.resolve(__dirname, '..');
  const cuda = (process.env.TOKENPRESS_CUDA || 'ON').toUpperCase() === 'OFF' ? 'OFF' : 'ON';
  // Resolve cmake-js from the package being built, not from this script's
  // location, in case the shim is copied elsewhere.
  const { BuildSystem } = require(require.resolve('cmake-js', { paths: [process.cwd(), root] }));
  const options = {
    directory: process.cwd(),
    runtime: args.runtime,
    runtimeVersion: args.runtimeVersion,
    arch: args.arch,
    debug: args.debug,
    parallel: parallelism(),
    cMakeOptions: { TOKENPRESS_CUDA: cuda },
  };
  console.log(`prebuildify-cmake-shim: cmake-js ${args.command} ${JSON.stringify(options)}`);
  const buildSystem = new BuildSystem(options);
  await buildSystem[args.command]();
}

main().catch((err) => {
  console.error(err && err.stack ? err.stack : String(err));
  process.exit(1);
});
