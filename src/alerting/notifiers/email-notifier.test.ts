import { type AddressInfo, createServer as createNetServer, type Server as NetServer } from 'node:net';
import { SMTPServer, type SMTPServerSession } from 'smtp-server';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sampleAlert, sampleNotification } from '../../../test/support/notifier-fixtures.ts';
import { DeliveryError } from '../types.ts';
import { EmailNotifier } from './email-notifier.ts';

const USER = 'alerts@example.com';
const PASSWORD = 'p@ss-SMTP-secret';

interface Delivered {
  from: string;
  to: string[];
  raw: string;
}

const delivered: Delivered[] = [];
const logins: Array<{ username: string | null | undefined; password: string | null | undefined }> = [];

// Codes by recipient, so each case drives the server: refuse at RCPT TO or after DATA, with 4xx or 5xx.
const replyError = (message: string, responseCode: number) =>
  Object.assign(new Error(message), { responseCode });
const server = new SMTPServer({
  disabledCommands: ['STARTTLS'], // plain SMTP on loopback: no certificate to trust in tests
  allowInsecureAuth: true,
  onAuth(auth, _session, callback) {
    logins.push({ username: auth.username, password: auth.password });
    if (auth.username === USER && auth.password === PASSWORD) callback(null, { user: USER });
    else callback(replyError('Authentication credentials invalid', 535));
  },
  onRcptTo(address, _session, callback) {
    if (address.address.startsWith('refused@')) callback(replyError('No such user', 550));
    else if (address.address.startsWith('busy@')) callback(replyError('Mailbox busy, try later', 450));
    else callback();
  },
  onData(stream, session: SMTPServerSession, callback) {
    const chunks: Buffer[] = [];
    stream.on('data', (chunk: Buffer) => chunks.push(chunk));
    stream.on('end', () => {
      const to = session.envelope.rcptTo.map((address) => address.address);
      if (to.some((address) => address.startsWith('later@')))
        return callback(replyError('Try again later', 451));
      if (to.some((address) => address.startsWith('spam@')))
        return callback(replyError('Message refused', 554));
      const from = session.envelope.mailFrom === false ? '' : session.envelope.mailFrom.address;
      delivered.push({ from, to, raw: Buffer.concat(chunks).toString('utf8') });
      callback();
    });
  },
});
let smtpUrl = '';
let silent: NetServer;
let silentPort = 0;

beforeAll(async () => {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.server.address() as AddressInfo;
  smtpUrl = `smtp://${encodeURIComponent(USER)}:${encodeURIComponent(PASSWORD)}@127.0.0.1:${port}`;
  // Accepts connections and never greets: the notifier must give up on its own.
  silent = createNetServer(() => {});
  await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
  silentPort = (silent.address() as AddressInfo).port;
});
afterAll(async () => {
  await new Promise<void>((resolve) => server.close(() => resolve()));
  await new Promise<void>((resolve) => silent.close(() => resolve()));
});

interface Part {
  headers: Record<string, string>;
  body: string;
}

/** Splits a message into headers (unfolded, lower-case names) and a decoded body (tests only). */
function parsePart(raw: string): Part {
  const split = raw.indexOf('\r\n\r\n');
  const head = raw.slice(0, split).replace(/\r\n[ \t]+/g, ' ');
  const headers: Record<string, string> = {};
  for (const line of head.split('\r\n')) {
    const colon = line.indexOf(':');
    headers[line.slice(0, colon).toLowerCase()] = line.slice(colon + 1).trim();
  }
  const body = raw.slice(split + 4);
  const encoding = headers['content-transfer-encoding']?.toLowerCase();
  if (encoding === 'base64') return { headers, body: Buffer.from(body, 'base64').toString('utf8') };
  if (encoding === 'quoted-printable') {
    const bytes = body
      .replace(/=\r\n/g, '')
      .replace(/%/g, '%25')
      .replace(/=([0-9A-F]{2})/gi, '%$1');
    return { headers, body: decodeURIComponent(bytes) };
  }
  return { headers, body };
}

/** The message's headers and its text and HTML parts (multipart/alternative). */
function parseMessage(raw: string): { headers: Record<string, string>; text: string; html: string } {
  const message = parsePart(raw);
  const boundary = /boundary="?([^";]+)"?/.exec(message.headers['content-type'] ?? '')?.[1];
  expect(message.headers['content-type']).toMatch(/^multipart\/alternative/);
  const parts = message.body
    .split(`--${boundary}`)
    .slice(1, -1)
    .map((part) => parsePart(part.replace(/^\r\n/, '')));
  const byType = (type: string) =>
    parts.find((part) => part.headers['content-type']?.startsWith(type))?.body ?? '';
  return { headers: message.headers, text: byType('text/plain'), html: byType('text/html') };
}

async function failure(notifier: EmailNotifier): Promise<DeliveryError> {
  const error = await notifier.send(sampleNotification()).then(
    () => null,
    (reason: unknown) => reason,
  );
  expect(error).toBeInstanceOf(DeliveryError);
  expect((error as DeliveryError).message).not.toContain(PASSWORD);
  return error as DeliveryError;
}

