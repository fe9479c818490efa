import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { Ajv } from 'ajv';
import { execa } from 'execa';
import { type SbomInput, buildSbom, sbomBytes, sbomPackageList } from '../src/attest/sbom.ts';
import { componentsCacheFile, componentsScript, parseComponents, readComponents } from '../src/toolchain/components.ts';
import { platformFor } from '../src/platforms.ts';

const schema = JSON.parse(readFileSync(new URL('./fixtures/spdx/spdx-schema-2.3.json', import.meta.url), 'utf8'));
const ajv = new Ajv({ allErrors: true, strict: false });
const validate = ajv.compile(schema);

const BASE: SbomInput = {
  version: '3.10',
  platform: 'linux/arm64/v8',
  arch: 'arm64',
  imageDigest: `sha256:${'a'.repeat(64)}`,
  imageName: 'pause',
  sourceFile: 'pause.c',
  sourceSha256: 'b'.repeat(64),
  sourceSha1: 'c'.repeat(40),
  binaryPath: '/pause',
  binarySha256: 'd'.repeat(64),
  binarySha1: 'e'.repeat(40),
  components: {
    arch: 'arm64',
    libc: { name: 'libc6-dev-arm64-cross', version: '2.36-8cross1' },
    compilerPackage: { name: 'gcc-aarch64-linux-gnu', version: '4:12.2.0-3' },
    compiler: 'aarch64-linux-gnu-gcc',
    compilerVersion: '12.2.0',
  },
  epoch: 1_700_000_000,
  sourceUrl: 'https://github.com/kubernetes/kubernetes',
  revision: 'v3.10-0-gdeadbee',
  toolVersion: '0.1.0',
};

const parse = (i: SbomInput): any => JSON.parse(Buffer.from(sbomBytes(buildSbom(i))).toString("utf8"));

describe('SPDX SBOM', () => {
  it('is valid SPDX 2.3 JSON by the schema', () => {
    const doc = parse(BASE);
    assert.equal(validate(doc), true, JSON.stringify(validate.errors));
    assert.equal(doc.spdxVersion, 'SPDX-2.3');
  });

  it('the schema check can fail (a package without a name)', () => {
    const doc = parse(BASE);
    delete doc.packages[1].name;
    assert.equal(validate(doc), false);
  });

  it('lists pause, the libc, the compiler and the image', () => {
    const doc = parse(BASE);
    assert.deepEqual(sbomPackageList(buildSbom(BASE)), [
      'pause 3.10 (CONTAINER)',
      'pause 3.10 (APPLICATION)',
      'libc6-dev-arm64-cross 2.36-8cross1 (LIBRARY)',
      'gcc-aarch64-linux-gnu 4:12.2.0-3 (APPLICATION)',
    ]);
    const pause = doc.packages.find((p: any) => p.SPDXID === 'SPDXRef-Package-pause');
    assert.equal(pause.licenseDeclared, 'Apache-2.0');
    assert.deepEqual(pause.checksums, [{ algorithm: 'SHA256', checksumValue: BASE.binarySha256 }]);
    const source = doc.files.find((f: any) => f.fileName === './pause.c');
    assert.ok(source.checksums.some((c: any) => c.algorithm === 'SHA256' && c.checksumValue === BASE.sourceSha256));
    const rel = (type: string) => doc.relationships.filter((r: any) => r.relationshipType === type).map((r: any) => `${r.spdxElementId}>${r.relatedSpdxElement}`);
    assert.deepEqual(rel('STATIC_LINK'), ['SPDXRef-File-binary>SPDXRef-Package-libc']);
    assert.deepEqual(rel('BUILD_TOOL_OF'), ['SPDXRef-Package-compiler>SPDXRef-File-binary']);
    assert.deepEqual(rel('DESCRIBES'), ['SPDXRef-DOCUMENT>SPDXRef-Image']);
    assert.match(doc.packages[3].comment, /aarch64-linux-gnu-gcc 12\.2\.0/);
  });

  const cases: [string, Partial<SbomInput>, boolean][] = [
    ['the same inputs', {}, true],
    ['another image digest', { imageDigest: `sha256:${'f'.repeat(64)}` }, false],
    ['another libc version', { components: { ...BASE.components, libc: { name: 'libc6-dev-arm64-cross', version: '2.36-9' } } }, false],
    ['another binary', { binarySha256: '0'.repeat(64) }, false],
  ];
  for (const [name, change, same] of cases) {
    it(`namespace and bytes for ${name}: ${same ? 'the same' : 'different'}`, () => {
      const a = parse(BASE);
      const b = parse({ ...BASE, ...change });
      assert.equal(Buffer.from(sbomBytes(buildSbom(BASE))).equals(Buffer.from(sbomBytes(buildSbom({ ...BASE, ...change })))), same);
      assert.equal(a.documentNamespace === b.documentNamespace, same);
    });
  }

  it('dates the document from SOURCE_DATE_EPOCH', () => {
    assert.equal(parse(BASE).creationInfo.created, '2023-11-14T22:13:20Z');
    assert.equal(parse({ ...BASE, epoch: 0 }).creationInfo.created, '1970-01-01T00:00:00Z');
  });
});

