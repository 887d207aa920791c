import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { REDACTED } from '../observability/redaction.ts';
import {
  createPiiMasker,
  luhnValid,
  maskCardNumbers,
  maskEmail,
  maskEmails,
  maskObject,
  maskValue,
} from './pii-masking.ts';

/** What a pino line looks like: the object serialized on one line. */
const line = (fields: Record<string, unknown>) =>
  JSON.stringify({ level: 30, time: '2026-01-01T00:00:00.000Z', pid: 4321, ...fields, msg: 'm' });

/** Cleans a line with the default masker and checks that it is still one valid JSON object. */
function clean(text: string, mask = createPiiMasker()): { out: string; parsed: Record<string, unknown> } {
  const out = mask(text);
  return { out, parsed: JSON.parse(out) as Record<string, unknown> };
}

/** `prefix` completed with its Luhn check digit: a valid card-like number. */
function withCheckDigit(prefix: string): string {
  for (let digit = 0; digit <= 9; digit += 1) {
    if (luhnValid(`${prefix}${digit}`)) return `${prefix}${digit}`;
  }
  throw new Error('unreachable');
}

/** A random Luhn-valid 16-digit number, so no test passes by matching a fixed string. */
const randomCard = () =>
  withCheckDigit(`4${Array.from(randomBytes(14), (byte) => String(byte % 10)).join('')}`);

describe('maskEmail / maskEmails', () => {
  it.each([
    ['jane.doe@example.com', 'j***@example.com'],
    ['jane+newsletter@example.com', 'j***@example.com'],
    ['ops@mail.eu.example.co.uk', 'o***@mail.eu.example.co.uk'],
    ['JANE.DOE@EXAMPLE.COM', 'J***@EXAMPLE.COM'],
    ['josé.garcía@exämple.de', 'j***@exämple.de'],
    ['Ünal@beispiel.de', 'Ü***@beispiel.de'],
    ['用户@例子.中国', '用***@例子.中国'],
    ['a@example.org', 'a***@example.org'],
    ['x_y-z%1@sub-domain.example.io', 'x***@sub-domain.example.io'],
  ])('masks %s as %s, alone and inside text', (email, masked) => {
    expect(maskEmail(email)).toBe(masked);
    expect(maskEmails(`from <${email}>, again: ${email}.`)).toBe(`from <${masked}>, again: ${masked}.`);
  });

  it('masks an address right after a JSON escape without taking the escape letter', () => {
    const text = JSON.stringify({ msg: 'first line\njane@example.com\tjoe@example.com' });
    expect(maskEmails(text)).toBe(JSON.stringify({ msg: 'first line\nj***@example.com\tj***@example.com' }));
  });

  it('leaves text without an address alone, and is idempotent', () => {
    for (const text of ['@fastify/cors', 'user@localhost', 'a@b.c', 'price @ 5', 'x@ example.com']) {
      expect(maskEmails(text)).toBe(text);
    }
    const once = maskEmails('jane.doe@example.com');
    expect(maskEmails(once)).toBe(once);
  });
});

