/** `tokenpress info`: what is compiled and what this machine has. */
import { backendInfo, type BackendInfo } from '../backend.js';

export function formatInfo(info: BackendInfo): string {
  const features = Object.entries(info.features)
    .filter(([, on]) => on)
    .map(([name]) => name)
    .join(' ');
  const cuda = info.cuda.compiled
    ? info.cuda.deviceCount > 0
      ? `compiled, ${info.cuda.deviceCount} device(s): ${info.cuda.devices}`
      : `compiled, no device (${info.cuda.error}); running on the CPU`
    : `not compiled (${info.cuda.error})`;
  return [
    `tokenpress ${info.version}`,
    `  ISA        ${info.isa} (detected ${info.detectedIsa})`,
    `  features   ${features || 'none'}`,
    `  threads    ${info.threads}`,
    `  CUDA       ${cuda}`,
  ].join('\n');
}

export function runInfo(opts: { json: boolean }): BackendInfo {
  const info = backendInfo();
  console.log(opts.json ? JSON.stringify(info, null, 2) : formatInfo(info));
  return info;
}
