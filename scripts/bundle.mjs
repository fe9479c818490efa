// Builds dist/main.js: the whole CLI in one file, so that start-up is one file read and one
// parse instead of hundreds of module resolutions. Command families stay lazy: esbuild turns
// each `await import()` into a deferred initialiser inside the same file. The bin, dist/cli.js,
// is a few lines (src/bin.ts) that run main.js with V8's code cache (src/code-cache.ts): the
// bin stays at dist/cli.js (npx caches links to the bin's path).
//
// CommonJS rather than an ES module: in an ES module bundle every Node.js built-in that any
// command uses (http, https, worker_threads, zlib, child_process…) becomes a static import
// loaded at start; as CommonJS each is required where it is first used. dist/package.json
// says so.
//
// Left outside the bundle: @actions/core (with its HTTP client, half a megabyte more to parse
// at every start, for a module loaded only inside GitHub Actions), fflate (its CommonJS build
// is loaded by path into the gzip workers, and its version is part of every cache key, so main
// thread and workers share one copy), semver and yaml, which are require()d on first use, and
// the sigstore libraries with @noble/curves (@sigstore/sign alone brings a megabyte of HTTP
// stack), which only signing and verifying load.
import { chmod, rm, writeFile } from 'node:fs/promises';
import { build } from 'esbuild';

const common = {
  bundle: true,
  platform: 'node',
  format: 'cjs',
  target: 'node20.5',
  banner: { js: "const __pauseBuildUrl = require('node:url').pathToFileURL(__filename).href;" },
  define: { PAUSE_BUILD_BUNDLED: 'true', 'import.meta.url': '__pauseBuildUrl' },
  minifyWhitespace: true,
  minifySyntax: true,
  legalComments: 'none',
  logLevel: 'warning',
};
const bin = 'dist/cli.js';
await rm('dist', { recursive: true, force: true });
await build({
  ...common,
  entryPoints: ['src/cli.ts'],
  outfile: 'dist/main.js',
  external: ['@actions/core', 'fflate', 'semver', 'yaml', '@sigstore/*', '@noble/curves'],
});
await build({ ...common, entryPoints: ['src/bin.ts'], outfile: bin });
await writeFile('dist/package.json', '{ "type": "commonjs" }\n');
await chmod(bin, 0o755);
