/**
 * Time from an alert condition becoming true to the webhook receiving the notification
 * (`npm run bench:alert-latency`), with the default sample and evaluation intervals (1 s).
 *
 * A server (SQLite, memory state) gets N rules on `security.events` (sum over 5 min, `for: 0s`),
 * the k-th with threshold k−1, each routed to a signed webhook on a local receiver. Trial k sends
 * one request that attack detection blocks (the k-th security event), which makes rule k's
 * condition true at that moment; the latency is the time until the receiver has rule k's
 * notification. Prints every trial, p50 and p99, and exits 1 when p99 is over the target (2 s).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { Writable } from 'node:stream';
import { parseArgs } from 'node:util';
import { loadConfig } from '../src/config/load-config.ts';
import { createApp } from '../src/server/create-app.ts';

const TARGET_P99_MS = 2000;
const { values } = parseArgs({
  options: { trials: { type: 'string', default: '40' }, help: { type: 'boolean', default: false } },
});
if (values.help) {
  console.log('usage: npm run bench:alert-latency [-- --trials N]   (default 40)');
  process.exit(0);
}
const trials = Number(values.trials);
if (!Number.isInteger(trials) || trials < 1 || trials > 200) throw new TypeError('--trials must be 1–200');

const arrivals = new Map<string, number>();
const receiver = createServer((request, response) => {
  const chunks: Buffer[] = [];
  request.on('data', (chunk: Buffer) => chunks.push(chunk));
  request.on('end', () => {
    const at = performance.now();
    const body = JSON.parse(Buffer.concat(chunks).toString()) as { alerts: Array<{ rule: string }> };
    for (const alert of body.alerts) if (!arrivals.has(alert.rule)) arrivals.set(alert.rule, at);
    response.end();
  });
});
await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
const receiverUrl = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hook`;

const dataDir = await mkdtemp(path.join(tmpdir(), 'bastion-alert-latency-'));
const config = await loadConfig({
  file: null,
  env: {
    NODE_ENV: 'development',
    BASTION_DATA_DIR: dataDir,
    LOG_LEVEL: 'warn',
    ALERT_WEBHOOK_URL: receiverUrl,
    ALERT_WEBHOOK_SECRET: 'alert-latency-bench-secret-0123456789',
  },
});
config.alerts.defaultRules = false;
config.alerts.slo.availability = null;
config.alerts.slo.latency = null;
config.protection.threat.enabled = false;
config.protection.rateLimit.enabled = false;
const ruleName = (k: number) => `Security events above ${k - 1}`;
config.alerts.rules = Array.from({ length: trials }, (_, i) => ({
  name: ruleName(i + 1),
  series: 'security.events',
  aggregation: 'sum',
  window: '5m',
  op: '>',
  threshold: i,
  for: '0s',
  severity: 'critical',
  channels: ['webhook'],
}));
const sink = new Writable({ write: (_chunk, _encoding, done) => done() });
const app = await createApp({ config, logDestination: sink });

console.log(
  `alert latency: ${trials} trials, sample every ${config.metricHistory.sampleIntervalMs} ms, ` +
    `evaluation every ${config.alerts.evaluationIntervalMs} ms (and after each sample)`,
);
const latencies: number[] = [];
try {
  await new Promise((resolve) => setTimeout(resolve, 1500)); // the lease and a first sample
  for (let k = 1; k <= trials; k += 1) {
    const rule = ruleName(k);
    const started = performance.now();
    const response = await app.inject({ url: "/api/v1/monitoring/status?q=1'%20OR%20'1'%3D'1" });
    if (response.statusCode !== 403)
      throw new Error(`the attack was answered ${response.statusCode}, not 403`);
    while (!arrivals.has(rule)) {
      if (performance.now() - started > 10_000) throw new Error(`${rule}: no notification within 10 s`);
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    const ms = (arrivals.get(rule) as number) - started;
    latencies.push(ms);
    console.log(`  trial ${String(k).padStart(3)}: ${ms.toFixed(0).padStart(5)} ms`);
    // Start the next trial at a random point of the sampling cycle.
    await new Promise((resolve) => setTimeout(resolve, 200 + Math.random() * 800));
  }
} finally {
  await app.close();
  receiver.close();
  await rm(dataDir, { recursive: true, force: true });
}

const sorted = [...latencies].sort((a, b) => a - b);
const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)] as number;
const p99 = at(0.99);
console.log(
  `\np50 ${at(0.5).toFixed(0)} ms, p99 ${p99.toFixed(0)} ms, max ${(sorted.at(-1) as number).toFixed(0)} ms ` +
    `(target: p99 ≤ ${TARGET_P99_MS} ms)`,
);
if (p99 > TARGET_P99_MS) {
  console.log('!!! the target is not met');
  process.exitCode = 1;
}
