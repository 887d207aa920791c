import { Writable } from 'node:stream';
import pino from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { sampleNotification, startReceiver } from '../../../test/support/notifier-fixtures.ts';
import { loadConfig } from '../../config/load-config.ts';
import { OutboundClient } from '../../resilience/outbound-client.ts';
import { createNotifiers } from './create-notifiers.ts';
import { verifyWebhookSignature } from './webhook-notifier.ts';

const transport = new OutboundClient({ timeoutMs: 2000, allowPrivateNetworks: true });
afterAll(() => transport.close());

const SECRETS = {
  webhook: 'whsec-env-SECRET-0123456789abcdef',
  namedWebhook: 'whsec-named-SECRET-fedcba9876543210',
  slackPath: '/services/T0SECRET/B0SECRET/SLACKSECRETSLACKSECRET',
  smtpPassword: 'smtp-SECRET-password',
  pushoverToken: 'azGDORePK8gMaC0QOYAMyEEuzSECRET',
  pushoverUser: 'uQiRzpo4DXghDmr9QzzfQu27SECRET',
  hookQuery: 'querySECRETtoken',
};

function logger() {
  const lines: Array<Record<string, unknown>> = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      lines.push(JSON.parse(chunk.toString('utf8')) as Record<string, unknown>);
      callback();
    },
  });
  return { lines, logger: pino({ level: 'info' }, stream) };
}

/** A real configuration from environment variables and named channels (as the config file has them). */
function config(env: Record<string, string>, channels: unknown[] = []) {
  return loadConfig({ env, file: null, overrides: { 'alerts.channels': channels } });
}

const FULL_ENV = {
  SMTP_URL: `smtps://alerts%40example.com:${SECRETS.smtpPassword}@smtp.example.com:465`,
  ALERT_EMAIL_TO: 'ops@example.com, "On call" <oncall@example.com>',
  SLACK_WEBHOOK_URL: `https://hooks.slack.com${SECRETS.slackPath}`,
  ALERT_WEBHOOK_URL: `https://receiver.example.com/hooks/bastion?token=${SECRETS.hookQuery}`,
  ALERT_WEBHOOK_SECRET: SECRETS.webhook,
  PUSHOVER_TOKEN: SECRETS.pushoverToken,
  PUSHOVER_USER: SECRETS.pushoverUser,
};

