import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { execa } from 'execa';
import { buildLayer, layerEntries } from '../src/oci/layer.ts';
import { GZIP_LEVEL, type TarEntry, gunzip, gzip, readTar, writeTar } from '../src/oci/tar.ts';

const bytes = (s: string) => new TextEncoder().encode(s);
const EPOCH = 1_700_000_000;

const entries: TarEntry[] = [
  { path: 'usr/bin/pause', type: 'file', mode: 0o755, uid: 0, gid: 0, content: bytes('#!pause\n') },
  { path: 'etc/motd', type: 'file', mode: 0o644, uid: 10, gid: 20, content: bytes('x'.repeat(513)) },
  { path: 'usr/', type: 'dir', mode: 0o755, uid: 0, gid: 0 },
  { path: 'usr/bin', type: 'dir', mode: 0o755, uid: 0, gid: 0 },
  { path: 'empty', type: 'file', mode: 0o600, uid: 0, gid: 0, content: new Uint8Array(0) },
];

describe('tar', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'wt-oci-tar-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('gives the same bytes for the same entries in any order', () => {
    const a = writeTar(entries, EPOCH);
    const b = writeTar([...entries].reverse(), EPOCH);
    assert.deepEqual(Buffer.from(a), Buffer.from(b));
    assert.notDeepEqual(Buffer.from(writeTar(entries, EPOCH + 1)), Buffer.from(a), 'mtime is in the bytes');
  });

  it('writes sorted entries with fixed mtime, numeric owner, empty names, type bits in the mode', () => {
    const headers = readTar(writeTar(entries, EPOCH));
    assert.deepEqual(
      headers.map((h) => [h.path, h.type, h.mode.toString(8), h.uid, h.gid, h.uname, h.gname, h.mtime, h.size, h.magic]),
      [
        ['empty', 'file', '100600', 0, 0, '', '', EPOCH, 0, 'ustar\u000000'],
        ['etc/motd', 'file', '100644', 10, 20, '', '', EPOCH, 513, 'ustar\u000000'],
        ['usr/', 'dir', '40755', 0, 0, '', '', EPOCH, 0, 'ustar\u000000'],
        ['usr/bin/', 'dir', '40755', 0, 0, '', '', EPOCH, 0, 'ustar\u000000'],
        ['usr/bin/pause', 'file', '100755', 0, 0, '', '', EPOCH, 8, 'ustar\u000000'],
      ],
    );
    assert.equal(Buffer.from(headers[4]!.content).toString(), '#!pause\n');
  });

  it('lays out fields as Go archive/tar does (zero-padded octal + NUL, checksum "%06o\\0 ", two zero blocks)', () => {
    const tar = writeTar([{ path: 'pause', type: 'file', mode: 0o755, uid: 0, gid: 0, content: bytes('abc') }], EPOCH);
    const field = (o: number, n: number) => Buffer.from(tar.subarray(o, o + n)).toString('latin1');
    assert.equal(field(100, 8), '0100755\0');
    assert.equal(field(108, 8), '0000000\0');
    assert.equal(field(124, 12), '00000000003\0');
    assert.equal(field(136, 12), '14524770400\0');
    assert.match(field(148, 8), /^[0-7]{6}\0 $/);
    assert.equal(field(156, 1), '0');
    assert.equal(field(329, 16), '0000000\0'.repeat(2));
    assert.equal(tar.length, 512 + 512 + 1024);
    assert.ok(tar.subarray(1024).every((b) => b === 0));
  });

  it('is read back the same by GNU tar, including long names (USTAR prefix and PAX)', async () => {
    const long = `${'d'.repeat(120)}/${'f'.repeat(90)}`;
    const veryLong = `${'x'.repeat(150)}/${'y'.repeat(150)}`;
    const file = path.join(dir, 'long.tar');
    await writeFile(
      file,
      writeTar(
        [
          { path: long, type: 'file', mode: 0o644, uid: 0, gid: 0, content: bytes('1') },
          { path: veryLong, type: 'file', mode: 0o644, uid: 0, gid: 0, content: bytes('2') },
          { path: 'pause', type: 'file', mode: 0o755, uid: 65535, gid: 65535, content: bytes('3') },
        ],
        EPOCH,
      ),
    );
    const r = await execa('tar', ['--list', '--verbose', '--numeric-owner', '--full-time', '-f', file], { env: { TZ: 'UTC' } });
    const lines = r.stdout.split('\n').map((l) => l.split(/\s+/));
    assert.deepEqual(
      lines.map((l) => [l[0], l[1], l[3], l[4], l[5]]),
      [
        ['-rw-r--r--', '0/0', '2023-11-14', '22:13:20', long],
        ['-rwxr-xr-x', '65535/65535', '2023-11-14', '22:13:20', 'pause'],
        ['-rw-r--r--', '0/0', '2023-11-14', '22:13:20', veryLong],
      ],
    );
    assert.deepEqual(readTar(new Uint8Array(await readFile(file))).map((h) => h.path), [long, 'pause', veryLong]);
  });

  const refusals: [string, TarEntry[], number, RegExp][] = [
    ['duplicate paths', [entries[0]!, { ...entries[0]!, path: '/usr/bin/pause' }], EPOCH, /duplicate entry "usr\/bin\/pause"/],
    ['.. in a path', [{ ...entries[0]!, path: 'a/../b' }], EPOCH, /invalid entry path "a\/\.\.\/b"/],
    ['an empty path', [{ ...entries[0]!, path: '/' }], EPOCH, /invalid entry path "\/"/],
    ['type bits in mode', [{ ...entries[0]!, mode: 0o100755 }], EPOCH, /not a permission mode/],
    ['an mtime past the octal field', [entries[0]!], 8 ** 11, /mtime 8589934592 does not fit/],
    ['a negative uid', [{ ...entries[0]!, uid: -1 }], EPOCH, /uid -1 does not fit/],
  ];
  for (const [name, list, mtime, message] of refusals) {
    it(`refuses ${name}`, () => assert.throws(() => writeTar(list, mtime), message));
  }
});

