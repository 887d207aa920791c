/**
 * Cost of field encryption per value: encrypt, decrypt and blind-index computation, measured
 * in-process (no I/O) on an in-memory SQLite keyring. `npm run bench:crypto`.
 */
import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { systemClock } from '../src/core/clock.ts';
import { BlindIndex, normalizers } from '../src/data-protection/blind-index.ts';
import { FieldCipher } from '../src/data-protection/field-cipher.ts';
import { Keyring } from '../src/data-protection/keyring.ts';
import { openDatabase } from '../src/storage/database.ts';
import { migrateUp } from '../src/storage/migrator.ts';

const ITERATIONS = 50_000;
const ROUNDS = 5;

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

async function measure(name: string, run: (i: number) => unknown | Promise<unknown>): Promise<void> {
  for (let i = 0; i < 2_000; i += 1) await run(i); // warm-up
  const perOp: number[] = [];
  for (let round = 0; round < ROUNDS; round += 1) {
    const start = performance.now();
    for (let i = 0; i < ITERATIONS; i += 1) await run(i);
    perOp.push(((performance.now() - start) * 1e6) / ITERATIONS);
  }
  console.log(
    `${name.padEnd(36)} ${median(perOp).toFixed(0).padStart(7)} ns/op (median of ${ROUNDS} x ${ITERATIONS})`,
  );
}

const database = openDatabase({ url: 'sqlite::memory:' });
await migrateUp(database);
const keyring = await Keyring.open({ db: database.db, masterKey: randomBytes(32), clock: systemClock });
const cipher = new FieldCipher(keyring);
const email = new BlindIndex(keyring, 'users.email', normalizers.email);
const context = { table: 'users', column: 'email', rowId: 'user_123' };

for (const size of [32, 1024]) {
  const value = 'x'.repeat(size);
  const sealed = cipher.encrypt(value, context);
  await measure(`encrypt ${size} B`, () => cipher.encrypt(value, context));
  await measure(`decrypt ${size} B`, () => cipher.decrypt(sealed, context));
}
await measure('blind index (email)', () => email.compute('Jane.Doe@Example.com'));
await keyring.close();
await database.close();
