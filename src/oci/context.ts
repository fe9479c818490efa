/**
 * Reads the files a Dockerfile plan adds from the build context: regular files inside
 * the context only (symlinks are followed but must stay inside), and for ADD no archive
 * (Docker would unpack a local tar; pause-build does not, so it refuses rather than differ).
 */
import { open, realpath } from 'node:fs/promises';
import path from 'node:path';
import { PauseBuildError } from '../errors.ts';
import type { DockerfilePlan } from './dockerfile.ts';
import type { ContextFile } from './image.ts';

/** gzip, bzip2, xz, zstd magic; `ustar` at 257 for plain tar. */
function looksLikeArchive(bytes: Uint8Array): boolean {
  const starts = (...magic: number[]) => magic.every((b, i) => bytes[i] === b);
  if (starts(0x1f, 0x8b) || starts(0x42, 0x5a, 0x68) || starts(0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00) || starts(0x28, 0xb5, 0x2f, 0xfd)) return true;
  return Buffer.from(bytes.subarray(257, 262)).toString('latin1') === 'ustar';
}

export async function loadContextFiles(plan: DockerfilePlan, contextDir: string): Promise<Map<string, ContextFile>> {
  const files = new Map<string, ContextFile>();
  let root: string;
  try {
    root = await realpath(contextDir);
  } catch {
    throw new PauseBuildError(`build context ${contextDir} does not exist`, { hint: 'pass --context DIR (the directory holding bin/)' });
  }
  for (const step of plan.steps) {
    for (const planned of step.layer?.files ?? []) {
      if (files.has(planned.source)) continue;
      const where = `${plan.file}:${step.line}: ${step.layer!.instruction} ${planned.source}`;
      const full = path.join(root, planned.source);
      let real: string;
      try {
        real = await realpath(full);
      } catch {
        throw new PauseBuildError(`${where}: not found in the build context ${contextDir}`, {
          hint: planned.source.startsWith('bin/') ? 'run `pause-build bin` first, or pass --context DIR holding bin/' : 'pass --context DIR holding it',
        });
      }
      if (real !== root && !real.startsWith(`${root}${path.sep}`)) {
        throw new PauseBuildError(`${where}: links outside the build context ${contextDir}`, { hint: 'copy the file into the build context' });
      }
      const handle = await open(real, 'r');
      try {
        const stat = await handle.stat();
        if (!stat.isFile()) throw new PauseBuildError(`${where}: not a regular file`, { hint: 'name each file; directories are not supported' });
        const bytes = new Uint8Array(await handle.readFile());
        if (step.layer!.instruction === 'ADD' && looksLikeArchive(bytes)) {
          throw new PauseBuildError(`${where}: is an archive, which ADD would unpack`, { hint: 'use COPY to add it as a file, or unpack it into the build context' });
        }
        files.set(planned.source, { bytes, mode: stat.mode & 0o7777 });
      } finally {
        await handle.close();
      }
    }
  }
  return files;
}
