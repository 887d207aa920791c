import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { REDACTED, redactValues, SECRET_KEYS, SUSPECT } from './redaction.ts';

/** A random secret, different every run, so a test cannot pass by matching a fixed string. */
const secret = (prefix = 's') => `${prefix}${randomBytes(12).toString('hex')}`;

/** What a pino line looks like: the object serialized on one line. */
const line = (fields: Record<string, unknown>) =>
  JSON.stringify({ level: 30, time: '2026-01-01T00:00:00.000Z', ...fields, msg: 'm' });

/** Redacts and checks that the result is still one valid JSON line. */
function redactLine(text: string): { out: string; parsed: Record<string, unknown> } {
  const out = redactValues(text);
  return { out, parsed: JSON.parse(out) as Record<string, unknown> };
}

describe('redactValues: secret JSON keys', () => {
  it.each([
    'password',
    'current_password',
    'new_password',
    'passwd',
    'secret',
    'client_secret',
    'webhook_secret',
    'token',
    'access_token',
    'refresh_token',
    'mfa_token',
    'id_token',
    'api_key',
    'apiKey',
    'authorization',
    'cookie',
    'set-cookie',
    'x-api-key',
    'masterKey',
    'master_key',
  ])('redacts the string value of "%s" at the top level and at any depth', (key) => {
    const s = secret();
    const { out, parsed } = redactLine(
      line({ [key]: s, a: { b: { c: { [key]: s } } }, list: [{ [key]: s }] }),
    );
    expect(out).not.toContain(s);
    expect(parsed[key]).toBe(REDACTED);
    expect((parsed.a as { b: { c: Record<string, unknown> } }).b.c[key]).toBe(REDACTED);
    expect((parsed.list as Array<Record<string, unknown>>)[0]![key]).toBe(REDACTED);
  });

  it('matches key names case-insensitively (header casing)', () => {
    const s = secret();
    const { out, parsed } = redactLine(line({ Authorization: `Token ${s}`, PASSWORD: s }));
    expect(out).not.toContain(s);
    expect(parsed.Authorization).toBe(REDACTED);
    expect(parsed.PASSWORD).toBe(REDACTED);
  });

  it('redacts number, boolean and null values of secret keys', () => {
    const pin = Number.parseInt(randomBytes(4).toString('hex'), 16) + 100_000_000;
    const { out, parsed } = redactLine(line({ password: pin, nested: { token: pin }, secret: null }));
    expect(out).not.toContain(String(pin));
    expect(parsed.password).toBe(REDACTED);
    expect((parsed.nested as Record<string, unknown>).token).toBe(REDACTED);
    expect(parsed.secret).toBe(REDACTED);
  });

  it('redacts values containing quotes, backslashes, commas and braces whole', () => {
    const s = secret();
    const value = `a"b\\c,d}e]f ${s} "x":"y"`;
    const { out, parsed } = redactLine(line({ password: value, after: 'kept' }));
    expect(out).not.toContain(s);
    expect(parsed.password).toBe(REDACTED);
    expect(parsed.after).toBe('kept');
  });

  it('redacts object and array values of secret keys whole, keeping the line valid JSON', () => {
    const [s1, s2, s3] = [secret(), secret(), secret()];
    const { out, parsed } = redactLine(
      line({
        token: { access: s1, refresh: s2 },
        secret: [s1, { deep: [s2, { deeper: s3 }] }],
        after: 'kept',
      }),
    );
    for (const s of [s1, s2, s3]) expect(out).not.toContain(s);
    expect(parsed.token).toBe(REDACTED);
    expect(parsed.secret).toBe(REDACTED);
    expect(parsed.after).toBe('kept');
  });
});

describe('redactValues: credentials and backup codes', () => {
  it('redacts a credentials object whole, at any depth', () => {
    const [s1, s2] = [secret(), secret()];
    const { out, parsed } = redactLine(
      line({ integration: { name: 'crm', credentials: { k: s1, user: 'bob', pass: s2 } }, after: 1 }),
    );
    expect(out).not.toContain(s1);
    expect(out).not.toContain(s2);
    expect((parsed.integration as Record<string, unknown>).credentials).toBe(REDACTED);
    expect((parsed.integration as Record<string, unknown>).name).toBe('crm');
    expect(parsed.after).toBe(1);
  });

  it('redacts credentials holding nested objects or braces inside strings', () => {
    const [s1, s2] = [secret(), secret()];
    const { out, parsed } = redactLine(
      line({ credentials: { oauth: { client: 'id', key: s1 }, note: `}{ ${s2}` }, after: 'kept' }),
    );
    expect(out).not.toContain(s1);
    expect(out).not.toContain(s2);
    expect(parsed.credentials).toBe(REDACTED);
    expect(parsed.after).toBe('kept');
  });

  it('redacts credentials given as a plain string', () => {
    const s = secret();
    const { out, parsed } = redactLine(line({ credentials: `user:${s}` }));
    expect(out).not.toContain(s);
    expect(parsed.credentials).toBe(REDACTED);
  });

  it('redacts a backup_codes array whole', () => {
    const codes = [secret('c'), secret('c'), secret('c')];
    const { out, parsed } = redactLine(line({ user: { id: 'u1', backup_codes: codes }, after: 'kept' }));
    for (const code of codes) expect(out).not.toContain(code);
    expect((parsed.user as Record<string, unknown>).backup_codes).toBe(REDACTED);
    expect((parsed.user as Record<string, unknown>).id).toBe('u1');
    expect(parsed.after).toBe('kept');
  });
});

