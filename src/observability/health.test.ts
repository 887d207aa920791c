import { describe, expect, it } from 'vitest';
import { ManualClock } from '../core/clock.ts';
import { type CheckResult, type HealthCheck, HealthService, type HealthStatus, worst } from './health.ts';

const CACHE_MS = 2000;

function service(options: { timeoutMs?: number; cacheMs?: number; clock?: ManualClock } = {}) {
  const clock = options.clock ?? new ManualClock();
  const health = new HealthService({
    timeoutMs: options.timeoutMs ?? 1000,
    cacheMs: options.cacheMs ?? CACHE_MS,
    clock,
  });
  return { clock, health };
}

/** A check that counts its runs and returns what it is told. */
function countingCheck(
  key = 'thing:responseTime',
  result: CheckResult = { status: 'pass', observedValue: 1 },
) {
  const check = {
    key,
    componentType: 'component' as const,
    runs: 0,
    result,
    async run(): Promise<CheckResult> {
      check.runs += 1;
      return check.result;
    },
  };
  return check;
}

/** A check whose runs wait until `release()` is called. */
function gatedCheck(key: string, result: CheckResult = { status: 'pass' }) {
  let release: () => void = () => {};
  const gate = new Promise<void>((resolve) => {
    release = resolve;
  });
  const check = {
    key,
    componentType: 'datastore' as const,
    runs: 0,
    release: () => release(),
    async run(): Promise<CheckResult> {
      check.runs += 1;
      await gate;
      return result;
    },
  };
  return check;
}

describe('worst', () => {
  it.each([
    [[], 'pass'],
    [['pass'], 'pass'],
    [['pass', 'warn', 'pass'], 'warn'],
    [['warn', 'fail', 'pass'], 'fail'],
    [['fail', 'warn'], 'fail'],
  ] as Array<[HealthStatus[], HealthStatus]>)('worst(%j) is %s', (statuses, expected) => {
    expect(worst(statuses)).toBe(expected);
  });
});

