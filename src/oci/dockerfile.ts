/**
 * The Dockerfile subset pause-build assembles without running anything: one `FROM scratch`
 * stage that adds local files and sets configuration. Parsing follows Docker's rules
 * (parser directives, comments, line continuations, `$VAR`/`${VAR:-default}` substitution,
 * global and stage ARG scope, ENV over ARG) so that the same file builds the same image
 * with `docker build` or `podman build`. Everything else is refused with the file, the line
 * and the instruction. Pure: files are only named here; src/oci/context.ts reads them.
 */
import path from 'node:path';
import { PauseBuildError } from '../errors.ts';

/** One file a layer adds. */
export interface PlannedFile {
  /** Path inside the build context, normalized, relative, no `..`. */
  readonly source: string;
  /** Absolute path in the image. */
  readonly dest: string;
  /** From --chmod; undefined: 0755 when the source is executable, else 0644. */
  readonly mode?: number;
  readonly uid: number;
  readonly gid: number;
}

export interface PlannedLayer {
  /** ADD refuses archives (Docker would unpack them); COPY takes any regular file. */
  readonly instruction: 'ADD' | 'COPY';
  readonly files: readonly PlannedFile[];
}

/** One history entry per instruction after FROM, as Docker records them. */
export interface PlannedStep {
  readonly line: number;
  readonly createdBy: string;
  /** Set for ADD and COPY, the only instructions that make a layer. */
  readonly layer?: PlannedLayer;
}

/** The OCI config fields a Dockerfile sets; absent when it does not set them. */
export interface ImageSettings {
  readonly User?: string;
  readonly Entrypoint?: readonly string[];
  readonly Cmd?: readonly string[];
  /** KEY=value in first-definition order; a later ENV of the same key replaces the value in place. */
  readonly Env?: readonly string[];
  readonly Labels?: Readonly<Record<string, string>>;
  readonly WorkingDir?: string;
}

export interface DockerfilePlan {
  readonly file: string;
  readonly steps: readonly PlannedStep[];
  readonly config: ImageSettings;
  /** Things Docker would accept but that are probably mistakes (undefined variables, shell form on scratch). */
  readonly warnings: readonly string[];
  /** The image of `FROM <image>` when ParseOptions.allowBase; absent for FROM scratch. */
  readonly base?: string;
}

export interface ParseOptions {
  /** How errors name the file (e.g. `Dockerfile`). */
  readonly file: string;
  /** --build-arg values; only ARGs the Dockerfile declares see them, as in Docker. */
  readonly buildArgs?: Readonly<Record<string, string>>;
  /** Accept `FROM <image>` (the Windows Dockerfile): the plan names the base, which the caller reads. */
  readonly allowBase?: boolean;
}

export const SUPPORTED_INSTRUCTIONS = ['FROM scratch', 'ARG', 'ADD', 'COPY', 'ENV', 'LABEL', 'USER', 'WORKDIR', 'ENTRYPOINT', 'CMD'] as const;
const SUPPORTED_HINT = `pause-build supports ${SUPPORTED_INSTRUCTIONS.join(', ')}`;

const REFUSED: Record<string, string> = {
  RUN: 'a FROM scratch image has no shell or tools to run; build the file beforehand and ADD it',
  EXPOSE: 'remove it (pause listens on no port)',
  VOLUME: 'remove it, or declare the volume where the image is run',
  HEALTHCHECK: 'remove it, or set the probe where the image is run',
  STOPSIGNAL: 'remove it; pause stops on SIGINT and SIGTERM',
  SHELL: 'remove it; a FROM scratch image has no shell',
  ONBUILD: 'remove it',
  MAINTAINER: 'use LABEL org.opencontainers.image.authors=… instead',
};

const NAME_RE = /^[A-Za-z_][A-Za-z0-9_]*$/;

interface LogicalLine {
  readonly line: number;
  readonly text: string;
}

class Problem {
  constructor(
    readonly file: string,
    readonly line: number,
  ) {}
  error(message: string, hint?: string): PauseBuildError {
    return new PauseBuildError(`${this.file}:${this.line}: ${message}`, { hint });
  }
}

/** Reads `# escape=` (the only directive that changes parsing); `# syntax=` and others are ignored as Docker's classic builder does. */
function escapeDirective(lines: readonly string[]): string {
  let escape = '\\';
  for (const raw of lines) {
    const m = /^\s*#\s*([A-Za-z]+)\s*=\s*(.*?)\s*$/.exec(raw);
    if (!m) break;
    if (m[1]!.toLowerCase() === 'escape') escape = m[2] === '`' ? '`' : '\\';
  }
  return escape;
}

