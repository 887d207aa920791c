import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { REDIS_URL_TEST, redisAvailable, uniqueName } from '../../test/support/services.ts';
import { ManualClock } from '../core/clock.ts';
import { createSharedState } from './shared-state.ts';
import type { SharedState } from './state.ts';
import { MemoryState } from './stores/memory-state.ts';
import { RedisState } from './stores/redis-state.ts';

interface Harness {
  state: SharedState;
  /** A second instance on the same shared state, as another process would hold; may be `state`. */
  peer: SharedState;
  /** Lets at least `ms` of the backend's time pass. */
  advance(ms: number): Promise<void>;
}

/** Collects messages from a subscription. */
function inbox(): { messages: string[]; handler: (message: string) => void } {
  const messages: string[] = [];
  return { messages, handler: (message) => void messages.push(message) };
}

function until(check: () => void): Promise<void> {
  return vi.waitFor(check, { timeout: 3000, interval: 5 });
}

function sharedStateContract(name: string, create: () => Harness): void {
  describe(`SharedState contract: ${name}`, () => {
    let h: Harness;
    beforeEach(() => {
      h = create();
    });
    afterEach(async () => {
      await h.state.close();
      await h.peer.close();
    });

    describe('increment', () => {
      it('creates the counter at `by` with the given ttl', async () => {
        const first = await h.state.increment('hits', 10_000);
        expect(first.value).toBe(1);
        expect(first.ttlMs).toBeGreaterThan(0);
        expect(first.ttlMs).toBeLessThanOrEqual(10_000);
        expect(await h.peer.get('hits')).toBe('1');
      });

      it('keeps the window fixed across increments, whatever ttl they pass', async () => {
        const first = await h.state.increment('win', 10_000);
        await h.advance(100);
        const second = await h.peer.increment('win', 60_000);
        expect(second.value).toBe(2);
        expect(second.ttlMs).toBeGreaterThan(0);
        expect(second.ttlMs).toBeLessThanOrEqual(first.ttlMs - 100);
      });

      it('starts a new window once the old one expired', async () => {
        await h.state.increment('reset', 50);
        await h.advance(50);
        const fresh = await h.state.increment('reset', 10_000);
        expect(fresh.value).toBe(1);
        expect(fresh.ttlMs).toBeGreaterThan(5_000);
      });

      it('adds `by`, including zero and negative amounts', async () => {
        expect((await h.state.increment('by', 10_000, 5)).value).toBe(5);
        expect((await h.state.increment('by', 10_000, -2)).value).toBe(3);
        expect((await h.state.increment('by', 10_000, 0)).value).toBe(3);
      });

      it('gives an expiry to an existing key that had none', async () => {
        await h.state.set('plain', '7');
        const result = await h.state.increment('plain', 50);
        expect(result).toEqual({ value: 8, ttlMs: expect.any(Number) });
        expect(result.ttlMs).toBeLessThanOrEqual(50);
        await h.advance(50);
        expect(await h.state.get('plain')).toBeNull();
      });

      it('rejects bad ttls, fractional amounts and non-integer values', async () => {
        for (const ttl of [0, -5, Number.NaN, Number.POSITIVE_INFINITY]) {
          await expect(h.state.increment('bad', ttl)).rejects.toThrow();
        }
        await expect(h.state.increment('bad', 1000, 1.5)).rejects.toThrow();
        await h.state.set('text', 'abc');
        await expect(h.state.increment('text', 1000)).rejects.toThrow();
        expect(await h.state.get('text')).toBe('abc');
        expect(await h.state.get('bad')).toBeNull();
      });

      it('counts 200 concurrent increments exactly once each', async () => {
        const results = await Promise.all(
          Array.from({ length: 200 }, (_, i) => (i % 2 ? h.peer : h.state).increment('race', 10_000)),
        );
        const values = results.map((r) => r.value).sort((a, b) => a - b);
        expect(values).toEqual(Array.from({ length: 200 }, (_, i) => i + 1));
        expect(await h.state.get('race')).toBe('200');
      });
    });

    describe('set, get and delete', () => {
      it('returns null for an absent key', async () => {
        expect(await h.state.get('nothing')).toBeNull();
      });

      it('expires a value set with a ttl, and only that one', async () => {
        await h.state.set('long', 'v', 10_000);
        await h.state.set('short', 'v', 50);
        await h.advance(50);
        expect(await h.state.get('short')).toBeNull();
        expect(await h.peer.get('long')).toBe('v');
      });

      it('keeps a value set without a ttl, and a plain set drops an earlier ttl', async () => {
        await h.state.set('k', 'a', 50);
        await h.state.set('k', 'b');
        await h.advance(50);
        expect(await h.state.get('k')).toBe('b');
        // increment only sets an expiry on a key without one, so its ttl reveals the old expiry.
        await h.state.set('n', '1', 10_000);
        await h.state.set('n', '2');
        expect((await h.state.increment('n', 77_777)).ttlMs).toBe(77_777);
      });

      it('round-trips empty and non-ASCII keys and values', async () => {
        await h.state.set('empty', '');
        expect(await h.state.get('empty')).toBe('');
        await h.state.set('ключ 🔑:*', 'значение\n\u0000"');
        expect(await h.peer.get('ключ 🔑:*')).toBe('значение\n\u0000"');
      });

      it('reports whether delete removed something; an expired key counts as absent', async () => {
        await h.state.set('d', 'v');
        expect(await h.peer.delete('d')).toBe(true);
        expect(await h.state.delete('d')).toBe(false);
        expect(await h.state.get('d')).toBeNull();
        await h.state.set('gone', 'v', 50);
        await h.advance(50);
        expect(await h.state.delete('gone')).toBe(false);
      });

      it('rejects bad ttls', async () => {
        await expect(h.state.set('k', 'v', 0)).rejects.toThrow();
        await expect(h.state.set('k', 'v', -1)).rejects.toThrow();
        expect(await h.state.get('k')).toBeNull();
      });
    });

    describe('consume', () => {
      it('returns the value once and removes it', async () => {
        await h.state.set('code', '123456');
        expect(await h.peer.consume('code')).toBe('123456');
        expect(await h.state.consume('code')).toBeNull();
        expect(await h.state.get('code')).toBeNull();
        await h.state.set('old', 'x', 50);
        await h.advance(50);
        expect(await h.state.consume('old')).toBeNull();
      });

      it('gives the value to exactly one of 50 concurrent consumers', async () => {
        await h.state.set('nonce', 'n-1');
        const results = await Promise.all(
          Array.from({ length: 50 }, (_, i) => (i % 2 ? h.peer : h.state).consume('nonce')),
        );
        expect(results.filter((r) => r !== null)).toEqual(['n-1']);
      });
    });

    describe('compareAndSet', () => {
      it('with expected null writes only when the key is absent', async () => {
        expect(await h.state.compareAndSet('c', null, 'a')).toBe(true);
        expect(await h.state.get('c')).toBe('a');
        expect(await h.peer.compareAndSet('c', null, 'b')).toBe(false);
        expect(await h.state.get('c')).toBe('a');
      });

      it('writes on a match and leaves the value alone on a mismatch', async () => {
        await h.state.set('c', 'a');
        expect(await h.state.compareAndSet('c', 'a', 'b')).toBe(true);
        expect(await h.state.compareAndSet('c', 'a', 'c')).toBe(false);
        expect(await h.state.get('c')).toBe('b');
      });

      it('does not confuse an absent key with an empty string', async () => {
        expect(await h.state.compareAndSet('e', 'x', 'y')).toBe(false);
        expect(await h.state.compareAndSet('e', '', 'y')).toBe(false);
        expect(await h.state.get('e')).toBeNull();
        await h.state.set('e', '');
        expect(await h.state.compareAndSet('e', null, 'z')).toBe(false);
        expect(await h.state.compareAndSet('e', '', 'z')).toBe(true);
        expect(await h.state.get('e')).toBe('z');
      });

      it('treats an expired key as absent', async () => {
        await h.state.set('x', 'a', 50);
        await h.advance(50);
        expect(await h.state.compareAndSet('x', 'a', 'b')).toBe(false);
        expect(await h.state.compareAndSet('x', null, 'b')).toBe(true);
      });

      it('applies the ttl when given, and otherwise writes a value without expiry', async () => {
        expect(await h.state.compareAndSet('t', null, 'a', 50)).toBe(true);
        await h.advance(50);
        expect(await h.state.get('t')).toBeNull();
        await h.state.set('keep', '1', 10_000);
        expect(await h.state.compareAndSet('keep', '1', '2')).toBe(true);
        // increment only sets an expiry on a key without one, so its ttl reveals the old expiry.
        expect(await h.state.increment('keep', 77_777)).toEqual({ value: 3, ttlMs: 77_777 });
        await expect(h.state.compareAndSet('t', null, 'a', 0)).rejects.toThrow();
      });

      it('lets exactly one of 50 concurrent writers from the same expected value win', async () => {
        await h.state.set('lock', 'v0');
        const results = await Promise.all(
          Array.from({ length: 50 }, (_, i) =>
            (i % 2 ? h.peer : h.state).compareAndSet('lock', 'v0', `v${i + 1}`),
          ),
        );
        expect(results.filter(Boolean)).toHaveLength(1);
        expect(await h.state.get('lock')).toBe(`v${results.indexOf(true) + 1}`);
      });
    });

    describe('publish and subscribe', () => {
      it('delivers to every subscriber on every instance', async () => {
        const [a, b, c] = [inbox(), inbox(), inbox()];
        await h.state.subscribe('news', a.handler);
        await h.peer.subscribe('news', b.handler);
        await h.state.subscribe('news', c.handler);
        await h.state.publish('news', 'm1');
        await h.peer.publish('news', 'm2');
        await until(() => {
          for (const box of [a, b, c]) expect(box.messages).toEqual(['m1', 'm2']);
        });
      });

      it('never calls a handler inside publish, and keeps one publisher in order', async () => {
        const box = inbox();
        await h.peer.subscribe('order', box.handler);
        const pending = h.state.publish('order', '0');
        expect(box.messages).toEqual([]);
        await pending;
        for (let i = 1; i < 20; i++) await h.state.publish('order', String(i));
        await until(() => expect(box.messages).toEqual(Array.from({ length: 20 }, (_, i) => String(i))));
      });

      it('stops delivery after unsubscribe while other subscribers keep receiving', async () => {
        const [gone, stays] = [inbox(), inbox()];
        const unsubscribe = await h.state.subscribe('chan', gone.handler);
        await h.peer.subscribe('chan', stays.handler);
        await unsubscribe();
        await unsubscribe();
        await h.state.publish('chan', 'after');
        await until(() => expect(stays.messages).toEqual(['after']));
        expect(gone.messages).toEqual([]);
      });

      it('keeps channels apart and does not replay earlier messages to new subscribers', async () => {
        await h.state.publish('one', 'early');
        const [one, two] = [inbox(), inbox()];
        await h.peer.subscribe('one', one.handler);
        await h.peer.subscribe('two', two.handler);
        await h.state.publish('two', 'y');
        await h.state.publish('one', 'x');
        await until(() => {
          expect(one.messages).toEqual(['x']);
          expect(two.messages).toEqual(['y']);
        });
      });

      it('keeps delivering to others when a handler throws', async () => {
        const warn = vi.spyOn(process, 'emitWarning').mockImplementation(() => {});
        try {
          const box = inbox();
          await h.peer.subscribe('boom', () => {
            throw new Error('handler failure');
          });
          await h.peer.subscribe('boom', box.handler);
          await h.state.publish('boom', '1');
          await h.state.publish('boom', '2');
          await until(() => expect(box.messages).toEqual(['1', '2']));
          expect(warn).toHaveBeenCalled();
        } finally {
          warn.mockRestore();
        }
      });
    });

    it('pings with a latency in milliseconds', async () => {
      const latency = await h.state.ping();
      expect(Number.isFinite(latency)).toBe(true);
      expect(latency).toBeGreaterThanOrEqual(0);
    });

    it('rejects every operation after close', async () => {
      const unsubscribe = await h.state.subscribe('c', () => {});
      await h.state.close();
      await h.state.close();
      await unsubscribe();
      const s = h.state;
      const operations: Array<() => Promise<unknown>> = [
        () => s.increment('k', 1000),
        () => s.set('k', 'v'),
        () => s.get('k'),
        () => s.delete('k'),
        () => s.consume('k'),
        () => s.compareAndSet('k', null, 'v'),
        () => s.publish('c', 'm'),
        () => s.subscribe('c', () => {}),
        () => s.ping(),
      ];
      for (const operation of operations) await expect(operation()).rejects.toThrow(/closed/);
    });
  });
}

