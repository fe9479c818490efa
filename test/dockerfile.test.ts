import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, it } from 'node:test';
import { PauseBuildError, formatError } from '../src/errors.ts';
import { type DockerfilePlan, expandWord, logicalLines, parseDockerfile, splitWords } from '../src/oci/dockerfile.ts';
import { REPO_ROOT } from './support/cli.ts';

const parse = (text: string, buildArgs: Record<string, string> = {}): DockerfilePlan => parseDockerfile(text, { file: 'Dockerfile', buildArgs });

function parseError(text: string, buildArgs: Record<string, string> = {}): PauseBuildError {
  try {
    parse(text, buildArgs);
  } catch (e) {
    assert.ok(e instanceof PauseBuildError, `expected a PauseBuildError, got ${String(e)}`);
    assert.doesNotMatch(formatError(e), /\n/, 'errors are one line');
    return e;
  }
  assert.fail(`expected an error for:\n${text}`);
}

describe('the top-level Dockerfile', () => {
  it('parses into the pause image: one layer adding /pause, user and entrypoint', async () => {
    const text = await readFile(path.join(REPO_ROOT, 'Dockerfile'), 'utf8');
    const plan = parse(text, { ARCH: 'arm64' });
    assert.deepEqual(plan.config, { User: '65535:65535', Entrypoint: ['/pause'] });
    assert.deepEqual(
      plan.steps.map((s) => s.createdBy),
      ['ARG ARCH', 'ADD bin/pause-linux-arm64 /pause', 'USER 65535:65535', 'ENTRYPOINT ["/pause"]'],
    );
    assert.deepEqual(plan.steps[1]!.layer, { instruction: 'ADD', files: [{ source: 'bin/pause-linux-arm64', dest: '/pause', uid: 0, gid: 0 }] });
    assert.deepEqual(plan.warnings, []);
  });
});

describe('supported instructions', () => {
  const cases: { name: string; text: string; args?: Record<string, string>; config?: object; files?: object[]; createdBy?: string[] }[] = [
    {
      name: 'ENV (both forms), LABEL, WORKDIR, CMD exec form',
      text: 'FROM scratch\nENV A=1 B="two words"\nENV C legacy value\nLABEL org.example.x=y "q"=\'z\'\nWORKDIR /app\nWORKDIR sub\nCMD ["serve", "--port", "80"]\n',
      config: {
        Env: ['A=1', 'B=two words', 'C=legacy value'],
        Labels: { 'org.example.x': 'y', q: 'z' },
        WorkingDir: '/app/sub',
        Cmd: ['serve', '--port', '80'],
      },
      createdBy: ['ENV A=1 B=two words', 'ENV C=legacy value', 'LABEL org.example.x=y q=z', 'WORKDIR /app', 'WORKDIR /app/sub', 'CMD ["serve","--port","80"]'],
    },
    {
      name: 'ENV redefinition keeps its place; ENV wins over ARG of the same name',
      text: 'FROM scratch\nARG X=fromarg\nENV A=1 X=fromenv\nENV A=2\nLABEL x=$X\n',
      config: { Env: ['A=2', 'X=fromenv'], Labels: { x: 'fromenv' } },
    },
    {
      name: 'shell-form ENTRYPOINT becomes /bin/sh -c, as Docker does',
      text: 'FROM scratch\nENTRYPOINT /pause -v\n',
      config: { Entrypoint: ['/bin/sh', '-c', '/pause -v'] },
      createdBy: ['ENTRYPOINT ["/bin/sh","-c","/pause -v"]'],
    },
    {
      name: 'JSON that is not an array of strings is shell form',
      text: "FROM scratch\nCMD ['/pause']\n",
      config: { Cmd: ['/bin/sh', '-c', "['/pause']"] },
    },
    {
      name: 'case-insensitive instructions, comments, blank lines, continuation (with comment inside)',
      text: '# a comment\n\nfrom scratch\narg ARCH=amd64\nadd \\\n  # ignored comment\n  bin/pause-linux-${ARCH} \\\n  /pause\nuser 1:2\n',
      config: { User: '1:2' },
      files: [{ source: 'bin/pause-linux-amd64', dest: '/pause', uid: 0, gid: 0 }],
    },
    {
      name: 'escape directive: backtick continues lines, backslash is literal',
      text: '# escape=`\nFROM scratch\nLABEL path=C:\\dir `\n  other=x\n',
      config: { Labels: { path: 'C:\\dir', other: 'x' } },
    },
    {
      name: 'syntax directive is ignored',
      text: '# syntax=docker/dockerfile:1\nFROM scratch\nUSER 0\n',
      config: { User: '0' },
    },
    {
      name: 'global ARG feeds FROM; a stage ARG without default inherits it',
      text: 'ARG BASE=scratch\nARG NAME=pause\nFROM ${BASE} AS final\nARG NAME\nCOPY bin/${NAME} /usr/bin/\n',
      files: [{ source: 'bin/pause', dest: '/usr/bin/pause', uid: 0, gid: 0 }],
      createdBy: ['ARG NAME', 'COPY bin/pause /usr/bin/'],
    },
    {
      name: 'a global ARG is invisible in the stage unless declared again',
      text: 'ARG V=1\nFROM scratch\nLABEL v=${V:-unset}\n',
      config: { Labels: { v: 'unset' } },
    },
    {
      name: 'build args override ARG defaults; ${X:-d} ${X:+a} $X forms',
      text: 'FROM scratch\nARG A=default\nARG B\nARG C=c\nLABEL a=$A b=${B:-none} c=${C:+set} d="${A}x" e=\'$A\' f=\\$A\n',
      args: { A: 'given' },
      config: { Labels: { a: 'given', b: 'none', c: 'set', d: 'givenx', e: '$A', f: '$A' } },
    },
    {
      name: 'COPY/ADD: flags, JSON form, several sources into a directory, WORKDIR-relative destination',
      text: 'FROM scratch\nWORKDIR /opt\nCOPY --chmod=0700 --chown=10:20 ["a/x", "./b/y", "dir/"]\nADD --chown=7 c z\n',
      files: [
        { source: 'a/x', dest: '/opt/dir/x', mode: 0o700, uid: 10, gid: 20 },
        { source: 'b/y', dest: '/opt/dir/y', mode: 0o700, uid: 10, gid: 20 },
        { source: 'c', dest: '/opt/z', uid: 7, gid: 7 },
      ],
      createdBy: ['WORKDIR /opt', 'COPY --chmod=0700 --chown=10:20 a/x ./b/y dir/', 'ADD --chown=7 c z'],
    },
    {
      name: 'a leading / in a source is relative to the context',
      text: 'FROM scratch\nCOPY /bin/pause /\n',
      files: [{ source: 'bin/pause', dest: '/pause', uid: 0, gid: 0 }],
    },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const plan = parse(c.text, c.args);
      if (c.config) assert.deepEqual(plan.config, c.config);
      if (c.files) assert.deepEqual(plan.steps.flatMap((s) => s.layer?.files ?? []), c.files);
      if (c.createdBy) assert.deepEqual(plan.steps.map((s) => s.createdBy), c.createdBy);
    });
  }

  it('marks exactly the ADD and COPY steps as layers', () => {
    const plan = parse('FROM scratch\nARG A\nCOPY a /a\nUSER 1\nADD b /b\nCMD ["x"]\n');
    assert.deepEqual(plan.steps.map((s) => s.layer?.instruction ?? null), [null, 'COPY', null, 'ADD', null]);
    assert.deepEqual(plan.steps.map((s) => s.line), [2, 3, 4, 5, 6]);
  });

  it('warns about undefined variables and shell form on scratch, not about declared ones', () => {
    const plan = parse('FROM scratch\nARG DECLARED\nLABEL a=$DECLARED b=$MISSING\nCMD run it\n');
    assert.deepEqual(plan.warnings, [
      'Dockerfile:3: $MISSING is not defined (declare it with ARG or ENV)',
      'Dockerfile:4: CMD in shell form runs /bin/sh, which a FROM scratch image does not have; use the exec form CMD ["…"]',
    ]);
  });
});