describe('redactValues: JSON logged inside a string', () => {
  it('redacts secret keys of escaped JSON and keeps the line valid', () => {
    const s = secret();
    const body = JSON.stringify({ email: 'a@example.com', password: s, refresh_token: s });
    const { out, parsed } = redactLine(line({ body }));
    expect(out).not.toContain(s);
    const inner = JSON.parse(parsed.body as string) as Record<string, unknown>;
    expect(inner).toEqual({ email: 'a@example.com', password: REDACTED, refresh_token: REDACTED });
  });

  it('redacts escaped values that themselves contain escaped quotes and backslashes', () => {
    const [s1, s2] = [secret(), secret()];
    const body = JSON.stringify({ password: `pre"${s1}\\"${s2}`, after: 'kept' });
    const { out, parsed } = redactLine(line({ body }));
    expect(out).not.toContain(s1);
    expect(out).not.toContain(s2);
    expect(JSON.parse(parsed.body as string)).toEqual({ password: REDACTED, after: 'kept' });
  });

  it('redacts escaped number values and escaped objects', () => {
    const pin = Number.parseInt(randomBytes(4).toString('hex'), 16) + 100_000_000;
    const s = secret();
    const body = JSON.stringify({ password: pin, credentials: { k: s, n: { m: s } }, after: 'kept' });
    const { out, parsed } = redactLine(line({ body }));
    expect(out).not.toContain(String(pin));
    expect(out).not.toContain(s);
    expect(JSON.parse(parsed.body as string)).toEqual({
      password: REDACTED,
      credentials: REDACTED,
      after: 'kept',
    });
  });

  it('redacts an escaped value cut short by truncation', () => {
    const s = secret();
    const body = JSON.stringify({ a: 1, password: `${s}${'x'.repeat(50)}` }).slice(0, 30 + s.length);
    const { out } = redactLine(line({ body }));
    expect(out).not.toContain(s.slice(0, 8));
  });

  it('redacts pretty-printed escaped JSON', () => {
    const s = secret();
    const body = JSON.stringify({ user: { password: s } }, null, 2);
    const { out } = redactLine(line({ body }));
    expect(out).not.toContain(s);
  });
});

describe('redactValues: credentials in free text', () => {
  it('redacts Bearer and Basic credentials, whatever the case of the scheme', () => {
    const [s1, s2, s3] = [secret(), Buffer.from(`admin:${secret()}`).toString('base64'), secret()];
    const { out } = redactLine(
      line({ note: `sent Bearer ${s1} then Basic ${s2} and bearer ${s3}`, header: `Bearer ${s1}` }),
    );
    expect(out).not.toContain(s1);
    expect(out).not.toContain(s2);
    expect(out).not.toContain(s3);
    expect(out).toContain(`Bearer ${REDACTED}`);
    expect(out).toContain(`Basic ${REDACTED}`);
  });

  it('redacts the password of URLs (any scheme), keeping user and host', () => {
    const s = secret();
    const { out, parsed } = redactLine(
      line({ msg2: `connect failed postgres://admin:${s}@db.internal:5432/x; redis://:${s}@cache:6379` }),
    );
    expect(out).not.toContain(s);
    expect(parsed.msg2).toBe(
      `connect failed postgres://admin:${REDACTED}@db.internal:5432/x; redis://:${REDACTED}@cache:6379`,
    );
  });

  it('redacts a URL password that contains an unencoded @', () => {
    const [a, b] = [secret(), secret()];
    const { out } = redactLine(line({ url: `postgres://admin:${a}@${b}@db/x` }));
    expect(out).not.toContain(a);
    expect(out).not.toContain(b);
    expect(out).toContain('@db/x');
  });

  it('leaves URLs without a password alone', () => {
    const text = line({ url: 'http://localhost:8080/items?page=2', other: 'https://user@example.com/a' });
    expect(redactValues(text)).toBe(text);
  });

  it.each([
    'password',
    'passwd',
    'pwd',
    'token',
    'access_token',
    'refresh_token',
    'api_key',
    'apikey',
    'secret',
    'client_secret',
    'new_password',
    'mfa_token',
  ])('redacts the query or form parameter %s', (name) => {
    const [s1, s2, s3] = [secret(), secret(), secret()];
    const { out } = redactLine(
      line({
        url: `/cb?state=1&${name}=${s1}&page=2`,
        form: `${name}=${s2}&x=1`,
        note: `called with ${name}=${s3}`,
      }),
    );
    expect(out).not.toContain(s1);
    expect(out).not.toContain(s2);
    expect(out).not.toContain(s3);
    expect(out).toContain('state=1&');
    expect(out).toContain('&page=2');
  });

  it('redacts JWTs anywhere in a line', () => {
    const part = () => randomBytes(24).toString('base64url');
    const jwt = `eyJ${part()}.${part()}.${part()}`;
    const { out } = redactLine(line({ note: `token was ${jwt}.`, list: [jwt] }));
    for (const piece of jwt.split('.')) expect(out).not.toContain(piece);
  });

  it('redacts Bastion API keys anywhere in a line', () => {
    const key = `bst_${randomBytes(16).toString('base64url')}`;
    const { out } = redactLine(line({ note: `key ${key} used`, path: `/keys/${key}` }));
    expect(out).not.toContain(key.slice(4));
    expect(out).toContain(`bst_${REDACTED}`);
  });
});

