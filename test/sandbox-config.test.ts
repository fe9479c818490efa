import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { parse } from 'smol-toml';
import { PauseBuildError } from '../src/errors.ts';
import { parseReference } from '../src/registry/reference.ts';
import {
  RUNTIMES, type SandboxRuntime, type Transport, formatSandboxConfig, kubeletTakesFlag, nodeSnippets, parseKubeletVersion, sandboxConfig,
} from '../src/sandbox-config.ts';

const DIGEST = `sha256:${'a'.repeat(64)}`;
const REF = parseReference(`mirror.lan:5000/k8s/pause:3.10@${DIGEST}`);
const BY_DIGEST = `mirror.lan:5000/k8s/pause@${DIGEST}`;

type Toml = Record<string, any>;

/** Plain objects (smol-toml's tables have no prototype), so deepEqual compares contents. */
function parseToml(text: string): Toml {
  return JSON.parse(JSON.stringify(parse(text))) as Toml;
}

function file(runtime: SandboxRuntime, transport: Transport, end: string, kubeletVersion?: string) {
  return sandboxConfig({ runtime, reference: REF, transport, ...(kubeletVersion ? { kubeletVersion } : {}) }).files.find((f) => f.path.endsWith(end));
}

const TRANSPORTS: readonly Transport[] = [{ kind: 'tls' }, { kind: 'plain-http' }, { kind: 'ca', caFile: '/tmp/corp-ca.pem' }];
const KUBELETS = [undefined, '1.33', 'v1.34.2', '1.35.0-rc.1', '1.35', '1.36.1'] as const;

/** What each runtime must read, from the parsed TOML: the sandbox image and the hosts directory. */
const READ: Record<SandboxRuntime, (t: Toml) => { image: unknown; configPath: unknown; version: unknown }> = {
  containerd: (t) => ({ image: t.plugins?.['io.containerd.cri.v1.images']?.pinned_images?.sandbox, configPath: t.plugins?.['io.containerd.cri.v1.images']?.registry?.config_path, version: t.version }),
  containerd1: (t) => ({ image: t.plugins?.['io.containerd.grpc.v1.cri']?.sandbox_image, configPath: t.plugins?.['io.containerd.grpc.v1.cri']?.registry?.config_path, version: t.version }),
  crio: (t) => ({ image: t.crio?.image?.pause_image, configPath: undefined, version: undefined }),
};