describe('refused Dockerfiles name the file, the line and the instruction', () => {
  const cases: { text: string; message: RegExp; hint?: RegExp }[] = [
    { text: 'FROM scratch\nRUN make\n', message: /^Dockerfile:2: RUN is not supported$/, hint: /no shell/ },
    { text: 'FROM scratch\n\nEXPOSE 80\n', message: /^Dockerfile:3: EXPOSE is not supported$/ },
    { text: 'FROM scratch\nVOLUME /data\n', message: /^Dockerfile:2: VOLUME is not supported$/ },
    { text: 'FROM scratch\n# c\nHEALTHCHECK CMD ["x"]\n', message: /^Dockerfile:3: HEALTHCHECK is not supported$/ },
    { text: 'FROM scratch\nSTOPSIGNAL SIGTERM\n', message: /^Dockerfile:2: STOPSIGNAL is not supported$/ },
    { text: 'FROM scratch\nSHELL ["/bin/bash"]\n', message: /^Dockerfile:2: SHELL is not supported$/ },
    { text: 'FROM scratch\nONBUILD USER 1\n', message: /^Dockerfile:2: ONBUILD is not supported$/ },
    { text: 'FROM scratch\nMAINTAINER me\n', message: /^Dockerfile:2: MAINTAINER is not supported$/, hint: /LABEL/ },
    { text: 'FROM scratch\nFOO bar\n', message: /^Dockerfile:2: unknown instruction FOO$/, hint: /FROM scratch, ARG, ADD/ },
    { text: 'FROM debian:bookworm\n', message: /^Dockerfile:1: FROM debian:bookworm: only FROM scratch is supported$/ },
    { text: 'ARG B=alpine\nFROM $B\n', message: /^Dockerfile:2: FROM alpine: only FROM scratch/ },
    { text: 'FROM scratch AS a\nFROM scratch\n', message: /^Dockerfile:2: a second FROM: multi-stage builds are not supported$/ },
    { text: 'FROM --platform=linux/arm64 scratch\n', message: /^Dockerfile:1: FROM --platform is not supported$/ },
    { text: 'USER 1\nFROM scratch\n', message: /^Dockerfile:1: USER before FROM$/ },
    { text: 'ARG A\n', message: /^Dockerfile has no FROM$/ },
    { text: '# only a comment\n', message: /^Dockerfile has no instructions$/ },
    { text: 'FROM scratch\nCOPY --from=build /x /x\n', message: /^Dockerfile:2: COPY --from is not supported$/ },
    { text: 'FROM scratch\nADD --chown=nobody x /x\n', message: /^Dockerfile:2: ADD --chown=nobody: only numeric uid\[:gid\] is supported$/ },
    { text: 'FROM scratch\nCOPY --chmod=u+x x /x\n', message: /^Dockerfile:2: COPY --chmod=u\+x is not an octal mode$/ },
    { text: 'FROM scratch\nADD https://example.com/x /x\n', message: /^Dockerfile:2: ADD https:\/\/example.com\/x: remote sources are not supported$/ },
    { text: 'FROM scratch\nCOPY bin/* /\n', message: /^Dockerfile:2: COPY bin\/\*: wildcards are not supported$/ },
    { text: 'FROM scratch\nCOPY ../x /x\n', message: /^Dockerfile:2: COPY \.\.\/x is outside the build context$/ },
    { text: 'FROM scratch\nCOPY . /x\n', message: /^Dockerfile:2: COPY \.: adding the whole build context is not supported$/ },
    { text: 'FROM scratch\nCOPY a b /x\n', message: /^Dockerfile:2: COPY with several sources needs a destination directory ending in \/$/ },
    { text: 'FROM scratch\nCOPY a\n', message: /^Dockerfile:2: COPY needs a source and a destination$/ },
    { text: 'FROM scratch\nCOPY <<EOF /x\n', message: /^Dockerfile:2: COPY <<EOF: here-documents are not supported$/ },
    { text: 'FROM scratch\nUSER\n', message: /^Dockerfile:2: USER needs arguments$/ },
    { text: 'FROM scratch\nENV A\n', message: /^Dockerfile:2: ENV A has no value$/ },
    { text: 'FROM scratch\nLABEL a=1 b\n', message: /^Dockerfile:2: LABEL: "b" is not name=value$/ },
    { text: 'FROM scratch\nARG 1A\n', message: /^Dockerfile:2: ARG 1A: invalid name "1A"$/ },
    { text: 'FROM scratch\nLABEL a=${X:?needed}\n', message: /^Dockerfile:2: X is required: needed$/ },
    { text: 'FROM scratch\nLABEL a=${X/y/z}\n', message: /^Dockerfile:2: unsupported substitution \$\{X\/y\/z\}$/ },
    { text: 'FROM scratch\nLABEL a="open\n', message: /^Dockerfile:2: unterminated double quote/ },
    // The line named is where a continued instruction starts.
    { text: 'FROM scratch\nUSER 1\nRUN a \\\n  b\n', message: /^Dockerfile:3: RUN is not supported$/ },
  ];
  for (const c of cases) {
    it(c.message.source, () => {
      const e = parseError(c.text);
      assert.match(e.message, c.message);
      if (c.hint) assert.match(e.hint ?? '', c.hint);
    });
  }

  it('names the file as it was given', () => {
    assert.throws(() => parseDockerfile('FROM scratch\nRUN x\n', { file: 'images/pause.Dockerfile' }), /^PauseBuildError: images\/pause\.Dockerfile:2: RUN/);
  });
});

