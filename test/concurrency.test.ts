import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Limiter, Slots, remember } from '../src/concurrency.ts';

/** A task that records when it runs and ends when released. */
function gate() {
  let open!: () => void;
  const opened = new Promise<void>((r) => {
    open = r;
  });
  return { open, opened };
}

const tick = () => new Promise((r) => setImmediate(r));

describe('Limiter', () => {
  it('runs at most its size at once, the rest in order', async () => {
    const limiter = new Limiter(2);
    const gates = [gate(), gate(), gate()];
    const started: number[] = [];
    const runs = gates.map((g, i) => limiter.run(async () => {
      started.push(i);
      await g.opened;
    }));
    await tick();
    assert.deepEqual(started, [0, 1]);
    gates[1]!.open();
    await tick();
    assert.deepEqual(started, [0, 1, 2]);
    gates[0]!.open();
    gates[2]!.open();
    await Promise.all(runs);
  });
});

describe('Slots', () => {
  it('gives a slot to the first task of each key; later ones of a key wait for it and take none', { timeout: 5000 }, async () => {
    const slots = new Slots(1);
    const a = gate();
    const b = gate();
    const started: string[] = [];
    const first = slots.run('x', async () => {
      started.push('x1');
      await a.opened;
    });
    const other = slots.run('y', async () => {
      started.push('y1');
      await b.opened;
    });
    const followers = ['x2', 'x3'].map((name) => slots.run('x', async () => {
      started.push(name);
    }));
    await tick();
    assert.deepEqual(started, ['x1'], 'y waits for the one slot; x2, x3 wait for x1');
    a.open();
    await first;
    await Promise.all(followers);
    await tick();
    // x2 and x3 ran without the slot: y took it when x1 ended, and is still holding it.
    assert.deepEqual(started.slice().sort(), ['x1', 'x2', 'x3', 'y1']);
    b.open();
    await other;
  });

  it('runs a follower even when the first of its key failed', async () => {
    const slots = new Slots(1);
    const failed = slots.run('k', async () => {
      throw new Error('first failed');
    });
    const follower = slots.run('k', async () => 'ran');
    await assert.rejects(failed, /first failed/);
    assert.equal(await follower, 'ran');
  });
});

describe('remember', () => {
  it('asks once per key, and again after a failure', async () => {
    const memo = new Map<string, Promise<number>>();
    let asks = 0;
    const ask = async () => ++asks;
    assert.deepEqual(await Promise.all([remember(memo, 'a', ask), remember(memo, 'a', ask), remember(memo, 'b', ask)]), [1, 1, 2]);
    await assert.rejects(remember(memo, 'c', async () => {
      throw new Error('no answer');
    }));
    assert.equal(await remember(memo, 'c', ask), 3);
    assert.equal(asks, 3);
  });
});
