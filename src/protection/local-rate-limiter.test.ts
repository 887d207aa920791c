import { describe, expect, it } from 'vitest';
import { ManualClock } from '../core/clock.ts';
import { LocalRateLimiter } from './local-rate-limiter.ts';

describe('LocalRateLimiter', () => {
  it('admits exactly `points` requests per key in a window, then refuses until it ends', () => {
    const clock = new ManualClock();
    const limiter = new LocalRateLimiter({ points: 3, durationSeconds: 10, clock });
    const answers = Array.from({ length: 5 }, () => limiter.take('a'));
    expect(answers.map((answer) => answer.allowed)).toEqual([true, true, true, false, false]);
    expect(answers.map((answer) => answer.remaining)).toEqual([2, 1, 0, 0, 0]);
    expect(answers[0]?.msBeforeReset).toBe(10_000);

    clock.advance(4_000);
    expect(limiter.take('a')).toEqual({ allowed: false, remaining: 0, msBeforeReset: 6_000 });
    // Another key has a window of its own.
    expect(limiter.take('b')).toEqual({ allowed: true, remaining: 2, msBeforeReset: 10_000 });

    clock.advance(6_000);
    expect(limiter.take('a')).toEqual({ allowed: true, remaining: 2, msBeforeReset: 10_000 });
  });

  it('forgets ended windows, so keys that stop coming do not accumulate', () => {
    const clock = new ManualClock();
    const limiter = new LocalRateLimiter({ points: 1, durationSeconds: 1, clock });
    for (let i = 0; i < 1000; i += 1) limiter.take(`key-${i}`);
    expect(limiter.size).toBe(1000);
    clock.advance(1_000);
    limiter.take('another');
    expect(limiter.size).toBe(1);
  });

  it('with zero points refuses everything', () => {
    const limiter = new LocalRateLimiter({ points: 0, durationSeconds: 60, clock: new ManualClock() });
    expect(limiter.take('a').allowed).toBe(false);
  });

  it('refuses nonsensical rules at start-up', () => {
    const clock = new ManualClock();
    expect(() => new LocalRateLimiter({ points: -1, durationSeconds: 1, clock })).toThrow(/points/);
    expect(() => new LocalRateLimiter({ points: 1.5, durationSeconds: 1, clock })).toThrow(/points/);
    expect(() => new LocalRateLimiter({ points: 1, durationSeconds: 0, clock })).toThrow(/durationSeconds/);
  });
});
