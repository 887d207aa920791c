import type { LightMyRequestResponse } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from './support/app.ts';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

/** Holds the event loop for `ms` without yielding (a synchronous busy loop). */
function blockEventLoop(ms: number): void {
  const end = performance.now() + ms;
  while (performance.now() < end) {
    // spin
  }
}

const tick = (ms = 0) => new Promise((resolve) => setTimeout(resolve, ms));

let t: TestApp;
let workCalls = 0;

beforeAll(async () => {
  t = await startTestApp({
    env: { BASTION_MAX_EVENT_LOOP_DELAY_MS: '20' },
    // The sample interval has no environment variable; a short one keeps the test quick.
    configure: (config) => {
      config.loadShedding.sampleIntervalMs = 25;
    },
    routes: (app) => {
      app.get('/work', { config: { auth: 'public' } }, async () => {
        workCalls += 1;
        return { done: true };
      });
    },
  });
});

afterAll(async () => {
  await t?.close();
});

/** Polls (bounded) until `/work` answers `status`. */
async function waitForWork(status: number): Promise<LightMyRequestResponse> {
  let res = await t.app.inject({ method: 'GET', url: '/work' });
  for (let attempt = 0; attempt < 200 && res.statusCode !== status; attempt += 1) {
    await tick(10);
    res = await t.app.inject({ method: 'GET', url: '/work' });
  }
  return res;
}

describe('load shedding on event-loop delay', () => {
  it('uses the configured threshold and sample interval', () => {
    expect(t.config.loadShedding).toMatchObject({
      enabled: true,
      maxEventLoopDelayMs: 20,
      sampleIntervalMs: 25,
    });
  });

  it('serves normally while the loop is free', async () => {
    const res = await waitForWork(200);
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ done: true });
  });

  it('sheds ordinary requests with 503 service_overloaded while liveness still answers', async () => {
    let work: LightMyRequestResponse | undefined;
    let live: LightMyRequestResponse | undefined;
    const before = t.logs.raw.length;
    const callsBefore = workCalls;
    for (let attempt = 0; attempt < 10 && work?.statusCode !== 503; attempt += 1) {
      blockEventLoop(300);
      // Let the overdue sampler run, then send both requests under the same reading.
      await tick(0);
      [work, live] = await Promise.all([
        t.app.inject({ method: 'GET', url: '/work', headers: { 'x-request-id': `shed-${attempt}` } }),
        t.app.inject({ method: 'GET', url: '/health/live' }),
      ]);
    }
    expect(work?.statusCode).toBe(503);
    const id = work?.headers['x-request-id'];
    expect(id).toMatch(/^shed-\d+$/);
    expect(work?.headers['retry-after']).toBe(String(t.config.loadShedding.retryAfterSeconds));
    expect(work?.headers['content-type']).toMatch(/^application\/json/);
    expect(work?.json()).toEqual({
      error: 'service_overloaded',
      message: 'The service is overloaded; retry later',
      request_id: id,
    });

    expect(live?.statusCode).toBe(200);
    expect(live?.body).toBe('{"status":"pass"}');
    expect(live?.headers['x-request-id']).toMatch(UUID);

    // The shed request never reached its handler (only the earlier non-shed attempts did).
    const shedAttempts = Number(String(id).slice('shed-'.length));
    expect(workCalls - callsBefore).toBe(shedAttempts);

    await tick(0);
    const lines = t.logs.lines.slice(before).filter((line) => line.request_id === id);
    expect(lines.find((line) => line.event === 'load_shed')).toMatchObject({
      level: 40,
      type: 'eventLoopDelay',
    });
    expect(lines.find((line) => line.msg === 'request completed')).toMatchObject({
      status: 503,
      route: '/work',
    });
  });

  it('recovers by itself once the loop is free again', async () => {
    const res = await waitForWork(200);
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ done: true });
  });
});

describe('load shedding disabled', () => {
  let off: TestApp;
  beforeAll(async () => {
    off = await startTestApp({
      env: { BASTION_MAX_EVENT_LOOP_DELAY_MS: '1' },
      configure: (config) => {
        config.loadShedding.enabled = false;
        config.loadShedding.sampleIntervalMs = 10;
      },
      routes: (app) => {
        app.get('/work', { config: { auth: 'public' } }, async () => ({ done: true }));
      },
    });
  });
  afterAll(async () => {
    await off?.close();
  });

  it('never sheds, however blocked the loop was', async () => {
    for (let attempt = 0; attempt < 3; attempt += 1) {
      blockEventLoop(100);
      await tick(0);
      const res = await off.app.inject({ method: 'GET', url: '/work' });
      expect(res.statusCode).toBe(200);
    }
  });
});
