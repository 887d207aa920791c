import { randomBytes } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { luhnValid } from '../src/data-protection/pii-masking.ts';
import { startTestApp, type TestApp } from './support/app.ts';

let current: TestApp | undefined;
afterEach(async () => {
  await current?.close();
  current = undefined;
});

const digits = (count: number) => Array.from(randomBytes(count), (byte) => String(byte % 10)).join('');

/** A random Luhn-valid Visa-like number, so the test cannot pass by matching a fixed string. */
function randomCard(): string {
  const prefix = `4${digits(14)}`;
  for (let check = 0; check <= 9; check += 1) if (luhnValid(`${prefix}${check}`)) return `${prefix}${check}`;
  throw new Error('unreachable');
}

describe('PII never reaches the logs in full', () => {
  it('masks e-mails, card numbers and configured fields in logged objects and error reports', async () => {
    const local = `jane.${randomBytes(6).toString('hex')}`;
    const email = `${local}@example.com`;
    const phone = `+44 7700 ${digits(6)}`;
    const card = randomCard();
    const spacedCard = card.replace(/(\d{4})(?=\d)/g, '$1 ');
    const errorEmail = `ops.${randomBytes(6).toString('hex')}@corp.example.org`;
    const errorCard = randomCard();
    const dashedErrorCard = errorCard.replace(/(\d{4})(?=\d)/g, '$1-');

    current = await startTestApp({
      env: { BASTION_MASK_FIELDS: 'phone' },
      routes: (app) => {
        app.post('/customers', { config: { auth: 'public' } }, async (request) => {
          request.log.info({ customer: { email, phone, card: spacedCard } }, 'customer');
          return { ok: true };
        });
        app.get('/charge', { config: { auth: 'public' } }, async () => {
          throw new Error(`charge failed for ${errorEmail} with card ${dashedErrorCard}`);
        });
      },
    });
    const { app, logs, config } = current;
    expect(config.privacy).toEqual({ maskFields: ['phone'], maskEmails: true });

    expect((await app.inject({ method: 'POST', url: '/customers', payload: {} })).statusCode).toBe(200);
    const failed = await app.inject({ url: '/charge' });
    expect(failed.statusCode).toBe(500);
    expect(failed.body).not.toContain(errorEmail);

    // Nothing identifying is anywhere in the output, in any spelling.
    const text = logs.text;
    const planted = [email, local, phone, phone.slice(-6), card, spacedCard, card.slice(0, 12)];
    planted.push(errorEmail, errorEmail.split('@')[0]!, errorCard, dashedErrorCard, errorCard.slice(0, 12));
    expect(planted.filter((value) => text.includes(value))).toEqual([]);

    // The lines are there with the masked forms (the test is not vacuous).
    const lines = logs.lines;
    const customer = lines.find((line) => line.msg === 'customer') as { customer: Record<string, string> };
    expect(customer.customer).toEqual({
      email: 'j***@example.com',
      phone: `***${phone.slice(-2)}`,
      card: `**** **** **** ${card.slice(-4)}`,
    });
    const failure = lines.find((line) => line.msg === 'request failed') as {
      err: { message: string; stack: string };
    };
    const masked = `charge failed for o***@corp.example.org with card **** **** **** ${errorCard.slice(-4)}`;
    expect(failure.err.message).toBe(masked);
    expect(failure.err.stack).toContain(masked);
    expect(lines.filter((line) => line.msg === 'request completed')).toHaveLength(2);
  });

  it('leaves e-mails readable when privacy.maskEmails is off, still masking cards', async () => {
    const card = randomCard();
    current = await startTestApp({
      configure: (config) => {
        config.privacy.maskEmails = false;
      },
      routes: (app) => {
        app.get('/note', { config: { auth: 'public' } }, async (request) => {
          request.log.info({ contact: 'ops@example.com', card }, 'note');
          return { ok: true };
        });
      },
    });
    await current.app.inject({ url: '/note' });
    const note = current.logs.lines.find((line) => line.msg === 'note');
    expect(note).toMatchObject({ contact: 'ops@example.com', card: `**** **** **** ${card.slice(-4)}` });
    expect(current.logs.text).not.toContain(card);
  });
});