sharedStateContract('memory', () => {
  const clock = new ManualClock();
  const state = new MemoryState({ clock });
  return {
    state,
    peer: state,
    advance: async (ms) => clock.advance(ms),
  };
});

describe('MemoryState', () => {
  it('reports exact ttls against its clock', async () => {
    const clock = new ManualClock();
    const state = new MemoryState({ clock });
    expect(await state.increment('k', 1000)).toEqual({ value: 1, ttlMs: 1000 });
    clock.advance(300);
    expect(await state.increment('k', 1000)).toEqual({ value: 2, ttlMs: 700 });
    await state.close();
  });

  it('sweeps expired entries that are never read again', async () => {
    const clock = new ManualClock();
    const state = new MemoryState({ clock, sweepIntervalMs: 5 });
    await state.set('short', 'v', 50);
    await state.set('long', 'v');
    clock.advance(50);
    await until(() => expect(state.size).toBe(1));
    await state.close();
  });

  it('is what createSharedState picks without a Redis URL', async () => {
    for (const redisUrl of [undefined, null, '']) {
      const state = createSharedState({ redisUrl });
      expect(state.kind).toBe('memory');
      await state.close();
    }
  });
});

describe.skipIf(!(await redisAvailable()))('RedisState', () => {
  const runPrefix = `${uniqueName('bastion_test')}:`;
  let admin: Redis;
  let count = 0;
  const nextPrefix = (): string => `${runPrefix}${++count}:`;

  beforeAll(() => {
    admin = new Redis(REDIS_URL_TEST);
  });

  afterAll(async () => {
    const keys = await admin.keys(`${runPrefix}*`);
    if (keys.length > 0) await admin.del(...keys);
    await admin.quit();
  });

  sharedStateContract('redis', () => {
    const keyPrefix = nextPrefix();
    return {
      state: new RedisState({ url: REDIS_URL_TEST, keyPrefix }),
      peer: new RedisState({ url: REDIS_URL_TEST, keyPrefix }),
      // Redis keeps its own time; sleep a little past `ms` so its expiry has certainly passed.
      advance: (ms) => sleep(ms + 25),
    };
  });

  it('stores keys under its prefix and isolates instances with different prefixes', async () => {
    const [prefixA, prefixB] = [nextPrefix(), nextPrefix()];
    const a = new RedisState({ url: REDIS_URL_TEST, keyPrefix: prefixA });
    const b = new RedisState({ url: REDIS_URL_TEST, keyPrefix: prefixB });
    try {
      await a.set('k', 'from-a', 10_000);
      await b.set('k', 'from-b');
      expect(await a.get('k')).toBe('from-a');
      expect(await b.get('k')).toBe('from-b');
      expect(await admin.get(`${prefixA}k`)).toBe('from-a');
      expect(await admin.pttl(`${prefixA}k`)).toBeGreaterThan(0);
      const [boxA, boxB] = [inbox(), inbox()];
      await a.subscribe('chan', boxA.handler);
      await b.subscribe('chan', boxB.handler);
      await a.publish('chan', 'x');
      await b.publish('chan', 'y');
      await until(() => {
        expect(boxA.messages).toEqual(['x']);
        expect(boxB.messages).toEqual(['y']);
      });
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
  });

  it('is what createSharedState picks with a Redis URL', async () => {
    const state = createSharedState({ redisUrl: REDIS_URL_TEST, keyPrefix: nextPrefix() });
    expect(state.kind).toBe('redis');
    await state.close();
  });

  it('rejects promptly instead of hanging when Redis is unreachable', async () => {
    const state = new RedisState({ url: 'redis://127.0.0.1:1', connectTimeoutMs: 200 });
    const promptly = <T>(promise: Promise<T>): Promise<T> =>
      Promise.race([
        promise,
        sleep(1500).then(() => Promise.reject(new Error('still pending: the call hangs'))),
      ]);
    try {
      for (let round = 0; round < 2; round++) {
        await expect(promptly(state.get('k'))).rejects.toThrow(/Redis/);
        await expect(promptly(state.increment('k', 1000))).rejects.toThrow(/Redis/);
        await expect(promptly(state.compareAndSet('k', null, 'v'))).rejects.toThrow(/Redis/);
        await expect(promptly(state.subscribe('c', () => {}))).rejects.toThrow(/Redis/);
        await expect(promptly(state.ping())).rejects.toThrow(/Redis/);
        await sleep(150);
      }
      expect(state.lastError).toBeInstanceOf(Error);
    } finally {
      await state.close();
    }
  });
});