describe('maskCardNumbers', () => {
  it.each([
    ['Visa', '4111111111111111'],
    ['Visa (13 digits)', '4222222222222'],
    ['Visa', '4012888888881881'],
    ['Mastercard', '5555555555554444'],
    ['Mastercard', '5105105105105100'],
    ['Mastercard 2-series', '2223003122003222'],
    ['Amex', '378282246310005'],
    ['Amex', '371449635398431'],
    ['Discover', '6011111111111117'],
    ['19 digits', withCheckDigit('601100000000000000')],
  ])('masks a %s test number %s, plain, with spaces and with dashes', (_brand, number) => {
    const last4 = number.slice(-4);
    const masked = `**** **** **** ${last4}`;
    const spaced = number.replace(/(\d{4})(?=\d{3})/g, '$1 ');
    const dashed = number.replace(/(\d{4})(?=\d{3})/g, '$1-');
    for (const form of [number, spaced, dashed]) {
      const out = maskCardNumbers(`paid with ${form}, thanks`);
      expect(out, form).toBe(`paid with ${masked}, thanks`);
      expect(out).not.toContain(number.slice(0, 6));
    }
  });

  it('masks Amex in its 4-6-5 grouping and several cards in one text', () => {
    expect(maskCardNumbers('3782 822463 10005')).toBe('**** **** **** 0005');
    expect(maskCardNumbers('4111111111111111 5555555555554444')).toBe(
      '**** **** **** 1111 **** **** **** 4444',
    );
    expect(maskCardNumbers('1767225600000 4111-1111-1111-1111, 12 5105 1051 0510 5100')).toBe(
      '1767225600000 **** **** **** 1111, 12 **** **** **** 5100',
    );
  });

  it('keeps a random card number out of the output', () => {
    const card = randomCard();
    const out = maskCardNumbers(JSON.stringify({ card, note: `card ${card}` }));
    expect(out).not.toContain(card);
    expect(out).not.toContain(card.slice(0, 12));
    expect(out).toContain(`**** **** **** ${card.slice(-4)}`);
  });

  it.each([
    ['a Luhn-invalid number', '4111111111111112'],
    ['a Luhn-invalid spaced number', '4111 1111 1111 1112'],
    ['an epoch-millisecond timestamp', '1767225600001'],
    ['an ISO timestamp', '2026-01-01T00:00:00.000Z'],
    ['a 25-digit id', '1234567890123456789012345'],
    ['a snowflake id', '1234567890123456788'],
    ['a UUID', '3f2a1b4c-9d8e-4f00-a1b2-c3d4e5f60718'],
    ['an IP address', '192.168.100.200'],
    ['a phone number', '+44 7700 900123'],
    ['a number glued to a word', 'order4111111111111111'],
    ['a number glued to letters after', '4111111111111111abc'],
    ['a decimal fraction', '0.4111111111111111'],
    ['twelve digits', '4111 1111 1111'],
  ])('leaves %s alone', (_name, text) => {
    if (/^[\d ]+$/.test(text)) expect(luhnValid(text.replace(/ /g, ''))).toBe(false);
    expect(maskCardNumbers(`value ${text} end`)).toBe(`value ${text} end`);
  });
});

