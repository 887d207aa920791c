import { afterAll, afterEach, describe, expect, it } from 'vitest';
import {
  type Receiver,
  sampleAlert,
  sampleNotification,
  startReceiver,
} from '../../../test/support/notifier-fixtures.ts';
import { OutboundClient } from '../../resilience/outbound-client.ts';
import { DeliveryError } from '../types.ts';
import { SlackNotifier } from './slack-notifier.ts';

const transport = new OutboundClient({ timeoutMs: 2000, allowPrivateNetworks: true });
const PATH = '/services/T0000SECRET/B0000SECRET/XXXXSLACKSECRETXXXX';
let target: Receiver | null = null;

afterEach(async () => {
  await target?.close();
  target = null;
});
afterAll(() => transport.close());

async function slack(answer: Parameters<typeof startReceiver>[0]) {
  target = await startReceiver(answer);
  return new SlackNotifier({ url: `${target.url}${PATH}`, transport });
}

describe('SlackNotifier', () => {
  it('posts an incoming-webhook message: header, severity and status, each alert, a link', async () => {
    const notifier = await slack((_request, response) => response.end('ok'));
    const notification = sampleNotification({
      alerts: [
        sampleAlert({
          labels: { group: 'system.cpu', owner: '<!channel>' },
          annotations: { summary: 'CPU <b>high</b> & rising' },
        }),
        sampleAlert({ rule: 'High memory', status: 'resolved', value: 0.123456, annotations: {} }),
      ],
    });
    await notifier.send(notification);

    const request = target?.received[0];
    expect(request?.method).toBe('POST');
    expect(request?.url).toBe(PATH);
    expect(request?.headers['content-type']).toBe('application/json');
    const message = JSON.parse(request?.body ?? '');
    expect(message).toEqual({
      text: '[FIRING:critical] High CPU',
      blocks: [
        { type: 'header', text: { type: 'plain_text', text: '[FIRING:critical] High CPU', emoji: true } },
        {
          type: 'section',
          fields: [
            { type: 'mrkdwn', text: '*Severity*\n:rotating_light: critical' },
            { type: 'mrkdwn', text: '*Status*\nfiring' },
          ],
        },
        {
          type: 'section',
          text: {
            type: 'mrkdwn',
            text:
              '*High CPU* (firing, critical)\nCPU &lt;b&gt;high&lt;/b&gt; &amp; rising\nValue: `97.5`\n' +
              'Labels: group=system.cpu, owner=&lt;!channel&gt;',
          },
        },
        {
          type: 'section',
          text: {
            type: 'mrkdwn',
            text: '*High memory* (resolved, critical)\nHigh memory\nValue: `0.1235`\nLabels: alertname=High CPU, group=system.cpu, severity=critical',
          },
        },
        {
          type: 'actions',
          elements: [
            {
              type: 'button',
              text: { type: 'plain_text', text: 'Open in Bastion' },
              url: 'https://console.example.com/alerts',
            },
          ],
        },
      ],
    });
  });

  it('marks tests, shows resolution, and leaves the link out when there is no console URL', async () => {
    const notifier = await slack((_request, response) => response.end('ok'));
    await notifier.send(sampleNotification({ status: 'resolved', url: null, test: true }));
    const message = JSON.parse(target?.received[0]?.body ?? '') as {
      text: string;
      blocks: Array<{ type: string }>;
    };
    expect(message.text).toBe('[TEST] [FIRING:critical] High CPU');
    expect(JSON.stringify(message.blocks[1])).toContain(':white_check_mark:');
    expect(message.blocks.map((block) => block.type)).not.toContain('actions');
  });

  it('treats a 200 without "ok" as permanent, 500 as retryable, 400 as permanent, never naming the path', async () => {
    target = await startReceiver((request, response) => {
      const status = Number(request.url.slice(-3));
      response.writeHead(status).end(status === 200 ? 'maybe' : 'invalid_payload');
    });
    const outcome = async (status: number) => {
      const notifier = new SlackNotifier({ url: `${target?.url}${PATH}/${status}`, transport });
      const error = await notifier.send(sampleNotification()).then(
        () => null,
        (reason: unknown) => reason,
      );
      expect(error).toBeInstanceOf(DeliveryError);
      expect((error as DeliveryError).message).not.toContain('SECRET');
      return (error as DeliveryError).retryable;
    };
    expect(await outcome(200)).toBe(false);
    expect(await outcome(500)).toBe(true);
    expect(await outcome(400)).toBe(false);
  });

  it('describes itself as https://hooks.slack.com/… (the path is the secret)', () => {
    const notifier = new SlackNotifier({ url: `https://hooks.slack.com${PATH}`, transport });
    expect(notifier.describe()).toEqual({ url: 'https://hooks.slack.com/…' });
  });
});