describe('lexing', () => {
  it('joins continuations and keeps the first line number', () => {
    assert.deepEqual(logicalLines('FROM scratch\nLABEL a=1 \\  \n  b=2\n\n# x\nUSER 1\n').lines, [
      { line: 1, text: 'FROM scratch' },
      { line: 2, text: 'LABEL a=1   b=2' },
      { line: 6, text: 'USER 1' },
    ]);
  });

  it('splits words outside quotes only', () => {
    assert.deepEqual(splitWords('a="b c" d=\'e f\' g=h\\ i'), ['a="b c"', "d='e f'", 'g=h\\ i']);
  });

  const lookup = (n: string) => ({ SET: 'v', EMPTY: '' })[n];
  const cases: [string, string][] = [
    ['$SET', 'v'],
    ['${SET}x', 'vx'],
    ['$SETx', ''],
    ['${EMPTY:-d}', 'd'],
    ['${EMPTY-d}', ''],
    ['${UNSET-d}', 'd'],
    ['${EMPTY:+a}', ''],
    ['${EMPTY+a}', 'a'],
    ['${UNSET:-${SET}}', 'v'],
    ['"$SET"\'$SET\'', 'v$SET'],
    ['\\$SET', '$SET'],
    ['"a\\"b"', 'a"b'],
    ['$', '$'],
    ['$1', '$1'],
  ];
  for (const [word, want] of cases) {
    it(`${word} → ${JSON.stringify(want)}`, () => assert.equal(expandWord(word, lookup), want));
  }
});
