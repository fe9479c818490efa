/**
 * Container engines as pause-build uses them: a CLI (podman or docker) that can run a
 * throwaway container and build an image. DOCKER_HOST / CONTAINER_HOST pass through.
 */
import { PauseBuildError } from '../errors.ts';
import { capture } from '../exec.ts';

export type EngineName = 'podman' | 'docker';
export type ToolchainKind = EngineName | 'host';

export const ENGINE_INSTALL_HINT: Record<EngineName, string> = {
  podman: 'install it with `apt-get install podman runc` (or choose --engine docker|host)',
  docker: 'install it with `apt-get install docker.io` and start dockerd, or set DOCKER_HOST (or choose --engine podman|host)',
};

/** True when the engine's CLI exists and its daemon/runtime answers. */
export async function engineWorks(engine: EngineName): Promise<boolean> {
  const args = engine === 'docker' ? ['version', '--format', '{{.Server.Version}}'] : ['version', '--format', '{{.Version}}'];
  const r = await capture(engine, args, { timeout: 15_000 });
  return r.exitCode === 0 && r.stdout.trim() !== '';
}

export async function requireEngine(engine: EngineName): Promise<void> {
  const r = await capture(engine, ['version'], { timeout: 15_000 });
  if (r.code === 'ENOENT') {
    throw new PauseBuildError(`${engine} is not installed`, { hint: ENGINE_INSTALL_HINT[engine] });
  }
  if (!(await engineWorks(engine))) {
    const detail = (r.stderr || r.stdout).split('\n').find((l) => /error|cannot|denied/i.test(l)) ?? 'it did not answer';
    throw new PauseBuildError(`${engine} is installed but not working: ${detail.trim()}`, { hint: ENGINE_INSTALL_HINT[engine] });
  }
}

export async function imageExists(engine: EngineName, ref: string): Promise<boolean> {
  const r = await capture(engine, ['image', 'inspect', '--format', '{{.Id}}', ref]);
  return r.exitCode === 0;
}

export async function imageId(engine: EngineName, ref: string): Promise<string> {
  const r = await capture(engine, ['image', 'inspect', '--format', '{{.Id}}', ref]);
  if (r.exitCode !== 0) throw new PauseBuildError(`${engine} image inspect ${ref} failed: ${r.stderr.trim() || r.code || r.signal}`, { hint: `check that ${ref} exists: ${engine} images` });
  return r.stdout.trim();
}

/** Removes containers by name; used after an interrupted or failed run so none is left behind. */
export async function removeContainer(engine: EngineName, name: string): Promise<void> {
  // podman would wait 10 s for a shell that ignores SIGTERM as PID 1; a throwaway compile is killed at once.
  const args = engine === 'podman' ? ['rm', '-f', '-t', '0', name] : ['rm', '-f', name];
  await capture(engine, args, { timeout: 30_000 });
}