/** Joins continuations, drops comments and blank lines; keeps the line each instruction starts on. */
export function logicalLines(text: string): { lines: LogicalLine[]; escape: string } {
  const raw = text.replace(/^\uFEFF/, '').split(/\r?\n/);
  const escape = escapeDirective(raw);
  const continuation = new RegExp(`${escape === '\\' ? '\\\\' : '`'}[ \\t]*$`);
  const lines: LogicalLine[] = [];
  let current: LogicalLine | undefined;
  raw.forEach((line, i) => {
    const comment = /^\s*#/.test(line);
    const blank = line.trim() === '';
    if (comment || (blank && current)) return;
    if (blank) return;
    const continued = continuation.test(line);
    const piece = continued ? line.replace(continuation, '') : line;
    current = current ? { line: current.line, text: current.text + piece } : { line: i + 1, text: piece };
    if (!continued) {
      lines.push(current);
      current = undefined;
    }
  });
  if (current && current.text.trim() !== '') lines.push(current);
  return { lines, escape };
}

type Lookup = (name: string) => string | undefined;

/**
 * Docker's word processing: quotes removed, escapes applied, variables substituted
 * (not inside single quotes). `onUndefined` hears of every plain `$X` with X unset.
 */
export function expandWord(word: string, lookup: Lookup, escape = '\\', onUndefined: (name: string) => void = () => {}, where?: Problem): string {
  const fail = (message: string) => (where ? where.error(message) : new PauseBuildError(message));
  let out = '';
  let i = 0;
  const variable = (): string => {
    // at word[i] === '$'
    const next = word[i + 1];
    if (next === '{') {
      const close = matchingBrace(word, i + 1);
      if (close < 0) throw fail(`unterminated \${ in "${word}"`);
      const body = word.slice(i + 2, close);
      i = close + 1;
      const m = /^([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-+?])([\s\S]*))?$/.exec(body);
      if (!m) throw fail(`unsupported substitution \${${body}}`);
      const [, name, op, rest = ''] = m;
      const value = lookup(name!);
      if (!op) {
        if (value === undefined) onUndefined(name!);
        return value ?? '';
      }
      const emptyCounts = op.startsWith(':');
      const isSet = value !== undefined && (!emptyCounts || value !== '');
      const arg = () => expandWord(rest, lookup, escape, onUndefined, where);
      switch (op.slice(-1)) {
        case '-':
          return isSet ? value! : arg();
        case '+':
          return isSet ? arg() : '';
        default:
          if (!isSet) throw fail(`${name} is required: ${arg() || 'not set'}`);
          return value!;
      }
    }
    const m = /^[A-Za-z_][A-Za-z0-9_]*/.exec(word.slice(i + 1));
    if (!m) {
      i += 1;
      return '$';
    }
    i += 1 + m[0].length;
    const value = lookup(m[0]);
    if (value === undefined) onUndefined(m[0]);
    return value ?? '';
  };
  while (i < word.length) {
    const ch = word[i]!;
    if (ch === "'") {
      const end = word.indexOf("'", i + 1);
      if (end < 0) throw fail(`unterminated single quote in ${word}`);
      out += word.slice(i + 1, end);
      i = end + 1;
    } else if (ch === '"') {
      i += 1;
      for (;;) {
        if (i >= word.length) throw fail(`unterminated double quote in ${word}`);
        const c = word[i]!;
        if (c === '"') {
          i += 1;
          break;
        }
        if (c === escape && (word[i + 1] === '"' || word[i + 1] === '$' || word[i + 1] === escape)) {
          out += word[i + 1];
          i += 2;
        } else if (c === '$') {
          out += variable();
        } else {
          out += c;
          i += 1;
        }
      }
    } else if (ch === '$') {
      out += variable();
    } else if (ch === escape) {
      out += word[i + 1] ?? '';
      i += 2;
    } else {
      out += ch;
      i += 1;
    }
  }
  return out;
}

function matchingBrace(s: string, open: number): number {
  let depth = 0;
  for (let i = open; i < s.length; i++) {
    if (s[i] === '{') depth++;
    else if (s[i] === '}' && --depth === 0) return i;
  }
  return -1;
}

