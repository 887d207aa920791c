import { request as httpRequest } from 'node:http';
import { describe, expect, it } from 'vitest';
import { startTestApp } from './support/app.ts';

/** Sends a request and destroys the socket once the server has it. */
function abandon(port: number, path: string): Promise<void> {
  return new Promise((resolve) => {
    const req = httpRequest({ host: '127.0.0.1', port, path, method: 'GET' });
    req.on('error', () => resolve());
    req.on('close', () => resolve());
    req.end();
    setTimeout(() => req.destroy(), 50);
  });
}

describe('requests the client abandons', () => {
  it('are logged once with status 499 and leave the in-flight gauge at zero', async () => {
    let release: () => void = () => {};
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    const t = await startTestApp({
      routes: (app) => {
        app.get('/slow', { config: { auth: 'public' } }, async () => {
          await gate;
          return { done: true };
        });
      },
    });
    try {
      await t.app.listen({ host: '127.0.0.1', port: 0 });
      const address = t.app.server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      await Promise.all(Array.from({ length: 5 }, () => abandon(port, '/slow')));
      // Wait (bounded) until the server has seen every abort.
      for (let i = 0; i < 100 && t.logs.lines.filter((l) => l.status === 499).length < 5; i += 1) {
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      release();
      await new Promise((resolve) => setTimeout(resolve, 50));
      const aborted = t.logs.lines.filter((line) => line.msg === 'request aborted by client');
      expect(aborted).toHaveLength(5);
      expect(
        aborted.every((line) => line.status === 499 && line.route === '/slow' && line.aborted === true),
      ).toBe(true);
      // Each request is written once, even though its handler finished after the client left.
      const ids = t.logs.lines.filter((line) => line.route === '/slow').map((line) => line.request_id);
      expect(new Set(ids).size).toBe(ids.length);
      const metrics = await t.app.inject({ method: 'GET', url: '/metrics' });
      expect(metrics.body).toMatch(/^http_server_active_requests 1$/m); // the scrape itself
      expect(metrics.body).toMatch(
        /http_server_request_duration_seconds_count\{[^}]*route="\/slow",status_code="499"\} 5/,
      );
    } finally {
      await t.close();
    }
  });

  it('cannot flood the log with a long unmatched path', async () => {
    const t = await startTestApp();
    try {
      // Just under the URL limit (longer URLs are refused with 414 before routing).
      const response = await t.app.inject({ method: 'GET', url: `/token/${'a-'.repeat(2_040)}` });
      expect(response.statusCode).toBe(404);
      const line = t.logs.lines.find((entry) => entry.status === 404);
      expect(String(line?.path).length).toBeLessThanOrEqual(257);
    } finally {
      await t.close();
    }
  });
});
