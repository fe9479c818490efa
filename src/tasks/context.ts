/** What the task lists share as they run: inputs resolved once, results filled in by stages. */
import type { BatchCompileRequest, CompileResult } from '../compile.ts';
import type { WindowsBinaries } from '../compile-windows.ts';
import type { Platform, WindowsPlatform } from '../platforms.ts';
import type { Toolchain } from '../toolchain/toolchain.ts';
import type { Version } from '../version.ts';

export interface BuildOptions {
  readonly root: string;
  readonly platforms: readonly Platform[];
  /** Windows builds (opt-in); empty for a Linux-only build. */
  readonly windows: readonly WindowsPlatform[];
  /** build/pause/windows/pause.c (wincat/ beside it). */
  readonly windowsSource: string;
  readonly engine: string | undefined;
  readonly base: string | undefined;
  readonly version: Version;
  /** Compiled in: v<tag>-<rev>. */
  readonly versionString: string;
  /** The git revision in the version string; also the index annotation. */
  readonly revision: string;
  readonly source: string;
  readonly binDir: string;
  /** Compile cache directory; undefined with --no-cache. */
  readonly cacheDir: string | undefined;
  /** Run each binary (-v, SIGTERM) natively or under qemu before accepting it. */
  readonly emulate: boolean;
  readonly signal: AbortSignal;
}

export interface BuildState {
  toolchain?: Toolchain;
  builderImage?: string;
  readonly binaries: Map<string, CompileResult>;
  /** Keyed by WindowsPlatform.name. */
  windowsBinaries?: Map<string, WindowsBinaries>;
  readonly errors: Error[];
  /** A job for the compilers' container besides the compiles (see BatchCompileRequest.besides). */
  besideCompile?: BatchCompileRequest['besides'];
  /** Called with each binary as soon as it is compiled and ELF-checked (before its run). */
  onBinary?: (result: CompileResult) => void;
  /** Called with each binary once it has passed its run (or, without one, its ELF check). */
  onAccepted?: (result: CompileResult) => void;
}
