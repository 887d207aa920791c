import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  type DatabaseBackend,
  postgresBackend,
  sqliteBackend,
} from '../../test/support/database-backends.ts';
import { postgresAvailable } from '../../test/support/services.ts';
import { ManualClock } from '../core/clock.ts';
import { Lease } from './lease.ts';

const pgUp = await postgresAvailable();

/** The lease TTL the configuration defaults to (`alerts.leaseTtlMs`). */
const TTL = 15_000;
/** How often AlertService renews (and competitors try): a third of the TTL. */
const RENEW_EVERY = TTL / 3;

describe.each([
  { engine: 'SQLite', make: () => sqliteBackend({ poolMax: 2 }), skip: false },
  { engine: 'PostgreSQL', make: () => postgresBackend({ poolMax: 2 }), skip: !pgUp },
])('Lease on $engine', ({ make, skip }) => {
  const test = it.skipIf(skip);
  let backend: DatabaseBackend;
  let clock: ManualClock;
  let t0: number;

  beforeEach(() => {
    if (skip) return;
    backend = make();
    clock = new ManualClock();
    t0 = clock.now();
  });
  afterEach(async () => {
    if (skip) return;
    await backend.cleanup();
  });

  /** One instance: its own connection, its own holder id, the shared (NTP-synced) clock. */
  async function instance(holder: string, name = 'alerting'): Promise<Lease> {
    const database = await backend.open();
    return new Lease({ db: database.db, name, holder, ttlMs: TTL, clock });
  }

  test('of instances competing at the same moment, exactly one holds the lease', async () => {
    const leases: Lease[] = [];
    // Started one by one (migrations must not run concurrently); only the acquisitions race.
    for (const holder of ['i1', 'i2', 'i3', 'i4']) leases.push(await instance(holder));
    const results = await Promise.all(leases.map((lease) => lease.acquire()));
    expect(results.filter(Boolean)).toHaveLength(1);
    const winner = leases[results.indexOf(true)]!;
    expect(await winner.current()).toEqual({ holder: winner.holder, expiresAt: t0 + TTL });

    // Competing again (the lease now exists and is live) changes nothing.
    const again = await Promise.all(leases.map((lease) => lease.acquire()));
    expect(again).toEqual(leases.map((lease) => lease === winner));
  });

  test('the holder renews and keeps the lease past its first expiry', async () => {
    const one = await instance('one');
    const two = await instance('two');
    expect(await one.acquire()).toBe(true);
    expect(await two.acquire()).toBe(false);
    for (let renewal = 1; renewal <= 6; renewal += 1) {
      clock.advance(RENEW_EVERY);
      expect(await one.acquire()).toBe(true);
      expect(await two.acquire()).toBe(false);
    }
    // 30 s later, well past the first TTL: still the first holder, expiring a TTL after its renewal.
    expect(await two.current()).toEqual({ holder: 'one', expiresAt: t0 + 6 * RENEW_EVERY + TTL });
  });

  test('when the holder dies, the other takes over exactly when the TTL has passed (well within 30 s)', async () => {
    const one = await instance('one');
    const two = await instance('two');
    expect(await one.acquire()).toBe(true);
    // `one` renews for the last time at t0 and dies. `two` tries on its own schedule, 1 s out of phase.
    clock.advance(1000);
    let takenAt: number | null = null;
    while (takenAt === null) {
      if (await two.acquire()) takenAt = clock.now();
      else clock.advance(RENEW_EVERY);
    }
    expect(takenAt - t0).toBe(16_000);
    expect(takenAt - t0).toBeLessThan(30_000);
    expect(await two.current()).toEqual({ holder: 'two', expiresAt: takenAt + TTL });

    // Exactly at the TTL the lease is free; a millisecond before it is not.
    const three = await instance('three');
    clock.advance(TTL - 1);
    expect(await three.acquire()).toBe(false);
    clock.advance(1);
    expect(await three.acquire()).toBe(true);
  });

  test('a holder whose lease was taken learns it on its next acquire', async () => {
    const one = await instance('one');
    const two = await instance('two');
    expect(await one.acquire()).toBe(true);
    clock.advance(TTL);
    expect(await two.acquire()).toBe(true);
    // `one` was paused (GC, a stopped VM) and comes back: it must not take the lease back.
    expect(await one.acquire()).toBe(false);
    expect(await one.current()).toEqual({ holder: 'two', expiresAt: t0 + 2 * TTL });
    expect(await two.acquire()).toBe(true);
    // Releasing a lease it no longer holds does not free the new holder's.
    await one.release();
    expect(await one.acquire()).toBe(false);
    expect((await two.current())?.holder).toBe('two');
  });

  test('release() hands the lease over at once', async () => {
    const one = await instance('one');
    const two = await instance('two');
    expect(await one.acquire()).toBe(true);
    expect(await two.acquire()).toBe(false);
    await one.release();
    expect(await two.current()).toBeNull();
    expect(await two.acquire()).toBe(true);
    expect(await one.acquire()).toBe(false);
    expect(await one.current()).toEqual({ holder: 'two', expiresAt: t0 + TTL });
  });

  test('current() is null before anyone holds it and after it expires; leases of other names are separate', async () => {
    const one = await instance('one');
    const other = await instance('two', 'reports');
    expect(await one.current()).toBeNull();
    expect(await one.acquire()).toBe(true);
    expect(await other.acquire()).toBe(true);
    expect(await other.current()).toEqual({ holder: 'two', expiresAt: t0 + TTL });
    clock.advance(TTL - 1);
    expect((await one.current())?.holder).toBe('one');
    clock.advance(1);
    expect(await one.current()).toBeNull();
  });
});