describe('sandbox-config: runtime × transport × kubelet version', () => {
  for (const runtime of RUNTIMES) {
    for (const transport of TRANSPORTS) {
      for (const kubelet of KUBELETS) {
        test(`${runtime}, ${transport.kind}, kubelet ${kubelet ?? 'not given'}`, () => {
          const c = sandboxConfig({ runtime, reference: REF, transport, ...(kubelet ? { kubeletVersion: kubelet } : {}) });
          const main = c.files[0]!;
          const toml = parseToml(main.content!) as Toml;
          const read = READ[runtime](toml);
          // The digest form everywhere (containerd 2.x pins only it; CRI-O refuses tag+digest), the tag in a comment.
          assert.equal(read.image, BY_DIGEST);
          assert.match(main.content!, new RegExp(` = "${BY_DIGEST}"  # mirror\\.lan:5000/k8s/pause:3\\.10\n`));
          assert.ok(c.notes.some((n) => /containerd 2\.x pins only that form, CRI-O refuses a tag with a digest; the tag 3\.10 is in the comment/.test(n)));
          assert.equal(c.reference, read.image);
          assert.equal(read.version, { containerd: 3, containerd1: 2, crio: undefined }[runtime]);
          assert.equal(c.configVersion, read.version);
          // Nothing from the other containerd's schema, which that version would ignore.
          if (runtime === 'containerd') assert.doesNotMatch(main.content!, /sandbox_image|grpc\.v1\.cri/);
          if (runtime === 'containerd1') assert.doesNotMatch(main.content!, /pinned_images|cri\.v1\.images/);
          assert.match(c.label, runtime === 'crio' ? /^CRI-O$/ : new RegExp(`config version ${read.version}\\)$`));

          const hosts = c.files.find((f) => f.path.endsWith('/hosts.toml'));
          const registries = c.files.find((f) => f.path.includes('/registries.conf.d/'));
          const ca = c.files.find((f) => f.path.endsWith('/ca.crt'));
          if (runtime === 'crio') {
            assert.equal(hosts, undefined);
            if (transport.kind === 'plain-http') {
              assert.deepEqual(parseToml(registries!.content!), { registry: [{ location: 'mirror.lan:5000', insecure: true }] });
            } else assert.equal(registries, undefined);
            if (transport.kind === 'ca') assert.deepEqual(ca, { path: '/etc/containers/certs.d/mirror.lan:5000/ca.crt', about: "the CA that signed mirror.lan:5000's certificate", copyFrom: '/tmp/corp-ca.pem' });
            else assert.equal(ca, undefined);
          } else if (transport.kind === 'tls') {
            assert.equal(hosts, undefined);
            assert.equal(ca, undefined);
            assert.equal(read.configPath, undefined, 'config_path only when a hosts.toml needs it');
          } else {
            assert.equal(read.configPath, '/etc/containerd/certs.d');
            assert.equal(hosts!.path, '/etc/containerd/certs.d/mirror.lan:5000/hosts.toml');
            const scheme = transport.kind === 'plain-http' ? 'http' : 'https';
            const server = `${scheme}://mirror.lan:5000`;
            assert.deepEqual(parseToml(hosts!.content!), {
              server,
              host: { [server]: { capabilities: ['pull', 'resolve'], ...(transport.kind === 'ca' ? { ca: '/etc/containerd/certs.d/mirror.lan:5000/ca.crt' } : {}) } },
            });
            if (transport.kind === 'ca') assert.deepEqual(ca, { path: '/etc/containerd/certs.d/mirror.lan:5000/ca.crt', about: "the CA that signed mirror.lan:5000's certificate", copyFrom: '/tmp/corp-ca.pem' });
            else assert.equal(ca, undefined);
          }

          const takesFlag = kubelet !== undefined && ['1.33', 'v1.34.2'].includes(kubelet);
          const text = formatSandboxConfig(c);
          if (takesFlag) {
            assert.equal(c.kubelet!.flag, `--pod-infra-container-image=${BY_DIGEST}`);
            assert.match(c.kubelet!.why, /removed in 1\.35/);
            assert.match(c.kubelet!.why, /containerd 1\.6 it keeps kubelet's image GC from removing the sandbox image/);
            assert.ok(text.includes(`\n${c.kubelet!.flag}\n`));
          } else {
            assert.equal(c.kubelet, undefined);
            assert.doesNotMatch(text, /^--pod-infra-container-image/m);
          }
          if (kubelet !== undefined && !takesFlag) assert.ok(c.notes.some((n) => /has no --pod-infra-container-image \(removed in 1\.35\)/.test(n)));
          assert.ok(c.notes.some((n) => /^kubeadm checks .*<imageRepository>\/pause:<tag>, a tag.*imageRepository: mirror\.lan:5000\/k8s /.test(n)));
          // Every file is named in the text, and its content is there verbatim.
          for (const f of c.files) {
            assert.ok(text.includes(`# ${f.path}: `), f.path);
            if (f.content) assert.ok(text.includes(f.content.trimEnd()), f.path);
            else assert.ok(text.includes(`#   copy ${f.copyFrom} there`));
          }
          // Outside the files, only comments and the kubelet flag.
          for (const line of text.split('\n')) {
            if (line === '' || line.startsWith('#') || line === c.kubelet?.flag) continue;
            assert.ok(c.files.some((f) => f.content?.split('\n').includes(line)), `stray line: ${line}`);
          }
        });
      }
    }
  }
});

describe('sandbox-config: references and input', () => {
  test('a tag only is used as given, with a note that it is not pinned', () => {
    const c = sandboxConfig({ runtime: 'containerd', reference: parseReference('mirror.lan/pause:3.10') });
    assert.equal(c.reference, 'mirror.lan/pause:3.10');
    assert.ok(c.notes.some((n) => n.startsWith('not pinned')));
  });

  test('a digest only is kept, with no tag comment or note', () => {
    const ref = parseReference(`mirror.lan/pause@${DIGEST}`);
    for (const runtime of RUNTIMES) {
      const c = sandboxConfig({ runtime, reference: ref });
      assert.equal(c.reference, `mirror.lan/pause@${DIGEST}`);
      assert.doesNotMatch(c.files[0]!.content!, /#/);
      assert.ok(!c.notes.some((n) => n.includes('the tag')));
    }
  });

  test('a private hosts directory is used in config_path and the file paths', () => {
    const c = sandboxConfig({ runtime: 'containerd', reference: REF, transport: { kind: 'ca', caFile: '/x/ca.pem' }, hostsDir: '/srv/certs.d/' });
    assert.equal((parseToml(c.files[0]!.content!) as Toml).plugins['io.containerd.cri.v1.images'].registry.config_path, '/srv/certs.d/');
    assert.deepEqual(c.files.map((f) => f.path), ['/etc/containerd/config.toml', '/srv/certs.d/mirror.lan:5000/hosts.toml', '/srv/certs.d/mirror.lan:5000/ca.crt']);
  });

  test('CRI-O with an auth file; containerd refuses one', () => {
    const c = sandboxConfig({ runtime: 'crio', reference: REF, authFile: '/etc/crio/pause-auth.json' });
    assert.deepEqual(parseToml(c.files[0]!.content!), { crio: { image: { pause_image: BY_DIGEST, pause_image_auth_file: '/etc/crio/pause-auth.json' } } });
    assert.throws(() => sandboxConfig({ runtime: 'containerd', reference: REF, authFile: '/a' }), (e: unknown) => e instanceof PauseBuildError && /--auth-file is for --runtime crio/.test(e.message));
  });

  test('a repository without tag or digest is refused', () => {
    assert.throws(() => sandboxConfig({ runtime: 'containerd', reference: parseReference('mirror.lan/pause') }), /has no tag or digest/);
  });

  test('kubelet versions', () => {
    const table: [string, string | RegExp, boolean?][] = [
      ['1.34', '1.34.0', true], ['v1.34.2', '1.34.2', true], ['1.24.17', '1.24.17', true], ['1.35.0-rc.1', '1.35.0-rc.1', false],
      ['1.35', '1.35.0', false], ['v1.36.0', '1.36.0', false], ['1', /not a Kubernetes version/], ['one.35', /not a Kubernetes version/], ['1.35.x', /not a Kubernetes version/],
    ];
    for (const [input, want, takes] of table) {
      if (want instanceof RegExp) {
        assert.throws(() => parseKubeletVersion(input), (e: unknown) => e instanceof PauseBuildError && want.test(e.message) && /--kubelet-version 1\.34/.test(e.hint ?? ''), input);
      } else {
        assert.equal(parseKubeletVersion(input), want, input);
        assert.equal(kubeletTakesFlag(input), takes, input);
      }
    }
  });

  test('mirror snippets: each runtime\'s file, hosts.toml and registries.conf by transport', () => {
    const tls = nodeSnippets(REF);
    assert.equal(tls.containerd, file('containerd', { kind: 'tls' }, 'config.toml')!.content);
    assert.equal(tls.containerd1, file('containerd1', { kind: 'tls' }, 'config.toml')!.content);
    assert.equal(tls.crio, file('crio', { kind: 'tls' }, '10-pause-image.conf')!.content);
    assert.equal(tls.kubelet, `--pod-infra-container-image=${BY_DIGEST}`);
    assert.equal(tls.hostsToml, undefined);
    assert.equal(tls.registriesConf, undefined);
    const plain = nodeSnippets(REF, { kind: 'plain-http' });
    assert.match(plain.hostsToml!, /^server = "http:\/\/mirror\.lan:5000"$/m);
    assert.match(plain.registriesConf!, /^insecure = true$/m);
    assert.match(plain.containerd, /config_path = "\/etc\/containerd\/certs\.d"/);
    const ca = nodeSnippets(REF, { kind: 'ca', caFile: '/c.pem' });
    assert.match(ca.hostsToml!, /ca = "\/etc\/containerd\/certs\.d\/mirror\.lan:5000\/ca\.crt"/);
    assert.equal(ca.registriesConf, undefined);
  });
});

describe('sandbox-config command: transport flags', async () => {
  const { resolveTransport } = await import('../src/commands/sandbox-config.ts');
  const refused = async (flags: { insecureRegistry?: string; caFile?: string }, message: RegExp) => {
    await assert.rejects(resolveTransport('mirror.lan:5000', flags), (e: unknown) => e instanceof PauseBuildError && message.test(e.message) && !/\n/.test(`${e.message}${e.hint}`));
  };
  test('plain HTTP only for the image\'s own registry; a CA file must be a readable PEM', async () => {
    assert.deepEqual(await resolveTransport('mirror.lan:5000', {}), { kind: 'tls' });
    assert.deepEqual(await resolveTransport('mirror.lan:5000', { insecureRegistry: 'mirror.lan:5000' }), { kind: 'plain-http' });
    await refused({ insecureRegistry: 'other.lan:5000' }, /^--insecure-registry other\.lan:5000 is not the registry of the image \(mirror\.lan:5000\)$/);
    await refused({ insecureRegistry: 'http://mirror.lan:5000' }, /is not a host/);
    await refused({ insecureRegistry: 'mirror.lan:5000', caFile: '/x' }, /contradict/);
    await refused({ caFile: '/nonexistent/ca.pem' }, /^cannot read --ca-file \/nonexistent\/ca\.pem \(ENOENT\)$/);
    await refused({ caFile: new URL(import.meta.url).pathname }, /holds no PEM certificate/);
  });
});