describe('EmailNotifier', () => {
  it('sends a text and an escaped HTML part to every recipient, logging in with the URL credentials', async () => {
    const notifier = new EmailNotifier({ smtpUrl, to: ['ops@example.com', 'oncall@example.com'] });
    const hostile = sampleAlert({
      labels: { owner: '<img src=x onerror=alert(1)>' },
      annotations: { summary: '<script>alert("x")</script> & more', runbook: "it's <b>bold</b>" },
    });
    await notifier.send(
      sampleNotification({ alerts: [hostile], url: 'https://console.example.com/a?x=1&y="2"' }),
    );

    expect(logins.at(-1)).toEqual({ username: USER, password: PASSWORD });
    const message = delivered.at(-1);
    expect(message?.from).toBe(USER);
    expect(message?.to).toEqual(['ops@example.com', 'oncall@example.com']);
    const { headers, text, html } = parseMessage(message?.raw ?? '');
    expect(headers.subject).toBe('[FIRING:critical] High CPU');
    expect(headers.to).toBe('ops@example.com, oncall@example.com');
    expect(headers.from).toBe('Bastion <alerts@example.com>');
    expect(headers['x-bastion-idempotency-key']).toBe('abcdef0123456789:digest:first');

    expect(text).toContain('[FIRING:critical] High CPU');
    expect(text).toContain('- High CPU (firing, critical): <script>alert("x")</script> & more');
    expect(text).toContain('value: 97.5');
    expect(text).toContain('labels: owner=<img src=x onerror=alert(1)>');
    expect(text).toContain("runbook: it's <b>bold</b>");

    expect(html).toContain('&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; more');
    expect(html).toContain('owner=&lt;img src=x onerror=alert(1)&gt;');
    expect(html).toContain('<a href="https://console.example.com/a?x=1&amp;y=%222%22">Open in Bastion</a>');
    expect(html).not.toMatch(/<script|<img|<b>/);
  });

  it('marks a test in the subject and uses the configured sender', async () => {
    const notifier = new EmailNotifier({
      smtpUrl,
      to: ['ops@example.com'],
      from: 'Alerts <noreply@example.com>',
    });
    await notifier.send(sampleNotification({ test: true, title: 'Line one\r\nBcc: victim@example.com' }));
    const { headers } = parseMessage(delivered.at(-1)?.raw ?? '');
    expect(headers.subject).toBe('[TEST] Line one Bcc: victim@example.com');
    expect(headers.bcc).toBeUndefined();
    expect(headers.from).toBe('Alerts <noreply@example.com>');
  });

  it('treats SMTP 4xx replies as retryable and 5xx replies as permanent', async () => {
    const to = (address: string) => new EmailNotifier({ smtpUrl, to: [address] });
    expect((await failure(to('busy@example.com'))).retryable).toBe(true);
    expect((await failure(to('refused@example.com'))).retryable).toBe(false);
    expect((await failure(to('later@example.com'))).retryable).toBe(true);
    expect((await failure(to('spam@example.com'))).retryable).toBe(false);
  });

  it('treats failed login as permanent, and refused or silent servers as retryable', async () => {
    const wrongPassword = smtpUrl.replace(encodeURIComponent(PASSWORD), 'wrong');
    expect(
      (await failure(new EmailNotifier({ smtpUrl: wrongPassword, to: ['ops@example.com'] }))).retryable,
    ).toBe(false);
    const closed = createNetServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const closedPort = (closed.address() as AddressInfo).port;
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    const refused = new EmailNotifier({ smtpUrl: `smtp://127.0.0.1:${closedPort}`, to: ['ops@example.com'] });
    expect((await failure(refused)).retryable).toBe(true);
    const hanging = new EmailNotifier({
      smtpUrl: `smtp://127.0.0.1:${silentPort}`,
      to: ['ops@example.com'],
      timeoutMs: 300,
    });
    expect((await failure(hanging)).retryable).toBe(true);
  });

  it("stops when the caller's signal aborts, rejecting with its reason", async () => {
    const hanging = new EmailNotifier({ smtpUrl: `smtp://127.0.0.1:${silentPort}`, to: ['ops@example.com'] });
    const controller = new AbortController();
    const reason = new Error('shutting down');
    setTimeout(() => controller.abort(reason), 50);
    await expect(hanging.send(sampleNotification(), { signal: controller.signal })).rejects.toBe(reason);
  });

  it('describes the server and recipients, never the credentials', () => {
    const notifier = new EmailNotifier({ smtpUrl: `${smtpUrl}?pool=false`, to: ['ops@example.com'] });
    const described = notifier.describe();
    expect(described).toEqual({
      server: expect.stringMatching(/^smtp:\/\/127\.0\.0\.1:\d+$/),
      to: ['ops@example.com'],
      from: 'Bastion <alerts@example.com>',
    });
    expect(JSON.stringify(described)).not.toContain(PASSWORD);
  });
});