describe('createNotifiers', () => {
  it('builds one channel per configured kind from the environment, plus log, plus named channels', async () => {
    const notifiers = createNotifiers(
      await config(FULL_ENV, [
        { name: 'ops-hook', kind: 'webhook', url: 'https://ops.example.com/alerts/in' },
        {
          name: 'ops-hook-signed',
          kind: 'webhook',
          url: 'https://ops.example.com/alerts/x',
          secret: SECRETS.namedWebhook,
        },
        {
          name: 'security-mail',
          kind: 'email',
          to: ['security@example.com'],
          from: 'Bastion <b@example.com>',
        },
        { name: 'pager', kind: 'pushover', user: 'other-user-key' },
        { name: 'audit-log', kind: 'log' },
      ]),
      { ...logger(), transport },
    );
    expect(notifiers.map((notifier) => [notifier.name, notifier.kind])).toEqual([
      ['email', 'email'],
      ['slack', 'slack'],
      ['webhook', 'webhook'],
      ['pushover', 'pushover'],
      ['log', 'log'],
      ['ops-hook', 'webhook'],
      ['ops-hook-signed', 'webhook'],
      ['security-mail', 'email'],
      ['pager', 'pushover'],
      ['audit-log', 'log'],
    ]);
    const described = Object.fromEntries(notifiers.map((notifier) => [notifier.name, notifier.describe()]));
    expect(described).toEqual({
      email: {
        server: 'smtps://smtp.example.com:465',
        to: ['ops@example.com', 'oncall@example.com'],
        from: 'Bastion <alerts@example.com>',
      },
      slack: { url: 'https://hooks.slack.com/…' },
      webhook: { url: 'https://receiver.example.com/hooks/…', signed: true },
      pushover: { url: 'https://api.pushover.net/1/…' },
      log: {},
      // A named webhook without a secret is signed with ALERT_WEBHOOK_SECRET.
      'ops-hook': { url: 'https://ops.example.com/alerts/…', signed: true },
      'ops-hook-signed': { url: 'https://ops.example.com/alerts/…', signed: true },
      // A named e-mail channel without smtpUrl uses SMTP_URL.
      'security-mail': {
        server: 'smtps://smtp.example.com:465',
        to: ['security@example.com'],
        from: 'Bastion <b@example.com>',
      },
      pager: { url: 'https://api.pushover.net/1/…' },
      'audit-log': {},
    });
    const text = JSON.stringify(described);
    for (const secret of Object.values(SECRETS)) expect(text).not.toContain(secret);
    expect(text).not.toContain('T0SECRET');
  });

  it('builds only log when nothing is configured, and says so when settings are partial', async () => {
    const { lines, logger: log } = logger();
    expect(createNotifiers(await config({}), { logger: log, transport }).map((n) => n.name)).toEqual(['log']);
    expect(lines).toEqual([]);
    const partial = await config({
      ALERT_EMAIL_TO: 'ops@example.com',
      PUSHOVER_TOKEN: SECRETS.pushoverToken,
    });
    expect(createNotifiers(partial, { logger: log, transport }).map((n) => n.name)).toEqual(['log']);
    expect(lines.map((line) => line.msg)).toEqual([
      'ALERT_EMAIL_TO set without SMTP_URL: no email alert channel from the environment',
      'PUSHOVER_TOKEN set without PUSHOVER_USER: no pushover alert channel from the environment',
    ]);
    expect(JSON.stringify(lines)).not.toContain(SECRETS.pushoverToken);
  });

  it('refuses, all at once, channels that lack what they need, bad URLs and reused names', async () => {
    const broken = await config(
      { ALERT_WEBHOOK_URL: 'ftp://receiver.example.com/in', SMTP_URL: 'http://smtp.example.com' },
      [
        { name: 'hook', kind: 'webhook' },
        { name: 'chat', kind: 'slack' },
        { name: 'mail', kind: 'email', to: ['ops@example.com'] },
        { name: 'mail-nobody', kind: 'email', smtpUrl: 'smtp://smtp.example.com' },
        { name: 'mail-bad', kind: 'email', smtpUrl: 'smtp://smtp.example.com', to: ['not-an-address'] },
        { name: 'push', kind: 'pushover', token: 'only-a-token' },
        { name: 'creds', kind: 'webhook', url: 'https://user:pw@receiver.example.com/' },
        { name: 'junk', kind: 'slack', url: 'not a url' },
        { name: 'log', kind: 'log' },
        { name: 'twice', kind: 'log' },
        { name: 'twice', kind: 'log' },
      ],
    );
    let message = '';
    try {
      createNotifiers(broken, { ...logger(), transport });
    } catch (error) {
      expect(error).toBeInstanceOf(TypeError);
      message = (error as Error).message;
    }
    expect(message.split('\n')).toEqual([
      'Alert channels refused:',
      '- alert channel "webhook" (webhook): ALERT_WEBHOOK_URL must be an http(s) URL, not ftp:',
      '- alert channel "hook" (webhook): url is missing',
      '- alert channel "chat" (slack): url is missing',
      '- alert channel "mail" (email): smtpUrl must be an smtp:// or smtps:// URL, not http:',
      '- alert channel "mail-nobody" (email): to is missing (no recipients)',
      '- alert channel "mail-bad" (email): to has invalid addresses: not-an-address',
      '- alert channel "push" (pushover): user is missing',
      '- alert channel "creds" (webhook): url must not contain credentials',
      '- alert channel "junk" (slack): url is not a valid URL',
      '- alert channel "log" is defined twice (channel names must be unique)',
      '- alert channel "twice" is defined twice (channel names must be unique)',
    ]);
  });

  it('delivers through a channel it built: the environment webhook, signed with ALERT_WEBHOOK_SECRET', async () => {
    const receiver = await startReceiver();
    try {
      const [webhook] = createNotifiers(
        await config({ ALERT_WEBHOOK_URL: `${receiver.url}/in`, ALERT_WEBHOOK_SECRET: SECRETS.webhook }),
        { ...logger(), transport },
      );
      await webhook?.send(sampleNotification());
      const request = receiver.received[0];
      const header = String(request?.headers['x-bastion-signature']);
      expect(verifyWebhookSignature(header, request?.body ?? '', SECRETS.webhook)).toBe(true);
    } finally {
      await receiver.close();
    }
  });
});
