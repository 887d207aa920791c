import { Writable } from 'node:stream';
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { sampleAlert, sampleNotification } from '../../../test/support/notifier-fixtures.ts';
import { LogNotifier } from './log-notifier.ts';

function capture() {
  const lines: Array<Record<string, unknown>> = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      lines.push(JSON.parse(chunk.toString('utf8')) as Record<string, unknown>);
      callback();
    },
  });
  return { lines, logger: pino({ level: 'info' }, stream) };
}

describe('LogNotifier', () => {
  it('writes one warn line per firing notification and one info line per resolved one', async () => {
    const { lines, logger } = capture();
    const notifier = new LogNotifier({ logger });
    const alerts = [sampleAlert(), sampleAlert({ fingerprint: 'other', labels: { instance: 'b' } })];
    await notifier.send(sampleNotification({ alerts }));
    await notifier.send(
      sampleNotification({ status: 'resolved', severity: 'warning', idempotencyKey: 'k2' }),
    );

    expect(lines).toHaveLength(2);
    expect(lines[0]).toMatchObject({
      level: 40,
      msg: '[FIRING:critical] High CPU',
      event: 'alert_notification',
      channel: 'log',
      status: 'firing',
      severity: 'critical',
      alerts: ['High CPU'],
      alert_count: 2,
      idempotency_key: 'abcdef0123456789:digest:first',
      test: false,
    });
    expect(lines[1]).toMatchObject({
      level: 30,
      status: 'resolved',
      severity: 'warning',
      idempotency_key: 'k2',
    });
    expect(notifier.describe()).toEqual({});
  });
});