describe('redactValues: innocent lines', () => {
  it.each([
    ['a token count', '{"tokenCount":5}'],
    ['a route about tokens', '{"method":"GET","route":"/tokens/:id","status":200,"msg":"request completed"}'],
    ['an access line', line({ request_id: 'r-1', route: '/api/v1/organizations/:org', status: 200 })],
    ['a password-policy message', line({ event: 'password_changed', user_id: 'u1' })],
    ['keys that merely contain secret words', line({ secretary: 'x', tokens: ['a'], passwords_checked: 3 })],
    ['query without secrets', line({ url: '/search?q=token&tokens=5&page=2' })],
    ['a short bst_ word', line({ note: 'bst_x' })],
    [
      'a header that is not a credential',
      line({ headers: { accept: 'application/json', 'x-token-count': '3' } }),
    ],
  ])('returns %s unchanged (the identical string)', (_name, text) => {
    expect(redactValues(text)).toBe(text);
  });
});

describe('SUSPECT (the pre-check)', () => {
  it('finds every secret key and credential mark, in any case, so no secret skips redaction', () => {
    const words = [...SECRET_KEYS, 'pwd', 'api-key', 'apikey', 'Bearer', 'Basic', 'redis://', 'eyJ', 'bst_'];
    for (const word of words) {
      expect(SUSPECT.test(`{"x":"${word}"}`), word).toBe(true);
      expect(SUSPECT.test(`{"x":"${word.toUpperCase()}"}`), word).toBe(true);
    }
  });
});

describe('redaction on hostile input (ReDoS)', () => {
  // A quadratic pattern needs minutes for these 100 kB lines; linear ones need milliseconds.
  // The guard is the test's own time limit, not an assertion on elapsed time.
  const n = 50_000;
  const shapes: Array<[string, string]> = [
    ['parameter-name prefixes', `{"path":"/token/${'a-'.repeat(n)}"}`],
    ['scheme-like text', `{"msg":"${'a'.repeat(n)}:"}`],
    ['URL authority', `{"msg":"http://${'a'.repeat(n)}"}`],
    ['URL password without @', `{"msg":"http://u:${'p'.repeat(n)}"}`],
    ['escaped backslashes', `{"password":"${'\\\\'.repeat(n)}`],
    ['nested objects', `{"token":${'{"a":'.repeat(n / 5)}`],
    ['bearer', `{"msg":"Bearer ${'a'.repeat(n)}"}`],
    ['query', `{"msg":"?${'password=x&'.repeat(n / 10)}"}`],
  ];
  it.each(shapes)(
    'stays linear on %s',
    (_name, line) => {
      const result = redactValues(line);
      expect(typeof result).toBe('string');
      expect(result.length).toBeGreaterThan(0);
    },
    10_000,
  );
});

describe('secret field names by pattern', () => {
  const secret = 'S3cr3t-value-0123456789';
  it.each([
    'accessToken',
    'refreshToken',
    'clientSecret',
    'newPassword',
    'private_key',
    'privateKey',
    'session_token',
    'passphrase',
    'x-auth-token',
    'proxy-authorization',
    'x-csrf-token',
    'DB_PASSWORD',
    'backupCodes',
  ])('redacts %s', (key) => {
    const line = JSON.stringify({ level: 30, nested: { [key]: secret }, msg: 'x' });
    const out = redactValues(line);
    expect(out).not.toContain(secret);
    expect(JSON.parse(out).nested[key]).toBe(REDACTED);
  });

  it.each(['tokenCount', 'secret_name', 'passwordPolicy', 'cookies_enabled'])('leaves %s alone', (key) => {
    const line = JSON.stringify({ [key]: 5, other: 'x', note: 'token rotation done' });
    expect(redactValues(line)).toBe(line);
  });
});
