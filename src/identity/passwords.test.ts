import { hash } from '@node-rs/argon2';
import { describe, expect, it } from 'vitest';
import {
  ARGON2_PARAMETERS,
  hashPassword,
  MAX_PASSWORD_LENGTH,
  needsRehash,
  passwordProblem,
  verifyDummy,
  verifyPassword,
} from './passwords.ts';

describe('password hashing', () => {
  it('uses argon2id with the OWASP parameters and a fresh salt', async () => {
    const first = await hashPassword('a long and unusual passphrase');
    const second = await hashPassword('a long and unusual passphrase');
    expect(first).toMatch(/^\$argon2id\$v=19\$m=19456,t=2,p=1\$[A-Za-z0-9+/]{22}\$[A-Za-z0-9+/]{43}$/);
    expect(first).not.toBe(second);
    expect(needsRehash(first)).toBe(false);
  });

  it('verifies exactly as typed: no trimming, no case or Unicode folding', async () => {
    const password = ' Ünïcødé pass ✓ ';
    const stored = await hashPassword(password);
    expect(await verifyPassword(stored, password)).toBe(true);
    for (const other of [
      password.trim(),
      password.toLowerCase(),
      password.normalize('NFD'),
      `${password} `,
    ]) {
      expect(await verifyPassword(stored, other), JSON.stringify(other)).toBe(false);
    }
  });

  it('accepts long passwords up to the limit and compares them whole', async () => {
    const long = `${'x'.repeat(MAX_PASSWORD_LENGTH - 1)}y`;
    const stored = await hashPassword(long);
    expect(await verifyPassword(stored, long)).toBe(true);
    expect(await verifyPassword(stored, `${'x'.repeat(MAX_PASSWORD_LENGTH - 1)}z`)).toBe(false);
  });

  it('answers false, never throws, for a malformed or forged hash', async () => {
    for (const stored of [
      '',
      'plain',
      '$argon2id$v=19$m=19456,t=2,p=1$bad$bad',
      '$2b$10$abcdefghijklmnopqrstuv',
    ]) {
      expect(await verifyPassword(stored, 'anything')).toBe(false);
      expect(needsRehash(stored)).toBe(true);
    }
  });

  it('flags hashes made with older parameters for rehashing', async () => {
    const weaker = await hash('password', { ...ARGON2_PARAMETERS, memoryCost: 4096, timeCost: 3 });
    expect(needsRehash(weaker)).toBe(true);
    expect(await verifyPassword(weaker, 'password')).toBe(true);
  });

  it('hashes off the event loop: timers keep firing while a hash is computed', async () => {
    let ticks = 0;
    const timer = setInterval(() => {
      ticks += 1;
    }, 1);
    try {
      await Promise.all([hashPassword('one'), hashPassword('two'), hashPassword('three')]);
    } finally {
      clearInterval(timer);
    }
    expect(ticks).toBeGreaterThan(0);
  });

  it('has a dummy check for unknown accounts that always fails', async () => {
    expect(await verifyDummy('whatever')).toBe(false);
    expect(await verifyDummy('')).toBe(false);
  });
});

describe('password policy', async () => {
  const user = ['jane.doe@example.com', 'Jane Doe'];

  it('accepts long, unusual passwords without composition rules', async () => {
    for (const password of [
      'correct horse battery staple',
      'xK9#mQ2$vL7!',
      'lowercase only but long enough phrase',
    ]) {
      expect(await passwordProblem(password, user), password).toBeNull();
    }
  });

  it('refuses short ones and ones past the limit, counting characters not bytes', async () => {
    expect(await passwordProblem('Ab1!xyz')).toMatchObject({ code: 'too_short' });
    expect(await passwordProblem('x'.repeat(MAX_PASSWORD_LENGTH + 1))).toMatchObject({ code: 'too_long' });
    expect(await passwordProblem('✓'.repeat(7))).toMatchObject({ code: 'too_short' });
  });

  it('refuses common and guessable passwords, with an explanation', async () => {
    for (const password of [
      'password123',
      'qwertyuiop',
      '12345678',
      'iloveyou1',
      'P@ssw0rd!',
      'aaaaaaaaaaaa',
    ]) {
      const problem = await passwordProblem(password);
      expect(problem, password).toMatchObject({ code: 'too_weak' });
      expect(problem?.message, password).toMatch(/[a-z] [a-z]/i);
    }
  });

  it("refuses passwords built from the user's own e-mail or name", async () => {
    for (const password of ['jane.doe2026!', 'JaneDoe#2026', 'example.com-rocks']) {
      expect(await passwordProblem(password, user), password).toMatchObject({ code: 'too_weak' });
    }
  });
});
