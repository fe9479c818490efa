/**
 * The tools the tests use that are not on PATH: today's cosign, oras, crane and containerd 2
 * unpacked from Debian unstable, the CRI API proto, and Node.js 22 and 24, all installed by
 * build/test-tools.sh under PAUSE_BUILD_TOOLS. A missing tool is an error naming the fix,
 * never a skip.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';

export const TOOLS_DIR = process.env.PAUSE_BUILD_TOOLS ?? '/var/cache/pause-build-tools';
const ROOT = path.join(TOOLS_DIR, 'root');

function required(file: string, what: string): string {
  if (!existsSync(file)) throw new Error(`${what} is missing (${file}): run sudo bash build/test-tools.sh`);
  return file;
}

/** A binary unpacked from Debian unstable: cosign, oras, crane, containerd, ctr, containerd-shim-runc-v2. */
export function unstableTool(name: string): string {
  return required(path.join(ROOT, 'usr/bin', name), name);
}

/** The directory holding containerd 2's binaries (containerd finds its shim on PATH). */
export function unstableBinDir(): string {
  return path.dirname(unstableTool('containerd'));
}

/** The CRI API proto (k8s.io/cri-api runtime/v1). */
export function criProto(): string {
  return required(path.join(ROOT, 'usr/share/gocode/src/k8s.io/cri-api/pkg/apis/runtime/v1/api.proto'), 'the CRI API proto');
}

/** The node binary of another Node.js major (22 or 24). */
export function nodeBinary(major: 22 | 24): string {
  return required(path.join(TOOLS_DIR, `node${major}`, 'node_modules/.bin/node'), `Node.js ${major}`);
}