/** Splits on whitespace outside quotes, keeping quotes and escapes for expandWord (Docker's parseWords). */
export function splitWords(text: string, escape = '\\'): string[] {
  const words: string[] = [];
  let word = '';
  let quote: string | undefined;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i]!;
    if (!quote && /\s/.test(ch)) {
      if (word) words.push(word);
      word = '';
      continue;
    }
    if (ch === escape && i + 1 < text.length && quote !== "'") {
      word += ch + text[i + 1];
      i++;
      continue;
    }
    if (quote ? ch === quote : ch === '"' || ch === "'") quote = quote ? undefined : ch;
    word += ch;
  }
  if (word) words.push(word);
  return words;
}

/** `["a", "b"]` → exec form; anything that is not a JSON array of strings is shell form, as in Docker. */
function execForm(args: string): string[] | undefined {
  if (!args.startsWith('[')) return undefined;
  try {
    const parsed: unknown = JSON.parse(args);
    if (Array.isArray(parsed) && parsed.every((a) => typeof a === 'string')) return parsed as string[];
  } catch {
    // shell form
  }
  return undefined;
}

/** `--name=value` flags at the start of ADD, COPY and FROM. */
function takeFlags(args: string): { flags: Map<string, string>; rest: string } {
  const flags = new Map<string, string>();
  let rest = args;
  for (;;) {
    const m = /^--([A-Za-z-]+)(?:=(\S*))?(?:\s+|$)/.exec(rest);
    if (!m) break;
    flags.set(m[1]!.toLowerCase(), m[2] ?? '');
    rest = rest.slice(m[0].length);
  }
  return { flags, rest };
}

interface Vars {
  args: Map<string, string | undefined>;
  env: Map<string, string>;
}

