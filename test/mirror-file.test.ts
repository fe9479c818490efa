import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { PauseBuildError } from '../src/errors.ts';
import { loadMirrorFile, parseMirrorFile } from '../src/mirror-file.ts';
import { sourceName } from '../src/mirror.ts';

const FILE = '/srv/mirror/mirror.yaml';
const env = { MIRROR_USER: 'robot', MIRROR_PASSWORD: 's3cret-from-env' };

function assertFileError(text: string, message: string | RegExp, hint?: RegExp, file = FILE): void {
  assert.throws(() => parseMirrorFile(text, file, env), (e: unknown) => {
    assert.ok(e instanceof PauseBuildError, String(e));
    if (typeof message === 'string') assert.equal(e.message, message);
    else assert.match(e.message, message);
    if (hint) assert.match(e.hint ?? '', hint);
    assert.doesNotMatch(`${e.message} ${e.hint ?? ''}`, /\n/, 'one line');
    return true;
  });
}

describe('mirror file', () => {
  test('YAML: entries with tags (range or list), platforms, destinations; registries with credentials from the environment', () => {
    const f = parseMirrorFile(`
mirrors:
  - source: registry.k8s.io/pause
    tags: ">=3.9"
    destinations: [mirror.example/k8s/pause, other.example:5000/pause]
  - source: registry.k8s.io/pause
    tags: ["3.10", latest]
    platforms: linux/amd64,linux/arm64
    destinations:
      - arm.example/pause
  - source: oci:layout:3.10
    destinations: [local.example/pause]
registries:
  mirror.example:
    usernameEnv: MIRROR_USER
    passwordEnv: MIRROR_PASSWORD
  other.example:5000:
    username: bot
    passwordEnv: MIRROR_PASSWORD
    insecure: true
`, FILE, env);
    assert.equal(f.entries.length, 3);
    const [a, b, c] = f.entries;
    assert.deepEqual(a!.selectors, [{ range: '>=3.9' }]);
    assert.deepEqual(a!.destinations.map((d) => ('repository' in d ? d.repository.registry : d.dir)), ['mirror.example', 'other.example:5000']);
    assert.deepEqual(b!.selectors, [{ tag: '3.10' }, { tag: 'latest' }]);
    assert.deepEqual(b!.platforms, [{ os: 'linux', architecture: 'amd64' }, { os: 'linux', architecture: 'arm64' }]);
    assert.deepEqual(c!.source, { kind: 'layout', dir: '/srv/mirror/layout', tag: '3.10' }, 'oci: paths are relative to the file');
    assert.match(a!.label ?? '', /mirror\.yaml entry 1 \(registry\.k8s\.io\/pause\)$/);
    assert.deepEqual(f.registries, {
      'mirror.example': { credential: { username: 'robot', password: 's3cret-from-env' }, passwordEnv: 'MIRROR_PASSWORD' },
      'other.example:5000': { credential: { username: 'bot', password: 's3cret-from-env' }, passwordEnv: 'MIRROR_PASSWORD', insecure: true },
    });
  });

  test('JSON, with numbers as tags', () => {
    const f = parseMirrorFile(JSON.stringify({ mirrors: [{ source: 'r.example/pause', tags: [3.9], destinations: ['m.example/pause'] }] }), '/x/m.json', env);
    assert.deepEqual(f.entries[0]!.selectors, [{ tag: '3.9' }]);
    assert.equal(sourceName(f.entries[0]!.source), 'r.example/pause');
  });

  const name = FILE;
  const bad: [string, string, string | RegExp, RegExp?][] = [
    ['not YAML', 'mirrors: [', new RegExp(`^${name} is not valid YAML: `)],
    ['not a mapping', '- a\n- b\n', `${name} is not a mapping with "mirrors"`],
    ['no mirrors', 'registries: {}\n', `${name}: "mirrors" must be a non-empty list`],
    ['an unknown top-level key', 'mirrors: []\nsources: []\n', `${name}: unknown key "sources"`, /allowed: mirrors, registries/],
    ['an entry without source', 'mirrors:\n  - destinations: [m.example/p]\n', `${name} entry 1: "source" is missing or not a string`],
    ['a misspelt key', 'mirrors:\n  - source: r.example/p:1\n    destination: [m.example/p]\n', `${name} entry 1 (r.example/p:1): unknown key "destination"`, /allowed: source, tags, platforms, destinations/],
    ['no destinations', 'mirrors:\n  - source: r.example/p:1\n    destinations: []\n', `${name} entry 1 (r.example/p:1): "destinations" must be a non-empty list of repositories`],
    ['tags of the wrong type', 'mirrors:\n  - source: r.example/p\n    tags: {a: 1}\n    destinations: [m.example/p]\n', `${name} entry 1 (r.example/p): "tags" must be a string or a list of strings`],
    ['a bad range', 'mirrors:\n  - source: r.example/p:1\n    destinations: [m.example/p]\n  - source: r.example/q\n    tags: ">=x.y"\n    destinations: [m.example/q]\n', `${name} entry 2 (r.example/q): invalid version range ">=x.y"`],
    ['a bad platform', 'mirrors:\n  - source: r.example/p:1\n    platforms: [linux]\n    destinations: [m.example/p]\n', `${name} entry 1 (r.example/p:1): invalid platform "linux"`],
    ['a bad reference', 'mirrors:\n  - source: r.example/P:1\n    destinations: [m.example/p]\n', new RegExp(`^${name} entry 1 \\(r.example/P:1\\): invalid image reference`)],
    ['a password in the file', 'mirrors:\n  - source: r.example/p:1\n    destinations: [m.example/p]\nregistries:\n  m.example:\n    username: u\n    password: hunter2\n', `${name} registries.m.example: "password" does not belong in a file`, /passwordEnv/],
    ['an unset variable', 'mirrors:\n  - source: r.example/p:1\n    destinations: [m.example/p]\nregistries:\n  m.example:\n    username: u\n    passwordEnv: NOT_SET_ANYWHERE\n', `${name} registries.m.example: environment variable NOT_SET_ANYWHERE (passwordEnv) is not set or empty`, /secret/],
    ['a user without password', 'mirrors:\n  - source: r.example/p:1\n    destinations: [m.example/p]\nregistries:\n  m.example:\n    username: u\n', `${name} registries.m.example: a user name needs passwordEnv`],
    ['a host that is not one', 'mirrors:\n  - source: r.example/p:1\n    destinations: [m.example/p]\nregistries:\n  "https://m.example":\n    insecure: true\n', `${name}: registries: "https://m.example" is not a host`],
    ['insecure not a boolean', 'mirrors:\n  - source: r.example/p:1\n    destinations: [m.example/p]\nregistries:\n  m.example:\n    insecure: "yes"\n', `${name} registries.m.example: "insecure" must be true or false`],
  ];
  for (const [what, text, message, hint] of bad) {
    test(`refuses ${what} in one line naming the file and entry`, () => assertFileError(text, message, hint));
  }

  test('a JSON file with a syntax error says so', () => {
    assertFileError('{"mirrors": [}', /^\/x\/m\.json is not valid JSON: /, undefined, '/x/m.json');
  });

  describe('from disk', () => {
    let dir: string;
    before(async () => {
      dir = await mkdtemp('/tmp/wt-mirror-file-');
    });
    after(async () => {
      await rm(dir, { recursive: true, force: true });
    });

    test('reads the file; a missing one is one line', async () => {
      const file = path.join(dir, 'm.yaml');
      await writeFile(file, 'mirrors:\n  - source: r.example/p:1\n    destinations: [m.example/p]\n');
      assert.equal((await loadMirrorFile(file, {})).entries.length, 1);
      await assert.rejects(loadMirrorFile(path.join(dir, 'none.yaml')), (e: unknown) => e instanceof PauseBuildError && e.message === `cannot read mirror file ${dir}/none.yaml (ENOENT)`);
    });
  });
});

describe('verifyKeys per entry', () => {
  const cases: [string, string, string[] | RegExp][] = [
    ['one file, relative to the mirror file', 'verifyKeys: keys/release.pub', ['/etc/mirror/keys/release.pub']],
    ['a list, absolute paths kept', 'verifyKeys: [a.pub, /abs/b.pub]', ['/etc/mirror/a.pub', '/abs/b.pub']],
    ['an empty list', 'verifyKeys: []', /"verifyKeys" must be a file or a list of files/],
    ['not a string', 'verifyKeys: 3', /"verifyKeys" must be a file or a list of files/],
  ];
  for (const [name, line, want] of cases) {
    test(name, () => {
      const text = `mirrors:\n  - source: r.example/p:1\n    destinations: [m.example/p]\n    ${line}\n`;
      if (want instanceof RegExp) assert.throws(() => parseMirrorFile(text, '/etc/mirror/mirror.yaml', {}), want);
      else assert.deepEqual(parseMirrorFile(text, '/etc/mirror/mirror.yaml', {}).entries[0]!.verifyKeys, want);
    });
  }
});