describe('toolchain components', () => {
  const platforms = [platformFor('amd64'), platformFor('arm64')];
  it('asks dpkg once for the libc and compiler package of each arch', () => {
    const script = componentsScript(platforms);
    assert.equal(script.match(/dpkg-query/g)?.length, 1);
    assert.match(script, /dpkg-query -W -f='\$\{Package\}=\$\{Version\}\\n' libc6-dev gcc libc6-dev-arm64-cross gcc-aarch64-linux-gnu 2>/);
    assert.match(script, /arm64 libc6-dev-arm64-cross "\$\(ver libc6-dev-arm64-cross\)"/);
    assert.match(script, /aarch64-linux-gnu-gcc -dumpfullversion/);
  });
  it('gives each package its own version and none to a package dpkg does not have', async () => {
    // A dpkg-query of our own on PATH: the script's parsing of its answer, in the shell the builder uses.
    const dir = await mkdtemp(path.join(tmpdir(), 'pause-dpkg-'));
    try {
      const fake = '#!/bin/sh\nprintf "libc6-dev=2.36-9\\ngcc=4:12.2.0-3\\ngcc-aarch64-linux-gnu=4:12.2.0-3x\\n"\n';
      await writeFile(path.join(dir, 'dpkg-query'), fake, { mode: 0o755 });
      for (const gcc of ['x86_64-linux-gnu-gcc', 'aarch64-linux-gnu-gcc']) await writeFile(path.join(dir, gcc), '#!/bin/sh\necho 12.2.0\n', { mode: 0o755 });
      const r = await execa('/bin/sh', ['-c', componentsScript(platforms)], { env: { PATH: `${dir}:/usr/bin:/bin` } });
      assert.equal(r.stdout, 'amd64\tlibc6-dev\t2.36-9\tgcc\t4:12.2.0-3\t12.2.0\narm64\tlibc6-dev-arm64-cross\t\tgcc-aarch64-linux-gnu\t4:12.2.0-3x\t12.2.0');
      assert.throws(() => parseComponents(r.stdout, platforms, 'x'), /package libc6-dev-arm64-cross/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
  const rows: [string, string, RegExp | undefined][] = [
    ['complete', 'amd64\tlibc6-dev\t2.36-9\tgcc\t4:12.2.0-3\t12.2.0\narm64\tlibc6-dev-arm64-cross\t2.36-8cross1\tgcc-aarch64-linux-gnu\t4:12.2.0-3\t12.2.0', undefined],
    ['libc missing', 'amd64\tlibc6-dev\t2.36-9\tgcc\t4:12.2.0-3\t12.2.0\narm64\tlibc6-dev-arm64-cross\t\tgcc-aarch64-linux-gnu\t4:12.2.0-3\t12.2.0', /package libc6-dev-arm64-cross/],
    ['compiler missing', 'amd64\tlibc6-dev\t2.36-9\tgcc\t4:12.2.0-3\t\narm64\tlibc6-dev-arm64-cross\t2.36\tgcc-aarch64-linux-gnu\t4\t12', /x86_64-linux-gnu-gcc/],
    ['arch missing', 'amd64\tlibc6-dev\t2.36-9\tgcc\t4:12.2.0-3\t12.2.0', /versions for arm64/],
  ];
  for (const [name, output, error] of rows) {
    it(`parses output: ${name}`, () => {
      if (error) assert.throws(() => parseComponents(output, platforms, 'the host toolchain'), error);
      else assert.equal(parseComponents(output, platforms, 'x').get('arm64')!.libc.version, '2.36-8cross1');
    });
  }
});

describe('toolchain components of a builder image', () => {
  it('are read once per image id: a kept answer is used, another id runs the image again', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'pause-components-'));
    try {
      const platforms = [platformFor('arm64')];
      const kept = 'arm64\tlibc6-dev-arm64-cross\t2.36-8cross1\tgcc-aarch64-linux-gnu\t4:12.2.0-3\t12.2.0\n';
      await writeFile(componentsCacheFile(dir, 'sha256:1', platforms), kept);
      // No such image: only the kept answer can give versions for it.
      const missing = 'localhost/pause-build/no-such-image:none';
      const got = await readComponents('podman', missing, platforms, { dir, imageId: 'sha256:1' });
      assert.equal(got.get('arm64')!.libc.version, '2.36-8cross1');
      await assert.rejects(readComponents('podman', missing, platforms, { dir, imageId: 'sha256:2' }), /reading the toolchain versions in the builder image localhost\/pause-build\/no-such-image:none failed/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
