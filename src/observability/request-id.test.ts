import { describe, expect, it } from 'vitest';
import { REQUEST_ID_PATTERN, requestIdFrom } from './request-id.ts';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

describe('requestIdFrom', () => {
  it.each([
    ['a single character', 'a'],
    ['a uuid', '0b3c9d2e-5f1a-4c7b-9e8d-1a2b3c4d5e6f'],
    ['every allowed class', 'Az09._:-'],
    ['a trace-like id', 'req:2026-01-01T00:00:00.000Z'],
    ['exactly 128 characters', 'x'.repeat(128)],
    ['128 mixed characters', `${'aZ9._:-'.repeat(18)}ab`],
  ])('keeps %s', (_name, value) => {
    expect(value.length).toBeLessThanOrEqual(128);
    expect(requestIdFrom(value)).toBe(value);
  });

  it.each([
    ['129 characters', 'x'.repeat(129)],
    ['a very long value', 'a'.repeat(100_000)],
    ['empty', ''],
    ['a space inside', 'abc def'],
    ['leading space', ' abc'],
    ['trailing space', 'abc '],
    ['a tab', 'abc\tdef'],
    ['html', '<script>alert(1)</script>'],
    ['a quote', 'abc"def'],
    ['unicode letters', 'reqé'],
    ['cjk', '日本'],
    ['an emoji', 'id-😀'],
    ['CRLF header injection', 'abc\r\nSet-Cookie: session=evil'],
    ['a bare LF', 'abc\ndef'],
    ['a NUL byte', 'abc\u0000'],
    ['percent-encoded CRLF', 'abc%0d%0aSet-Cookie:x'],
    ['a comma (joined headers)', 'a, b'],
    ['a slash', '../../etc/passwd'],
    ['a semicolon', 'a;b'],
    ['a unicode line separator', 'abc\u2028def'],
    ['a fullwidth digit', '１２３'],
  ])('replaces %s', (_name, value) => {
    const id = requestIdFrom(value);
    expect(id).not.toBe(value);
    expect(id).toMatch(UUID);
  });

  it('replaces a missing header', () => {
    expect(requestIdFrom(undefined)).toMatch(UUID);
  });

  it('replaces an array of headers, even when every element is valid', () => {
    const id = requestIdFrom(['first', 'second']);
    expect(id).toMatch(UUID);
    expect(requestIdFrom(['only'])).toMatch(UUID);
  });

  it('generates a different id each time', () => {
    const ids = new Set(Array.from({ length: 50 }, () => requestIdFrom('bad id')));
    expect(ids.size).toBe(50);
  });

  it('generates ids that the pattern itself would keep', () => {
    const id = requestIdFrom(undefined);
    expect(REQUEST_ID_PATTERN.test(id)).toBe(true);
    expect(requestIdFrom(id)).toBe(id);
  });

  it('is not fooled by a non-string that stringifies to a valid id', () => {
    const sneaky = { toString: () => 'valid-id' } as unknown as string;
    expect(requestIdFrom(sneaky)).not.toBe('valid-id');
    expect(requestIdFrom(sneaky)).toMatch(UUID);
  });
});