export function parseDockerfile(text: string, options: ParseOptions): DockerfilePlan {
  const { file } = options;
  const buildArgs = options.buildArgs ?? {};
  const { lines, escape } = logicalLines(text);
  if (lines.length === 0) throw new PauseBuildError(`${file} has no instructions`, { hint: 'start it with FROM scratch' });

  const warnings: string[] = [];
  const globalArgs = new Map<string, string | undefined>();
  const stage: Vars = { args: new Map(), env: new Map() };
  const steps: PlannedStep[] = [];
  let fromSeen = false;
  let fromBase: string | undefined;
  let user: string | undefined;
  let entrypoint: string[] | undefined;
  let cmd: string[] | undefined;
  let workdir: string | undefined;
  const labels = new Map<string, string>();

  for (const { line, text: lineText } of lines) {
    const where = new Problem(file, line);
    const m = /^\s*(\S+)\s*([\s\S]*?)\s*$/.exec(lineText)!;
    const word = m[1]!;
    const instruction = word.toUpperCase();
    const args = m[2]!;
    const lookup: Lookup = fromSeen
      ? (name) => (stage.env.has(name) ? stage.env.get(name) : stage.args.get(name))
      : (name) => globalArgs.get(name);
    const undefinedWarned = new Set<string>();
    const onUndefined = (name: string) => {
      if (undefinedWarned.has(name)) return;
      undefinedWarned.add(name);
      const declared = fromSeen ? stage.args.has(name) : globalArgs.has(name);
      if (!declared) warnings.push(`${file}:${line}: $${name} is not defined (declare it with ARG or ENV)`);
    };
    const expand = (w: string) => expandWord(w, lookup, escape, onUndefined, where);

    if (!/^[A-Za-z]+$/.test(word)) throw where.error(`"${word}" is not an instruction`, SUPPORTED_HINT);
    if (REFUSED[instruction]) throw where.error(`${instruction} is not supported`, `${REFUSED[instruction]} (${SUPPORTED_HINT})`);
    if (!['FROM', 'ARG', 'ADD', 'COPY', 'ENV', 'LABEL', 'USER', 'WORKDIR', 'ENTRYPOINT', 'CMD'].includes(instruction)) {
      throw where.error(`unknown instruction ${word}`, SUPPORTED_HINT);
    }
    if (args === '') throw where.error(`${instruction} needs arguments`);
    if (!fromSeen && instruction !== 'FROM' && instruction !== 'ARG') {
      throw where.error(`${instruction} before FROM`, 'only ARG may come before FROM scratch');
    }

    switch (instruction) {
      case 'FROM': {
        if (fromSeen) throw where.error('a second FROM: multi-stage builds are not supported', 'keep one FROM scratch stage and build files beforehand');
        const { flags, rest } = takeFlags(args);
        if (flags.size > 0) throw where.error(`FROM --${[...flags.keys()][0]} is not supported`, 'pause-build sets the platform of each image from --arch');
        const parts = rest.split(/\s+/);
        const valid = parts.length === 1 || (parts.length === 3 && parts[1]!.toUpperCase() === 'AS' && /^[a-z][a-z0-9._-]*$/i.test(parts[2]!));
        if (!valid) throw where.error(`FROM ${rest} is not valid`, 'write FROM scratch [AS name]');
        const base = expand(parts[0]!);
        if (base !== 'scratch' && !options.allowBase) throw where.error(`FROM ${base}: only FROM scratch is supported`, 'pause-build assembles images from nothing; nothing is pulled');
        if (base === '') throw where.error(`FROM ${parts[0]} names no image`, 'pass the base with --build-arg or give ARG a default');
        if (base !== 'scratch') fromBase = base;
        fromSeen = true;
        break;
      }
      case 'ARG': {
        const declared = splitWords(args, escape).map((w) => {
          const eq = w.indexOf('=');
          const name = eq < 0 ? w : w.slice(0, eq);
          if (!NAME_RE.test(name)) throw where.error(`ARG ${w}: invalid name "${name}"`, 'names are letters, digits and _');
          return { name, fallback: eq < 0 ? undefined : expand(w.slice(eq + 1)) };
        });
        for (const { name, fallback } of declared) {
          const given = Object.hasOwn(buildArgs, name) ? buildArgs[name] : undefined;
          if (!fromSeen) globalArgs.set(name, given ?? fallback);
          // Inside the stage, `ARG X` without a default takes the global default, as in Docker.
          else stage.args.set(name, given ?? fallback ?? globalArgs.get(name));
        }
        if (fromSeen) steps.push({ line, createdBy: `ARG ${args}` });
        break;
      }
      case 'ENV':
      case 'LABEL': {
        const pairs = nameValues(instruction, args, escape, where).map(([k, v]) => [expand(k), expand(v)] as const);
        for (const [key, value] of pairs) {
          if (key === '') throw where.error(`${instruction} with an empty name`);
          if (instruction === 'ENV') stage.env.set(key, value);
          else labels.set(key, value);
        }
        steps.push({ line, createdBy: `${instruction} ${pairs.map(([k, v]) => `${k}=${v}`).join(' ')}` });
        break;
      }
      case 'USER': {
        user = expand(args);
        if (user === '' || /\s/.test(user)) throw where.error(`USER "${user}" is not valid`, 'write USER uid[:gid], e.g. USER 65535:65535');
        steps.push({ line, createdBy: `USER ${user}` });
        break;
      }
      case 'WORKDIR': {
        // Sets WorkingDir only. BuildKit also creates the directory in a layer; runtimes
        // create a missing working directory when the container starts, so the image
        // needs no layer for it.
        const dir = expand(args);
        workdir = path.posix.resolve(workdir ?? '/', dir);
        steps.push({ line, createdBy: `WORKDIR ${workdir}` });
        break;
      }
      case 'ENTRYPOINT':
      case 'CMD': {
        let argv = execForm(args);
        if (!argv) {
          // Docker's rule for the shell form; a scratch image has no /bin/sh, so say so.
          argv = ['/bin/sh', '-c', args];
          warnings.push(`${file}:${line}: ${instruction} in shell form runs /bin/sh, which a FROM scratch image does not have; use the exec form ${instruction} ["…"]`);
        }
        if (instruction === 'ENTRYPOINT') entrypoint = argv;
        else cmd = argv;
        steps.push({ line, createdBy: `${instruction} ${JSON.stringify(argv)}` });
        break;
      }
      case 'ADD':
      case 'COPY': {
        steps.push(addStep(instruction, args, { where, expand, escape, workdir: workdir ?? '/' }, line));
        break;
      }
    }
  }
  if (!fromSeen) throw new PauseBuildError(`${file} has no FROM`, { hint: 'start it with FROM scratch (after any ARG)' });

  const env = [...stage.env].map(([k, v]) => `${k}=${v}`);
  const config: ImageSettings = {
    ...(user !== undefined && { User: user }),
    ...(entrypoint && { Entrypoint: entrypoint }),
    ...(cmd && { Cmd: cmd }),
    ...(env.length > 0 && { Env: env }),
    ...(labels.size > 0 && { Labels: Object.fromEntries(labels) }),
    ...(workdir !== undefined && { WorkingDir: workdir }),
  };
  return { file, steps, config, warnings, ...(fromBase !== undefined && { base: fromBase }) };
}