describe('createPiiMasker on JSON log lines', () => {
  const mask = createPiiMasker({ fields: ['phone', 'ssn', 'address'] });

  it('masks e-mails and card numbers anywhere in a line, keeping it valid JSON', () => {
    const card = randomCard();
    const { out, parsed } = clean(
      line({
        user: { email: 'jane.doe@example.com', cards: [card] },
        note: `mail bob@corp.io, card ${card}`,
      }),
      mask,
    );
    expect(out).not.toContain('jane.doe@');
    expect(out).not.toContain('bob@');
    expect(out).not.toContain(card);
    expect(parsed.user).toEqual({ email: 'j***@example.com', cards: [`**** **** **** ${card.slice(-4)}`] });
    expect(parsed.note).toBe(`mail b***@corp.io, card **** **** **** ${card.slice(-4)}`);
  });

  it('masks configured fields at any depth, in arrays and whatever the key case', () => {
    const { parsed } = clean(
      line({
        phone: '+44 7700 900123',
        customer: { profile: { contact: { Phone: '+1 555 0100 2233', ssn: 123456789 } } },
        addresses: [{ address: '1 Main Street, Springfield' }, { address: 'Short' }],
      }),
      mask,
    );
    expect(parsed.phone).toBe('***23');
    expect(parsed.customer).toEqual({ profile: { contact: { Phone: '***33', ssn: '***89' } } });
    expect(parsed.addresses).toEqual([{ address: '***ld' }, { address: '***' }]);
  });

  it('masks configured fields inside JSON logged as a string, escapes included', () => {
    const body = JSON.stringify({ phone: '555 "0100" 99\\77', nested: { ssn: '078-05-1120' }, keep: 'ok' });
    const { out, parsed } = clean(line({ body }), mask);
    expect(out).not.toContain('0100');
    expect(out).not.toContain('078-05');
    expect(JSON.parse(parsed.body as string)).toEqual({
      phone: '***77',
      nested: { ssn: '***20' },
      keep: 'ok',
    });
  });

  it('leaves fields that merely contain a configured name, and null or boolean values, alone', () => {
    const text = line({ phone_verified: true, phones_count: 2, phone: null, myphone: 'x', route: '/phone' });
    expect(mask(text)).toBe(text);
  });

  it('masks an escaped JSON number value and a value holding an e-mail', () => {
    const body = JSON.stringify({ ssn: 987654321, address: 'jane@example.com' });
    const { parsed } = clean(line({ body }), mask);
    expect(JSON.parse(parsed.body as string)).toEqual({ ssn: '***21', address: '***om' });
  });

  it('redacts secrets too (redaction.ts), so one function cleans a line', () => {
    const key = `bst_${randomBytes(16).toString('base64url')}`;
    const jwt = `eyJ${randomBytes(12).toString('base64url')}.${randomBytes(12).toString('base64url')}.sig`;
    const { out, parsed } = clean(
      line({
        password: 'hunter2-secret',
        auth: `Bearer ${jwt}`,
        note: `key ${key}`,
        email: 'a.b@example.com',
      }),
      mask,
    );
    expect(out).not.toContain(key.slice(4));
    expect(out).not.toContain(jwt.split('.')[1]);
    expect(parsed.password).toBe(REDACTED);
    expect(parsed.auth).toBe(`Bearer ${REDACTED}`);
    expect(parsed.note).toBe(`key bst_${REDACTED}`);
    expect(parsed.email).toBe('a***@example.com');
  });

  it('keeps e-mails when maskEmails is off, and still masks cards', () => {
    const noEmails = createPiiMasker({ emails: false });
    const { parsed } = clean(line({ email: 'jane@example.com', card: '4111 1111 1111 1111' }), noEmails);
    expect(parsed.email).toBe('jane@example.com');
    expect(parsed.card).toBe('**** **** **** 1111');
  });

  it.each([
    [
      'an access line',
      '{"level":30,"time":"2026-01-01T12:34:56.789Z","pid":1,"request_id":"3f2a1b4c-9d8e-4f00-a1b2-c3d4e5f60718","method":"GET","route":"/hello","status":200,"duration_ms":0.4,"client_ip":"127.0.0.1","user_id":null,"org_id":null,"msg":"request completed"}',
    ],
    [
      'a 404 access line',
      line({ path: '/users/12345678/orders/2026-01-01', status: 404, duration_ms: 12.5 }),
    ],
    ['a line with package names', line({ err: { stack: 'at node_modules/@fastify/cors/index.js:10:5' } })],
    [
      'a line of ids and timestamps',
      line({ ids: ['1767225600001', '1234567890123456788'], at: 1767225600001 }),
    ],
    ['a line with a phone-like key only', line({ phone_country: 'GB' })],
  ])('returns %s unchanged (the identical string)', (_name, text) => {
    expect(mask(text)).toBe(text);
    expect(createPiiMasker()(text)).toBe(text);
  });
});

describe('maskValue', () => {
  it('keeps the last two characters of values of 8 or more characters only', () => {
    expect(maskValue('+44 7700 900123')).toBe('***23');
    expect(maskValue('1234567')).toBe('***');
    expect(maskValue('')).toBe('***');
    expect(maskValue('😀😀😀😀😀😀😀😁😂')).toBe('***😁😂');
  });
});

