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
