#!/usr/bin/env bash
# Checks the npm package as a user gets it: builds the linux-x64 prebuild,
# packs the tarball, installs it into a new project (1) with install scripts
# disabled, as pnpm does by default, and (2) with scripts on but no C++
# compiler (CXX=false), so the install script must take the prebuild; then
# runs scripts/package-smoke.mjs in that project. Prints the tarball size and
# both install times. Usage: npm run check:package [-- --reuse-build]
#   --reuse-build: package the addon already in build/Release (stripped, under
#   prebuildify's name) instead of compiling it again with prebuildify. CI
#   uses it: build/Release there is the `npm ci` build of the same sources
#   with the same flags, and a second compile costs two minutes of CI.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD

if [[ ${1:-} == --reuse-build ]]; then
  built=build/Release/tokenpress.node
  if [[ ! -f $built ]]; then
    echo "check-package: --reuse-build but $built does not exist (run npm run build:native)" >&2
    exit 1
  fi
  # prebuildify's name for an N-API linux build on glibc: <package>.glibc.node
  # (prebuildify --napi --tag-libc; scripts/install.cjs loads it with node-gyp-build).
  rm -rf prebuilds
  mkdir -p prebuilds/linux-x64
  cp "$built" prebuilds/linux-x64/tokenpress.glibc.node
  strip --strip-all prebuilds/linux-x64/tokenpress.glibc.node
else
  npm run build:prebuilds
fi
ls -l prebuilds/*/

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
npm pack --silent --pack-destination "$work" >/dev/null
tarball=$(ls "$work"/tokenpress-*.tgz)
echo "tarball: $(basename "$tarball"), $(stat -c %s "$tarball") bytes"
tar -tzf "$tarball" | grep -E '\.node$'

install_into() {  # $1: project dir, $2: a label, then npm install flags
  local app=$1 label=$2
  shift 2
  mkdir -p "$app"
  (cd "$app" && npm init -y >/dev/null)
  local start=$(date +%s.%N)
  # A user's project: none of this repository's npm settings in the environment.
  (cd "$app" && env -u npm_config_onnxruntime_node_install \
    npm install --no-audit --no-fund --loglevel=error "$@" "$tarball")
  echo "install time ($label): $(echo "$(date +%s.%N) - $start" | bc) s"
}

smoke() {  # the script must sit in the project to import its tokenpress
  cp "$repo/scripts/package-smoke.mjs" "$1/"
  (cd "$1" && node package-smoke.mjs)
}

install_into "$work/no-scripts" "--ignore-scripts" --ignore-scripts
smoke "$work/no-scripts"

CXX=false CC=false install_into "$work/no-compiler" "install scripts on, CXX=false"
smoke "$work/no-compiler"
