import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../core/clock.ts';
import { type Database, openDatabase } from '../storage/database.ts';
import { migrateUp } from '../storage/migrator.ts';
import { Keyring } from './keyring.ts';
import { PSEUDONYM_PREFIX, Pseudonymizer, pseudonymize } from './pseudonymizer.ts';

const FORMAT = /^psn_[A-Za-z0-9_-]{22}$/;

describe('pseudonymize', () => {
  const key = randomBytes(32);

  it('is stable: the same value, key and namespace give the same pseudonym', () => {
    const first = pseudonymize(key, 'user-42', 'analytics');
    expect(first).toMatch(FORMAT);
    expect(first.startsWith(PSEUDONYM_PREFIX)).toBe(true);
    expect(pseudonymize(key, 'user-42', 'analytics')).toBe(first);
    expect(pseudonymize(Buffer.from(key), 'user-42', 'analytics')).toBe(first);
  });

  it('uses the namespace "default" when none is given', () => {
    expect(pseudonymize(key, 'jane@example.com')).toBe(pseudonymize(key, 'jane@example.com', 'default'));
  });

  it('separates values, namespaces and keys', () => {
    const base = pseudonymize(key, 'user-42', 'analytics');
    const others = [
      pseudonymize(key, 'user-43', 'analytics'),
      pseudonymize(key, 'user-42', 'billing'),
      pseudonymize(key, 'user-42'),
      pseudonymize(randomBytes(32), 'user-42', 'analytics'),
    ];
    expect(new Set([base, ...others]).size).toBe(5);
  });

  it('normalises with NFKC, so equivalent spellings share a pseudonym, and nothing more', () => {
    expect(pseudonymize(key, 'José')).toBe(pseudonymize(key, 'Jose\u0301'));
    expect(pseudonymize(key, 'ﬁle')).toBe(pseudonymize(key, 'file'));
    expect(pseudonymize(key, 'Jane')).not.toBe(pseudonymize(key, 'jane'));
  });

  it('does not reveal the value: no piece of it appears, and many values give distinct pseudonyms', () => {
    const value = `customer-${randomBytes(8).toString('hex')}`;
    const result = pseudonymize(key, value);
    expect(result).not.toContain(value.slice(9, 17));
    const many = new Set(Array.from({ length: 2000 }, (_, i) => pseudonymize(key, `user-${i}`)));
    expect(many.size).toBe(2000);
  });
});

describe('Pseudonymizer with the keyring', () => {
  const masterKey = randomBytes(32);
  const clock = new ManualClock();
  let dir: string;
  let database: Database;
  let keyring: Keyring;

  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'bastion-psn-'));
    database = openDatabase({ url: `sqlite:${path.join(dir, 'psn.db')}` });
    await migrateUp(database);
    keyring = await Keyring.open({ db: database.db, masterKey, clock });
  });
  afterAll(async () => {
    await keyring.close();
    await database.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('uses the active pseudonym key, and gives the same pseudonyms after a restart', async () => {
    const pseudonymizer = new Pseudonymizer(keyring);
    const value = pseudonymizer.pseudonymize('user-42', 'analytics');
    expect(value).toBe(pseudonymize(keyring.active('pseudonym').key, 'user-42', 'analytics'));
    expect(pseudonymizer.pseudonymize('user-42', 'analytics')).toBe(value);
    expect(pseudonymizer.pseudonymize('user-42')).not.toBe(value);

    const reopened = await Keyring.open({ db: database.db, masterKey, clock });
    try {
      expect(new Pseudonymizer(reopened).pseudonymize('user-42', 'analytics')).toBe(value);
    } finally {
      await reopened.close();
    }
  });

  it('follows a rotation of the pseudonym key: new pseudonyms no longer link to old ones', async () => {
    const pseudonymizer = new Pseudonymizer(keyring);
    const before = pseudonymizer.pseudonymize('user-42', 'analytics');
    await keyring.rotate('pseudonym');
    const after = pseudonymizer.pseudonymize('user-42', 'analytics');
    expect(after).toMatch(FORMAT);
    expect(after).not.toBe(before);
    expect(after).toBe(pseudonymize(keyring.active('pseudonym').key, 'user-42', 'analytics'));
  });
});