describe('gzip', () => {
  const tar = writeTar(entries, EPOCH);

  it('is deterministic, with a fixed header (no name, mtime 0, max-compression flag, OS unix)', () => {
    const a = gzip(tar);
    const b = gzip(new Uint8Array(tar));
    assert.deepEqual(Buffer.from(a), Buffer.from(b));
    assert.equal(GZIP_LEVEL, 9);
    assert.deepEqual([...a.subarray(0, 10)], [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 2, 3]);
  });

  it('round-trips, and gunzip -t accepts it', async () => {
    const gz = gzip(tar);
    assert.deepEqual(Buffer.from(gunzip(gz)), Buffer.from(tar));
    const r = await execa('gzip', ['-dc'], { input: Buffer.from(gz), encoding: 'buffer' });
    assert.deepEqual(Buffer.from(r.stdout), Buffer.from(tar));
  });

  it('pins the compressed bytes of a fixed input (a deflate change would change every digest)', () => {
    const digest = createHash('sha256').update(gzip(bytes('pause '.repeat(1000)))).digest('hex');
    assert.equal(digest, GZIP_PIN);
  });
});

describe('layers', () => {
  it('adds parent directories only for nested destinations', () => {
    const file = { content: bytes('p'), mode: 0o755, uid: 0, gid: 0 };
    assert.deepEqual(layerEntries([{ ...file, dest: '/pause' }]).map((e) => e.path), ['pause']);
    const nested = layerEntries([{ ...file, dest: '/usr/local/bin/pause' }, { ...file, dest: '/usr/share/x', mode: 0o644 }]);
    assert.deepEqual(
      nested.map((e) => [e.path, e.type, e.mode.toString(8), e.uid]),
      [
        ['usr', 'dir', '755', 0],
        ['usr/local', 'dir', '755', 0],
        ['usr/local/bin', 'dir', '755', 0],
        ['usr/local/bin/pause', 'file', '755', 0],
        ['usr/share', 'dir', '755', 0],
        ['usr/share/x', 'file', '644', 0],
      ],
    );
  });

  it('refuses a path that is both a file and a directory', () => {
    const file = { content: bytes('p'), mode: 0o644, uid: 0, gid: 0 };
    assert.throws(() => layerEntries([{ ...file, dest: '/a' }, { ...file, dest: '/a/b' }]), /a is both a file and a directory/);
  });

  it('has diff_id = sha256 of the tar and a gzip blob that unpacks to it', () => {
    const layer = buildLayer([{ dest: '/pause', content: bytes('pause'), mode: 0o755, uid: 0, gid: 0 }], EPOCH);
    const tar = gunzip(layer.blob.bytes);
    assert.equal(layer.diffId, `sha256:${createHash('sha256').update(tar).digest('hex')}`);
    assert.equal(layer.tarSize, tar.length);
    assert.equal(layer.blob.descriptor.digest, `sha256:${createHash('sha256').update(layer.blob.bytes).digest('hex')}`);
    assert.equal(layer.blob.descriptor.size, layer.blob.bytes.length);
    assert.equal(layer.blob.descriptor.mediaType, 'application/vnd.oci.image.layer.v1.tar+gzip');
  });
});

const GZIP_PIN = '4c4db85f1e3062e76c5e59e5cce4a5ac69b241920065ee824603aee38bddf18a';