describe('maskObject', () => {
  const options = { fields: ['phone', 'ssn'] };

  it('returns a masked deep copy and leaves its input unchanged', () => {
    const card = randomCard();
    const input = {
      user: { email: 'Jane.Doe@example.com', phone: '+44 7700 900123', ssn: 123456789 },
      payment: {
        cards: [card, `${card.slice(0, 4)} ${card.slice(4, 8)} ${card.slice(8, 12)} ${card.slice(12)}`],
      },
      password: 'hunter2',
      headers: { Authorization: 'Bearer abcdefghijklmnop', 'X-Api-Key': 'k', accept: 'json' },
      note: `key bst_${randomBytes(12).toString('hex')} for ops@example.org`,
      count: 3,
      active: true,
      nothing: null,
    };
    const before = structuredClone(input);
    const out = maskObject(input, options);
    expect(input).toEqual(before);
    expect(out).not.toBe(input);
    expect(out).toEqual({
      user: { email: 'J***@example.com', phone: '***23', ssn: '***89' },
      payment: { cards: [`**** **** **** ${card.slice(-4)}`, `**** **** **** ${card.slice(-4)}`] },
      password: REDACTED,
      headers: { Authorization: REDACTED, 'X-Api-Key': REDACTED, accept: 'json' },
      note: `key bst_${REDACTED} for o***@example.org`,
      count: 3,
      active: true,
      nothing: null,
    });
    expect(JSON.stringify(out)).not.toContain(card);
  });

  it('masks configured fields inside JSON held in a string', () => {
    expect(maskObject({ body: '{"phone":"+1 555 0100 2233"}' }, options)).toEqual({
      body: '{"phone":"***33"}',
    });
  });

  it('replaces cycles by [Circular] but copies a shared object in both places', () => {
    const shared = { email: 'a.b@example.com' };
    const input: Record<string, unknown> = { list: [shared, shared], name: 'root' };
    input.self = input;
    (input.list as unknown[]).push(input.list);
    const out = maskObject(input) as Record<string, unknown>;
    expect(out.self).toBe('[Circular]');
    expect(out.list).toEqual([{ email: 'a***@example.com' }, { email: 'a***@example.com' }, '[Circular]']);
    expect(out.name).toBe('root');
  });

  it('handles arrays and strings at the top level', () => {
    expect(maskObject(['jane@example.com', 7, null, ['4111 1111 1111 1111']])).toEqual([
      'j***@example.com',
      7,
      null,
      ['**** **** **** 1111'],
    ]);
    expect(maskObject('write to jane@example.com')).toBe('write to j***@example.com');
    expect(maskObject(undefined)).toBeUndefined();
  });

  it('turns an error (an error report) into name, message, stack and its own fields, masked', () => {
    const error = Object.assign(new Error('charge failed for jane@example.com with 4111 1111 1111 1111'), {
      code: 'E_CHARGE',
      phone: '+44 7700 900123',
    });
    const out = maskObject({ err: error }, options) as { err: Record<string, unknown> };
    expect(out.err.name).toBe('Error');
    expect(out.err.message).toBe('charge failed for j***@example.com with **** **** **** 1111');
    expect(String(out.err.stack)).toContain('charge failed for j***@example.com');
    expect(String(out.err.stack)).not.toContain('4111 1111');
    expect(out.err.code).toBe('E_CHARGE');
    expect(out.err.phone).toBe('***23');
  });

  it('uses toJSON like JSON.stringify (dates become ISO strings)', () => {
    const at = new Date('2026-01-02T03:04:05.000Z');
    expect(maskObject({ at })).toEqual({ at: '2026-01-02T03:04:05.000Z' });
  });
});

describe('masking on hostile input (ReDoS)', () => {
  const n = 50_000;
  const masker = createPiiMasker({ fields: ['phone', 'address'], emails: true });
  it.each([
    ['digit groups', `{"msg":"${'1234 '.repeat(n / 5)}"}`],
    ['dashed digits', `{"msg":"${'1-'.repeat(n)}"}`],
    ['local parts', `{"msg":"${'a.'.repeat(n)}@"}`],
    ['domains', `{"msg":"a@${'b.'.repeat(n)}"}`],
    ['field values', `{"phone":"${'\\\\'.repeat(n)}`],
  ])(
    'stays linear on %s',
    (_name, line) => {
      expect(typeof masker(line)).toBe('string');
    },
    10_000,
  );
});

describe('card masking leaves timestamps and JSON numbers alone', () => {
  it('keeps every epoch-millisecond time and numeric field intact, Luhn-valid or not', () => {
    const masker = createPiiMasker();
    for (let i = 0; i < 2000; i += 1) {
      const time = 1_795_333_514_877 + i * 7919;
      const line = `{"level":30,"time":${time},"id":${4_111_111_111_111_111 + i},"msg":"at ${time}"}`;
      expect(masker(line)).toBe(line);
    }
    // A card in text is still masked.
    expect(masker('{"msg":"card 4111111111111111"}')).toBe('{"msg":"card **** **** **** 1111"}');
  });
});