describe('HealthService', () => {
  it('reports each check keyed component:measurement with the clock time', async () => {
    const { clock, health } = service();
    health.add(
      countingCheck('database:responseTime', { status: 'pass', observedValue: 3, observedUnit: 'ms' }),
    );
    health.add(
      countingCheck('disk:freeRatio', { status: 'warn', observedValue: 0.05, observedUnit: 'ratio' }),
    );
    const report = await health.report();
    expect(report.status).toBe('warn');
    expect(report.checks).toEqual({
      'database:responseTime': [
        {
          componentType: 'component',
          status: 'pass',
          observedValue: 3,
          observedUnit: 'ms',
          time: new Date(clock.now()).toISOString(),
        },
      ],
      'disk:freeRatio': [
        {
          componentType: 'component',
          status: 'warn',
          observedValue: 0.05,
          observedUnit: 'ratio',
          time: new Date(clock.now()).toISOString(),
        },
      ],
    });
  });

  it('passes with no checks', async () => {
    const { health } = service();
    expect(await health.report()).toEqual({ status: 'pass', checks: {} });
  });

  it('refuses a duplicate key', () => {
    const { health } = service();
    health.add(countingCheck('database:responseTime'));
    expect(() => health.add(countingCheck('database:responseTime'))).toThrow(/Duplicate health check/);
  });

  it('runs a check once for repeated reports within cacheMs', async () => {
    const { clock, health } = service();
    const check = countingCheck();
    health.add(check);
    const first = await health.report();
    clock.advance(CACHE_MS - 1);
    const second = await health.report();
    const third = await health.report();
    expect(check.runs).toBe(1);
    expect(second).toBe(first);
    expect(third).toBe(first);
  });

  it('runs the check again once cacheMs has passed', async () => {
    const { clock, health } = service();
    const check = countingCheck();
    health.add(check);
    await health.report();
    clock.advance(CACHE_MS - 1);
    await health.report();
    expect(check.runs).toBe(1);
    clock.advance(1);
    check.result = { status: 'fail', output: 'down' };
    const fresh = await health.report();
    expect(check.runs).toBe(2);
    expect(fresh.status).toBe('fail');
    expect(fresh.checks['thing:responseTime']?.[0]?.output).toBe('down');
    // And that fresh report is now the cached one.
    await health.report();
    expect(check.runs).toBe(2);
  });

  it('runs every time when cacheMs is 0', async () => {
    const { health } = service({ cacheMs: 0 });
    const check = countingCheck();
    health.add(check);
    await health.report();
    await health.report();
    await health.report();
    expect(check.runs).toBe(3);
  });

  it('lets concurrent callers share one run', async () => {
    const { health } = service();
    const check = gatedCheck('redis:responseTime');
    health.add(check);
    const callers = Array.from({ length: 10 }, () => health.report());
    // All ten are waiting on the same run.
    await Promise.resolve();
    expect(check.runs).toBe(1);
    check.release();
    const reports = await Promise.all(callers);
    expect(check.runs).toBe(1);
    for (const report of reports) expect(report).toBe(reports[0]);
    expect(reports[0]?.status).toBe('pass');
  });

  it('runs checks in parallel, not one after another', async () => {
    const { health } = service();
    const a = gatedCheck('a:x');
    const b = gatedCheck('b:x');
    health.add(a);
    health.add(b);
    const pending = health.report();
    await Promise.resolve();
    await Promise.resolve();
    // b started although a has not finished.
    expect(a.runs).toBe(1);
    expect(b.runs).toBe(1);
    a.release();
    b.release();
    expect((await pending).status).toBe('pass');
  });

  it('reports a hanging check as fail "timed out" after checkTimeoutMs, without waiting for it', async () => {
    const { health } = service({ timeoutMs: 25 });
    const hung: HealthCheck = {
      key: 'database:responseTime',
      componentType: 'datastore',
      run: () => new Promise<CheckResult>(() => {}),
    };
    const healthy = countingCheck('memory:heapUtilization', { status: 'pass', observedValue: 0.2 });
    health.add(hung);
    health.add(healthy);
    const report = await health.report();
    expect(report.status).toBe('fail');
    expect(report.checks['database:responseTime']?.[0]).toMatchObject({
      status: 'fail',
      output: 'timed out after 25 ms',
    });
    expect(report.checks['database:responseTime']?.[0]?.observedValue).toBeUndefined();
    expect(report.checks['memory:heapUtilization']?.[0]).toMatchObject({
      status: 'pass',
      observedValue: 0.2,
    });
  });

  it('reports a throwing check as fail with the first line of the message and no stack', async () => {
    const { health } = service();
    const error = Object.assign(
      new Error('connect ECONNREFUSED 127.0.0.1:1\n    at TCPConnectWrap.afterConnect (node:net:1555:16)'),
      { code: 'ECONNREFUSED' },
    );
    health.add({
      key: 'redis:responseTime',
      componentType: 'datastore',
      run: async () => Promise.reject(error),
    });
    const report = await health.report();
    expect(report.status).toBe('fail');
    const entry = report.checks['redis:responseTime']?.[0];
    expect(entry?.status).toBe('fail');
    expect(entry?.output).toBe('ECONNREFUSED: connect ECONNREFUSED 127.0.0.1:1');
    expect(JSON.stringify(report)).not.toContain('TCPConnectWrap');
    expect(JSON.stringify(report)).not.toContain(error.stack?.split('\n')[1]?.trim() ?? 'never');
  });

  it('bounds a long failure message to one short line', async () => {
    const { health } = service();
    health.add({
      key: 'database:responseTime',
      componentType: 'datastore',
      run: async () => {
        throw new Error(`${'x'.repeat(500)}\nsecond line`);
      },
    });
    const output = (await health.report()).checks['database:responseTime']?.[0]?.output ?? '';
    expect(output).toBe('x'.repeat(200));
    expect(output).not.toContain('\n');
  });

  it('describes a thrown non-Error value', async () => {
    const { health } = service();
    health.add({
      key: 'sharedState:responseTime',
      componentType: 'datastore',
      run: async () => {
        throw 'plain string failure';
      },
    });
    const entry = (await health.report()).checks['sharedState:responseTime']?.[0];
    expect(entry).toMatchObject({ status: 'fail', output: 'plain string failure' });
  });

  it('reports a check that throws synchronously as fail instead of failing the whole report', async () => {
    const { health } = service();
    health.add({
      key: 'disk:freeRatio',
      componentType: 'system',
      run: () => {
        throw new Error('statfs failed');
      },
    });
    health.add(countingCheck('memory:heapUtilization'));
    const report = await health.report();
    expect(report.status).toBe('fail');
    expect(report.checks['disk:freeRatio']?.[0]).toMatchObject({ status: 'fail', output: 'statfs failed' });
    expect(report.checks['memory:heapUtilization']?.[0]?.status).toBe('pass');
  });
});
