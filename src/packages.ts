/**
 * import() of a package left outside the bundle (scripts/bundle.mjs). The bin runs the bundle
 * as a vm.Script for V8's code cache (src/code-cache.ts), and Node.js 20 cannot serve import()
 * in a script compiled from a cache: the bin lends its own, which resolves from the same
 * directory. Run from source there is none to lend, and the module's own import() does.
 */
export const LENT_IMPORT = Symbol.for('pause-build.import');

type Import = (name: string) => Promise<unknown>;

export function importPackage<T>(name: string): Promise<T> {
  const lent = (globalThis as { [LENT_IMPORT]?: Import })[LENT_IMPORT];
  return (lent ? lent(name) : import(name)) as Promise<T>;
}

/** The bundle's sha256, which the bin computed to match its code cache (src/code-cache.ts). */
export const BUNDLE_SHA256 = Symbol.for('pause-build.bundle-sha256');

/** That hash when the bin ran the bundle; undefined run from source or as `node dist/main.js`. */
export function lentBundleHash(): Buffer | undefined {
  return (globalThis as { [BUNDLE_SHA256]?: Buffer })[BUNDLE_SHA256];
}
