/**
 * Deterministic tar and gzip. The tar bytes are those Go's archive/tar writes for the same
 * headers (the library behind docker, buildkit and podman): USTAR, the file type bits in
 * the mode field (0100755), numeric fields zero-padded octal with a NUL, empty user and
 * group names, and two zero blocks at the end. So a layer built here has the same diff_id
 * as one podman builds from the same file with the same timestamp. Names that do not fit
 * USTAR (over 255 bytes, or not ASCII) get a PAX `path` record; only there may the bytes
 * differ from Go's.
 *
 * Gzip is fflate's pure-JS deflate at a fixed level with a fixed header (no name, mtime 0,
 * OS byte 3), so the compressed bytes do not depend on the Node.js or zlib build.
 */
import { createRequire } from 'node:module';
import type * as Fflate from 'fflate';
import { PauseBuildError } from '../errors.ts';

const require = createRequire(import.meta.url);
let fflate: typeof Fflate | undefined;

/** fflate, loaded on the first gzip: a publish whose record holds never compresses anything. */
function fflateLib(): typeof Fflate {
  fflate ??= require('fflate') as typeof Fflate;
  return fflate;
}

export interface TarEntry {
  /** Path inside the archive, without a leading `/`; directories may end in `/`. */
  readonly path: string;
  readonly type: 'file' | 'dir';
  /** Permission bits (e.g. 0o755); the file type bits are added when written. */
  readonly mode: number;
  readonly uid: number;
  readonly gid: number;
  readonly content?: Uint8Array;
  /** Extra PAX records (Windows layers: file attributes, security descriptor), written as Go writes them. */
  readonly pax?: Readonly<Record<string, string>>;
}

export interface TarHeader {
  readonly path: string;
  readonly type: 'file' | 'dir' | 'other';
  /** The mode field as written, with file type bits. */
  readonly mode: number;
  readonly uid: number;
  readonly gid: number;
  readonly uname: string;
  readonly gname: string;
  readonly mtime: number;
  readonly size: number;
  readonly magic: string;
  readonly content: Uint8Array;
}

const BLOCK = 512;
const S_IFREG = 0o100000;
const S_IFDIR = 0o040000;
/** Fixed so that the same tar always compresses to the same bytes. */
export const GZIP_LEVEL = 9;

const encoder = new TextEncoder();

function octal(value: number, width: number, what: string): Uint8Array {
  const digits = value.toString(8);
  if (!Number.isSafeInteger(value) || value < 0 || digits.length > width - 1) {
    throw new PauseBuildError(`tar: ${what} ${value} does not fit a ${width - 1}-digit octal field`);
  }
  return encoder.encode(`${digits.padStart(width - 1, '0')}\0`);
}

function put(block: Uint8Array, offset: number, width: number, bytes: Uint8Array): void {
  block.set(bytes.subarray(0, width), offset);
}

/** USTAR stores up to 100 bytes of name, plus up to 155 of prefix split at a `/`. */
function splitUstarName(name: Uint8Array): { name: Uint8Array; prefix: Uint8Array } | undefined {
  if (name.length <= 100) return { name, prefix: new Uint8Array(0) };
  for (let i = Math.min(name.length - 1, 155); i > 0; i--) {
    if (name[i] === 0x2f && name.length - i - 1 <= 100 && name.length - i - 1 > 0) {
      return { prefix: name.subarray(0, i), name: name.subarray(i + 1) };
    }
  }
  return undefined;
}

function header(fields: { name: Uint8Array; prefix: Uint8Array; mode: number; uid: number; gid: number; size: number; mtime: number; typeflag: string }): Uint8Array {
  const block = new Uint8Array(BLOCK);
  put(block, 0, 100, fields.name);
  put(block, 100, 8, octal(fields.mode, 8, 'mode'));
  put(block, 108, 8, octal(fields.uid, 8, 'uid'));
  put(block, 116, 8, octal(fields.gid, 8, 'gid'));
  put(block, 124, 12, octal(fields.size, 12, 'size'));
  put(block, 136, 12, octal(fields.mtime, 12, 'mtime'));
  block.fill(0x20, 148, 156);
  block[156] = fields.typeflag.charCodeAt(0);
  put(block, 257, 8, encoder.encode('ustar\u000000'));
  // uname, gname: empty. devmajor, devminor: zero, as Go writes them.
  put(block, 329, 8, octal(0, 8, 'devmajor'));
  put(block, 337, 8, octal(0, 8, 'devminor'));
  put(block, 345, 155, fields.prefix);
  let sum = 0;
  for (const b of block) sum += b;
  put(block, 148, 8, encoder.encode(`${sum.toString(8).padStart(6, '0')}\0 `));
  return block;
}

/** One PAX record: "<length> path=<value>\n", where length counts itself. */
function paxRecord(key: string, value: string): string {
  const body = ` ${key}=${value}\n`;
  let length = Buffer.byteLength(body) + 1;
  while (String(length).length + Buffer.byteLength(body) !== length) length++;
  return `${length}${body}`;
}

function padding(size: number): Uint8Array {
  return new Uint8Array((BLOCK - (size % BLOCK)) % BLOCK);
}

