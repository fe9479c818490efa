/** The machine a bench ran on, for the results file: cores, memory, kernel and tool versions. */
import os from 'node:os';
import { timed } from './process.ts';

export interface Machine {
  readonly cpus: number;
  readonly cpuModel: string;
  readonly memoryGiB: number;
  readonly kernel: string;
  readonly os: string;
  readonly node: string;
  readonly podman: string;
  readonly skopeo: string;
  readonly registry: string;
}

async function firstLine(cmd: string, args: string[]): Promise<string> {
  const r = await timed(cmd, args).catch(() => undefined);
  return r?.exitCode === 0 ? (r.stdout.trim().split('\n')[0] ?? '') : 'not found';
}

async function osName(): Promise<string> {
  const r = await timed('sh', ['-c', '. /etc/os-release && echo "$PRETTY_NAME"']).catch(() => undefined);
  return r?.stdout.trim() || os.type();
}

export async function describeMachine(): Promise<Machine> {
  return {
    cpus: os.availableParallelism(),
    cpuModel: os.cpus()[0]?.model.trim() ?? 'unknown',
    memoryGiB: Math.round((os.totalmem() / 1024 ** 3) * 10) / 10,
    kernel: os.release(),
    os: await osName(),
    node: process.version,
    podman: (await firstLine('podman', ['--version'])).replace(/^podman version /, ''),
    skopeo: (await firstLine('skopeo', ['--version'])).replace(/^skopeo version /, ''),
    registry: (await firstLine('docker-registry', ['--version'])).replace(/^docker-registry\s+/, ''),
  };
}

export function machineLines(m: Machine): string[] {
  return [
    `- ${m.cpus} CPUs (${m.cpuModel}), ${m.memoryGiB} GiB memory, ${m.os}, kernel ${m.kernel}`,
    `- node ${m.node}, podman ${m.podman}, skopeo ${m.skopeo}, docker-registry ${m.registry}`,
  ];
}
