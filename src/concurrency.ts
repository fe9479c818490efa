/** Running promises side by side: a bound on how many at once, and waiting for all of them. */

/** Waits for every promise (so nothing is left running), then throws the first failure. */
export async function settleAll<T>(promises: readonly Promise<T>[]): Promise<T[]> {
  const settled = await Promise.allSettled(promises);
  const failed = settled.find((s): s is PromiseRejectedResult => s.status === 'rejected');
  if (failed) throw failed.reason;
  return settled.map((s) => (s as PromiseFulfilledResult<T>).value);
}

/** The answer under `key`, asked once; a failed ask is forgotten, so that the next asks again. */
export function remember<T>(map: Map<string, Promise<T>>, key: string, ask: () => Promise<T>): Promise<T> {
  let entry = map.get(key);
  if (!entry) {
    entry = ask();
    map.set(key, entry);
    entry.catch(() => map.delete(key));
  }
  return entry;
}

/** A small semaphore: at most `size` tasks at once. */
export class Limiter {
  private active = 0;
  private readonly waiting: (() => void)[] = [];
  constructor(private readonly size: number) {}

  async run<T>(fn: () => Promise<T>): Promise<T> {
    if (this.active >= this.size) await new Promise<void>((resolve) => this.waiting.push(resolve));
    this.active++;
    try {
      return await fn();
    } finally {
      this.active--;
      this.waiting.shift()?.();
    }
  }
}

/**
 * A Limiter for work that others may share: the first task of a key takes a slot; later ones
 * of the same key wait for it (whatever its outcome) and then run without one, as what they
 * have left to do is what the first already did.
 */
export class Slots {
  private readonly limiter: Limiter;
  private readonly leaders = new Map<string, Promise<unknown>>();
  constructor(size: number) {
    this.limiter = new Limiter(size);
  }

  run<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const leader = this.leaders.get(key);
    if (leader) return leader.then(fn, fn);
    const op = this.limiter.run(fn);
    this.leaders.set(key, op);
    return op;
  }
}
