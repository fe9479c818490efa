/**
 * The arch table. Adding an arch is one row: the compiler triple, the OCI platform,
 * the ELF identity the binary must carry, and the qemu-user binary that runs it.
 */
import { PauseBuildError } from './errors.ts';
import { formatPlatform } from './oci/platform.ts';

export interface Platform {
  /** Name used on the command line, in file names and in tags (Kubernetes' GOARCH). */
  readonly arch: string;
  /** GNU triple: `<triple>-gcc` and `<triple>-strip`. */
  readonly triple: string;
  readonly oci: { readonly os: 'linux'; readonly architecture: string; readonly variant?: string };
  readonly elf: { readonly machine: number; readonly class: 32 | 64; readonly endian: 'little' | 'big' };
  /** qemu-user binary name, `qemu-<name>-static`; undefined when the host runs it natively. */
  readonly qemu: string;
  /** Debian packages that give `<triple>-gcc`, `-strip` and a static libc, for the host toolchain. */
  readonly debPackages: readonly string[];
  /** Built unless --arch says otherwise. */
  readonly default: boolean;
}

// ELF e_machine values from the System V ABI supplements.
const EM_S390 = 22;
const EM_PPC64 = 21;
const EM_ARM = 40;
const EM_X86_64 = 62;
const EM_AARCH64 = 183;
const EM_RISCV = 243;

export const PLATFORMS: readonly Platform[] = [
  { arch: 'amd64', triple: 'x86_64-linux-gnu', oci: { os: 'linux', architecture: 'amd64' }, elf: { machine: EM_X86_64, class: 64, endian: 'little' }, qemu: 'x86_64', debPackages: ['gcc', 'libc6-dev', 'binutils'], default: true },
  { arch: 'arm', triple: 'arm-linux-gnueabihf', oci: { os: 'linux', architecture: 'arm', variant: 'v7' }, elf: { machine: EM_ARM, class: 32, endian: 'little' }, qemu: 'arm', debPackages: ['gcc-arm-linux-gnueabihf', 'libc6-dev-armhf-cross'], default: true },
  { arch: 'arm64', triple: 'aarch64-linux-gnu', oci: { os: 'linux', architecture: 'arm64', variant: 'v8' }, elf: { machine: EM_AARCH64, class: 64, endian: 'little' }, qemu: 'aarch64', debPackages: ['gcc-aarch64-linux-gnu', 'libc6-dev-arm64-cross'], default: true },
  { arch: 'ppc64le', triple: 'powerpc64le-linux-gnu', oci: { os: 'linux', architecture: 'ppc64le' }, elf: { machine: EM_PPC64, class: 64, endian: 'little' }, qemu: 'ppc64le', debPackages: ['gcc-powerpc64le-linux-gnu', 'libc6-dev-ppc64el-cross'], default: true },
  { arch: 's390x', triple: 's390x-linux-gnu', oci: { os: 'linux', architecture: 's390x' }, elf: { machine: EM_S390, class: 64, endian: 'big' }, qemu: 's390x', debPackages: ['gcc-s390x-linux-gnu', 'libc6-dev-s390x-cross'], default: true },
  // Opt-in: Debian ships the cross compiler, upstream does not build it yet.
  { arch: 'riscv64', triple: 'riscv64-linux-gnu', oci: { os: 'linux', architecture: 'riscv64' }, elf: { machine: EM_RISCV, class: 64, endian: 'little' }, qemu: 'riscv64', debPackages: ['gcc-riscv64-linux-gnu', 'libc6-dev-riscv64-cross'], default: false },
];

/**
 * Windows builds are opt-in (`--arch windows/amd64`, or `windows` beside the Linux
 * arches): their images stand on a base read from a registry, one per Windows version.
 */
export interface WindowsPlatform {
  readonly arch: string;
  /** In file names and tags: pause-windows-amd64.exe, <tag>-windows-amd64-<os.version>. */
  readonly name: string;
  /** mingw-w64 triple for pause.exe; Go's GOARCH for wincat.exe. */
  readonly triple: string;
  readonly goarch: string;
  readonly oci: { readonly os: 'windows'; readonly architecture: string };
  readonly debPackages: readonly string[];
}