/** ENV and LABEL: `k=v k2="v 2"`, or the legacy `k the rest of the line`. Values are not yet expanded. */
function nameValues(instruction: string, args: string, escape: string, where: Problem): [string, string][] {
  const words = splitWords(args, escape);
  if (!words[0]!.includes('=')) {
    const m = /^(\S+)\s+([\s\S]+)$/.exec(args);
    if (!m) throw where.error(`${instruction} ${args} has no value`, `write ${instruction} name=value`);
    return [[m[1]!, m[2]!]];
  }
  return words.map((w) => {
    const eq = w.indexOf('=');
    if (eq < 0) throw where.error(`${instruction}: "${w}" is not name=value`, `write ${instruction} name=value [name=value…]`);
    return [w.slice(0, eq), w.slice(eq + 1)];
  });
}

interface AddContext {
  readonly where: Problem;
  readonly expand: (w: string) => string;
  readonly escape: string;
  readonly workdir: string;
}

function addStep(instruction: 'ADD' | 'COPY', args: string, ctx: AddContext, line: number): PlannedStep {
  const { where, expand } = ctx;
  const { flags, rest } = takeFlags(args);
  let mode: number | undefined;
  let uid = 0;
  let gid = 0;
  for (const [flag, raw] of flags) {
    const value = expand(raw);
    if (flag === 'chmod') {
      if (!/^[0-7]{3,4}$/.test(value)) throw where.error(`${instruction} --chmod=${value} is not an octal mode`, 'use e.g. --chmod=0755');
      mode = Number.parseInt(value, 8);
    } else if (flag === 'chown') {
      const m = /^(\d+)(?::(\d+))?$/.exec(value);
      if (!m) throw where.error(`${instruction} --chown=${value}: only numeric uid[:gid] is supported`, 'a FROM scratch image has no /etc/passwd to look names up in');
      uid = Number(m[1]);
      gid = Number(m[2] ?? m[1]);
    } else {
      throw where.error(`${instruction} --${flag} is not supported`, `${instruction} accepts --chmod and a numeric --chown`);
    }
  }
  const words = (execForm(rest) ?? rest.split(/\s+/).filter(Boolean)).map(expand);
  if (words.length < 2) throw where.error(`${instruction} needs a source and a destination`, `write ${instruction} <file> <dest>`);
  const destWord = words[words.length - 1]!;
  const sources = words.slice(0, -1).map((s) => contextPath(instruction, s, where));
  const intoDir = destWord.endsWith('/') || destWord === '.' || destWord === '..' || sources.length > 1;
  if (sources.length > 1 && !destWord.endsWith('/')) {
    throw where.error(`${instruction} with several sources needs a destination directory ending in /`, `write ${instruction} a b ${destWord}/`);
  }
  const destBase = path.posix.resolve(ctx.workdir, destWord);
  const byDest = new Map<string, PlannedFile>();
  for (const source of sources) {
    const dest = intoDir ? path.posix.join(destBase, path.posix.basename(source)) : destBase;
    if (dest === '/') throw where.error(`${instruction} to / needs a file name`, `write ${instruction} ${source} /${path.posix.basename(source)}`);
    byDest.set(dest, { source, dest, ...(mode !== undefined && { mode }), uid, gid });
  }
  const flagText = [...flags].map(([f, v]) => `--${f}=${expand(v)}`);
  return {
    line,
    createdBy: [instruction, ...flagText, ...words].join(' '),
    layer: { instruction, files: [...byDest.values()] },
  };
}

/** A source as a clean context-relative path, or a one-line refusal of what Docker would fetch, glob or escape. */
function contextPath(instruction: string, source: string, where: Problem): string {
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(source) || /^git@/.test(source)) {
    throw where.error(`${instruction} ${source}: remote sources are not supported`, 'download the file beforehand and add it from the build context');
  }
  if (source.startsWith('<<')) throw where.error(`${instruction} ${source}: here-documents are not supported`, 'put the content in a file in the build context');
  if (/[*?[]/.test(source)) throw where.error(`${instruction} ${source}: wildcards are not supported`, 'name each file');
  const clean = path.posix.normalize(source.replace(/^\/+/, ''));
  if (clean === '..' || clean.startsWith('../')) {
    throw where.error(`${instruction} ${source} is outside the build context`, 'move the file into the build context (--context)');
  }
  if (clean === '.' || clean === '') throw where.error(`${instruction} ${source}: adding the whole build context is not supported`, 'name each file');
  return clean.replace(/\/+$/, '');
}
