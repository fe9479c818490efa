/**
 * The one error type pause-build shows to people: what failed, and what to do next.
 * Anything else that escapes is a bug and is printed with its stack only under --debug.
 */
export class PauseBuildError extends Error {
  readonly hint: string | undefined;
  readonly exitCode: number;
  /** Multi-line output of the tool that failed (compiler, engine); shown only with --debug. */
  readonly details: string | undefined;

  constructor(message: string, options: { hint?: string; cause?: unknown; exitCode?: number; details?: string } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'PauseBuildError';
    this.hint = options.hint;
    this.exitCode = options.exitCode ?? 1;
    this.details = options.details;
  }
}

/** One line for the terminal: the message, then the hint after a dash. */
export function formatError(err: unknown): string {
  if (err instanceof PauseBuildError) {
    return err.hint ? `error: ${err.message} — ${err.hint}` : `error: ${err.message}`;
  }
  const message = err instanceof Error ? err.message : String(err);
  return `error: ${message.split('\n')[0]}`;
}