export const WINDOWS_PLATFORMS: readonly WindowsPlatform[] = [
  { arch: 'amd64', name: 'windows-amd64', triple: 'x86_64-w64-mingw32', goarch: 'amd64', oci: { os: 'windows', architecture: 'amd64' }, debPackages: ['gcc-mingw-w64-x86-64', 'golang-go'] },
];

const WINDOWS_NAMES: Readonly<Record<string, string>> = { windows: 'amd64', 'windows/amd64': 'amd64' };

function archNames(values: readonly string[]): string[] {
  return values.flatMap((v) => v.split(',')).map((v) => v.trim()).filter(Boolean);
}

/** The Windows builds `--arch` asks for: none unless it names `windows` or `windows/amd64`. */
export function selectWindows(values: readonly string[] | undefined): WindowsPlatform[] {
  const wanted = new Set(archNames(values ?? []).map((n) => WINDOWS_NAMES[n.toLowerCase()]).filter(Boolean));
  return WINDOWS_PLATFORMS.filter((p) => wanted.has(p.arch));
}

export const DEFAULT_ARCHES: readonly string[] = PLATFORMS.filter((p) => p.default).map((p) => p.arch);

const DEFAULT_ARCHES_TEXT = PLATFORMS.filter((p) => p.default).map((p) => p.arch).join(',');

export function platformFor(arch: string): Platform {
  const found = PLATFORMS.find((p) => p.arch === arch);
  if (!found) {
    throw new PauseBuildError(`unknown arch "${arch}"`, {
      hint: `supported: ${PLATFORMS.map((p) => p.arch).join(', ')}, and windows/amd64 (or windows)`,
    });
  }
  return found;
}

/**
 * Parses `--arch` values: comma-separated and/or repeated, `all` for every row.
 * Order follows the table so that outputs (index entries, tables) are stable.
 */
export function selectPlatforms(values: readonly string[] | undefined): Platform[] {
  if (values === undefined || values.length === 0) return PLATFORMS.filter((p) => p.default);
  const all = archNames(values);
  const names = all.filter((n) => WINDOWS_NAMES[n.toLowerCase()] === undefined);
  // Windows alone: no Linux arch (selectWindows has the rest).
  if (names.length === 0 && all.length > 0) return [];
  // `--arch "$ARCH"` with ARCH unset must not quietly build every arch.
  if (names.length === 0) {
    throw new PauseBuildError(`--arch ${JSON.stringify(values.join(','))} names no arch`, {
      hint: `name one or more of ${PLATFORMS.map((p) => p.arch).join(', ')}, or leave --arch out for ${DEFAULT_ARCHES_TEXT}`,
    });
  }
  if (names.includes('all')) return [...PLATFORMS];
  const wanted = new Set(names.map((n) => platformFor(n).arch));
  return PLATFORMS.filter((p) => wanted.has(p.arch));
}

/** `linux/arm/v7` — the form docker, crane and skopeo print and accept. */
export function platformString(p: Pick<Platform, 'oci'>): string {
  return formatPlatform(p.oci);
}

/**
 * The arch-table row an OCI platform names, as pause-build calls it (`linux/arm/v7` → arm).
 * A platform without a variant matches the row's (configs often leave it out).
 */
export function archOfPlatform(p: { readonly os?: string; readonly architecture?: string; readonly variant?: string } | undefined): string | undefined {
  if (!p) return undefined;
  return PLATFORMS.find((row) => row.oci.os === p.os && row.oci.architecture === p.architecture && (row.oci.variant ?? '') === (p.variant ?? row.oci.variant ?? ''))?.arch;
}

/** Items in arch-table order (an index lists its platforms so); unknown arches last. */
export function inTableOrder<T extends { readonly arch: string }>(items: readonly T[]): T[] {
  const rank = (arch: string) => {
    const i = PLATFORMS.findIndex((p) => p.arch === arch);
    return i < 0 ? PLATFORMS.length : i;
  };
  return [...items].sort((a, b) => rank(a.arch) - rank(b.arch));
}
