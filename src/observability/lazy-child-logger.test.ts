import { Writable } from 'node:stream';
import { pino } from 'pino';
import { describe, expect, it, vi } from 'vitest';
import { LazyChildLogger } from './lazy-child-logger.ts';

function capture() {
  const lines: Array<Record<string, unknown>> = [];
  const stream = new Writable({
    write(chunk, _encoding, done) {
      lines.push(JSON.parse(String(chunk)) as Record<string, unknown>);
      done();
    },
  });
  return { logger: pino({ level: 'info' }, stream), lines };
}

describe('LazyChildLogger', () => {
  it('builds the child on the first log call only, with its bindings, and passes every form through', () => {
    const { logger, lines } = capture();
    const child = vi.spyOn(logger, 'child');
    const lazy = new LazyChildLogger(logger, { request_id: 'r-1' }, {});
    expect(lazy.level).toBe('info');
    expect(child).not.toHaveBeenCalled();
    lazy.info({ event: 'x' }, 'with %s', 'format');
    lazy.warn('plain');
    lazy.debug('below the level');
    lazy.error(new Error('boom'));
    expect(child).toHaveBeenCalledTimes(1);
    expect(lines).toHaveLength(3);
    expect(lines[0]).toMatchObject({ request_id: 'r-1', event: 'x', msg: 'with format', level: 30 });
    expect(lines[1]).toMatchObject({ request_id: 'r-1', msg: 'plain', level: 40 });
    expect(lines[2]).toMatchObject({ request_id: 'r-1', level: 50, err: { message: 'boom' } });
  });

  it('gives children of its own the request binding, and follows level changes', () => {
    const { logger, lines } = capture();
    const lazy = new LazyChildLogger(logger, { request_id: 'r-2' }, {});
    lazy.child({ component: 'ws' }).info('nested');
    expect(lines[0]).toMatchObject({ request_id: 'r-2', component: 'ws', msg: 'nested' });
    lazy.level = 'debug';
    lazy.debug('now shown');
    expect(lines.at(-1)).toMatchObject({ msg: 'now shown', level: 20 });
    expect(logger.level).toBe('info');
  });
});