function normalizedPath(entry: TarEntry): string {
  const bare = entry.path.replace(/^\/+/, '').replace(/\/+$/, '');
  if (bare === '' || bare.split('/').some((p) => p === '' || p === '.' || p === '..')) {
    throw new PauseBuildError(`tar: invalid entry path "${entry.path}"`);
  }
  return entry.type === 'dir' ? `${bare}/` : bare;
}

/**
 * The tar of `entries`, sorted by path (so the input order does not matter), every entry
 * with modification time `mtime` (seconds since the epoch).
 */
export function writeTar(entries: readonly TarEntry[], mtime: number): Uint8Array {
  const named = entries.map((e) => ({ entry: e, path: normalizedPath(e) }));
  named.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  const chunks: Uint8Array[] = [];
  for (let i = 0; i < named.length; i++) {
    const { entry, path } = named[i]!;
    if (i > 0 && named[i - 1]!.path === path) throw new PauseBuildError(`tar: duplicate entry "${path}"`);
    if (entry.mode !== (entry.mode & 0o7777)) throw new PauseBuildError(`tar: mode ${entry.mode.toString(8)} of "${path}" is not a permission mode`);
    const content = entry.type === 'file' ? (entry.content ?? new Uint8Array(0)) : new Uint8Array(0);
    const common = {
      mode: entry.mode | (entry.type === 'dir' ? S_IFDIR : S_IFREG),
      uid: entry.uid,
      gid: entry.gid,
      mtime,
      typeflag: entry.type === 'dir' ? '5' : '0',
    };
    const nameBytes = encoder.encode(path);
    // eslint-disable-next-line no-control-regex
    const split = /^[\x01-\x7f]*$/.test(path) ? splitUstarName(nameBytes) : undefined;
    if (split && !entry.pax) {
      chunks.push(header({ ...common, ...split, size: content.length }));
    } else {
      // Named as Go names a PAX header: <dir>/PaxHeaders.0/<base>, cut to fit. Go sorts the records by key.
      const records: Record<string, string> = { ...entry.pax, ...(!split && { path }) };
      const pax = encoder.encode(Object.keys(records).sort().map((k) => paxRecord(k, records[k]!)).join(''));
      const slash = path.replace(/\/$/, '').lastIndexOf('/');
      const paxName = encoder.encode(`${slash < 0 ? '' : `${path.slice(0, slash)}/`}PaxHeaders.0/${path.slice(slash + 1)}`).subarray(0, 100);
      chunks.push(header({ name: paxName, prefix: new Uint8Array(0), mode: 0, uid: 0, gid: 0, size: pax.length, mtime, typeflag: 'x' }), pax, padding(pax.length));
      chunks.push(header({ ...common, ...(split ?? { name: nameBytes.subarray(0, 100), prefix: new Uint8Array(0) }), size: content.length }));
    }
    chunks.push(content, padding(content.length));
  }
  chunks.push(new Uint8Array(2 * BLOCK));
  return Buffer.concat(chunks);
}

function field(block: Uint8Array, offset: number, width: number): string {
  const raw = block.subarray(offset, offset + width);
  const end = raw.indexOf(0);
  return Buffer.from(end < 0 ? raw : raw.subarray(0, end)).toString('utf8');
}

function num(block: Uint8Array, offset: number, width: number): number {
  const text = field(block, offset, width).trim();
  return text === '' ? 0 : Number.parseInt(text, 8);
}

/** Reads a tar back (USTAR with PAX `path` records): for tests and checks, not for untrusted input at scale. */
export function readTar(bytes: Uint8Array): TarHeader[] {
  const out: TarHeader[] = [];
  let offset = 0;
  let paxPath: string | undefined;
  while (offset + BLOCK <= bytes.length) {
    const block = bytes.subarray(offset, offset + BLOCK);
    if (block.every((b) => b === 0)) break;
    let sum = 0;
    for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 0x20 : block[i]!;
    if (sum !== num(block, 148, 8)) throw new PauseBuildError(`tar: bad header checksum at offset ${offset}`);
    const size = num(block, 124, 12);
    const content = bytes.subarray(offset + BLOCK, offset + BLOCK + size);
    offset += BLOCK + size + padding(size).length;
    const typeflag = String.fromCharCode(block[156]!);
    if (typeflag === 'x') {
      const m = /(?:^|\n)\d+ path=([^\n]*)\n/.exec(Buffer.from(content).toString('utf8'));
      paxPath = m?.[1];
      continue;
    }
    const prefix = field(block, 345, 155);
    const name = field(block, 0, 100);
    out.push({
      path: paxPath ?? (prefix ? `${prefix}/${name}` : name),
      type: typeflag === '0' || typeflag === '\0' ? 'file' : typeflag === '5' ? 'dir' : 'other',
      mode: num(block, 100, 8),
      uid: num(block, 108, 8),
      gid: num(block, 116, 8),
      uname: field(block, 265, 32),
      gname: field(block, 297, 32),
      mtime: num(block, 136, 12),
      size,
      magic: Buffer.from(block.subarray(257, 265)).toString('latin1'),
      content,
    });
    paxPath = undefined;
  }
  return out;
}

export function gzip(bytes: Uint8Array): Uint8Array {
  return fflateLib().gzipSync(bytes, { level: GZIP_LEVEL, mtime: 0 });
}

export function gunzip(bytes: Uint8Array): Uint8Array {
  return fflateLib().gunzipSync(bytes);
}
