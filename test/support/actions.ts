/** A simulated GitHub Actions step: the env the runner sets, and readers for the files it collects. */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';

export interface ActionsStep {
  readonly dir: string;
  readonly env: Record<string, string>;
  /** GITHUB_OUTPUT parsed as the runner does: `name=value` lines and `name<<DELIM … DELIM` blocks. */
  outputs(): Promise<Record<string, string>>;
  summary(): Promise<string>;
  remove(): Promise<void>;
}

export function parseOutputFile(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    if (!line) continue;
    const heredoc = /^([^=<]+)<<(.+)$/.exec(line);
    if (heredoc) {
      const [, name, delim] = heredoc;
      const end = lines.indexOf(delim!, i + 1);
      if (end < 0) throw new Error(`GITHUB_OUTPUT: no closing ${delim} for ${name}`);
      out[name!] = lines.slice(i + 1, end).join('\n');
      i = end;
      continue;
    }
    const eq = line.indexOf('=');
    if (eq < 0) throw new Error(`GITHUB_OUTPUT: cannot parse line ${JSON.stringify(line)}`);
    out[line.slice(0, eq)] = line.slice(eq + 1);
  }
  return out;
}

export async function actionsStep(extra: Record<string, string> = {}): Promise<ActionsStep> {
  const dir = await mkdtemp(path.join(tmpdir(), 'wt-release-actions-'));
  const output = path.join(dir, 'output');
  const summary = path.join(dir, 'summary');
  await writeFile(output, '');
  await writeFile(summary, '');
  return {
    dir,
    env: {
      GITHUB_ACTIONS: 'true',
      CI: 'true',
      GITHUB_OUTPUT: output,
      GITHUB_STEP_SUMMARY: summary,
      GITHUB_REF: 'refs/tags/v3.10',
      GITHUB_REF_NAME: 'v3.10',
      GITHUB_REF_TYPE: 'tag',
      ...extra,
    },
    outputs: async () => parseOutputFile(await readFile(output, 'utf8')),
    summary: () => readFile(summary, 'utf8'),
    remove: () => rm(dir, { recursive: true, force: true }),
  };
}
