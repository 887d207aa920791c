import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { BastionError, defineError, type ErrorDefinition, errorDefinitions, HttpErrors } from './errors.ts';

// Every capability declares its codes in its own `errors.ts`; load them all so the registry
// holds every definition the server can send, not only the HTTP layer's.
const srcDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

async function errorModules(dir: string): Promise<string[]> {
  const found: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) found.push(...(await errorModules(full)));
    else if (entry.name === 'errors.ts') found.push(full);
  }
  return found;
}

const modules = await errorModules(srcDir);
for (const file of modules) await import(file);
const definitions = errorDefinitions();

describe('error definitions', () => {
  it('loads the shared HTTP errors and every capability errors.ts', () => {
    expect(modules).toContain(path.join(srcDir, 'core', 'errors.ts'));
    // Every HttpErrors entry is in the registry, as the very same frozen object.
    for (const definition of Object.values(HttpErrors)) expect(definitions).toContain(definition);
    expect(definitions.length).toBeGreaterThanOrEqual(Object.keys(HttpErrors).length);
  });

  it('has unique codes', () => {
    const codes = definitions.map((definition) => definition.code);
    expect(new Set(codes).size).toBe(codes.length);
  });

  it.each(definitions.map((definition) => [definition.code, definition] as const))(
    '%s is well-formed',
    (_code, definition: ErrorDefinition) => {
      expect(definition.code).toMatch(/^BASTION_ERR_[A-Z0-9_]+$/);
      expect(Number.isInteger(definition.status)).toBe(true);
      expect(definition.status).toBeGreaterThanOrEqual(400);
      expect(definition.status).toBeLessThanOrEqual(599);
      expect(definition.error).toMatch(/^[a-z][a-z0-9]*(_[a-z0-9]+)*$/);
      expect(definition.message.trim().length).toBeGreaterThan(0);
      expect(Object.isFrozen(definition)).toBe(true);
    },
  );

  it('maps each public error identifier to a single status', () => {
    const statusByError = new Map<string, number>();
    for (const definition of definitions) {
      const seen = statusByError.get(definition.error);
      if (seen !== undefined)
        expect(`${definition.error} ${definition.status}`).toBe(`${definition.error} ${seen}`);
      statusByError.set(definition.error, definition.status);
    }
  });

  it('has the statuses the contract names', () => {
    expect(HttpErrors.malformedJson).toMatchObject({ status: 400, error: 'malformed_json' });
    expect(HttpErrors.validation).toMatchObject({ status: 400, error: 'validation_failed' });
    expect(HttpErrors.unauthorized).toMatchObject({ status: 401, error: 'unauthorized' });
    expect(HttpErrors.forbidden).toMatchObject({ status: 403, error: 'forbidden' });
    expect(HttpErrors.notFound).toMatchObject({ status: 404, error: 'not_found' });
    expect(HttpErrors.payloadTooLarge).toMatchObject({ status: 413 });
    expect(HttpErrors.unsupportedMediaType).toMatchObject({ status: 415 });
    expect(HttpErrors.tooManyRequests).toMatchObject({ status: 429 });
    expect(HttpErrors.internal).toMatchObject({ status: 500 });
    expect(HttpErrors.overloaded).toMatchObject({ status: 503, error: 'service_overloaded' });
  });
});

describe('defineError', () => {
  it('throws on a duplicate of an existing code', () => {
    expect(() => defineError('BASTION_ERR_NOT_FOUND', 404, 'not_found', 'again')).toThrow(
      /Duplicate error code BASTION_ERR_NOT_FOUND/,
    );
    // The original definition is untouched.
    expect(errorDefinitions().filter((definition) => definition.code === 'BASTION_ERR_NOT_FOUND')).toEqual([
      HttpErrors.notFound,
    ]);
  });

  it('accepts a new code once, then throws on the second definition', () => {
    const first = defineError('BASTION_ERR_TEST_ONLY_CODE', 409, 'test_only', 'first');
    expect(first).toEqual({
      code: 'BASTION_ERR_TEST_ONLY_CODE',
      status: 409,
      error: 'test_only',
      message: 'first',
    });
    expect(errorDefinitions()).toContain(first);
    expect(() => defineError('BASTION_ERR_TEST_ONLY_CODE', 400, 'other', 'second')).toThrow(/Duplicate/);
  });

  it.each([
    'NOT_FOUND',
    'bastion_err_lower',
    'BASTION_ERR_',
    'BASTION_ERR_has-dash',
    'XBASTION_ERR_X',
    'BASTION_ERR_X\n',
  ])('rejects the malformed code %j', (code) => {
    expect(() => defineError(code, 400, 'bad_code', 'x')).toThrow(/Invalid error code/);
    expect(errorDefinitions().some((definition) => definition.code === code)).toBe(false);
  });

  it('returns a frozen definition', () => {
    const definition = defineError('BASTION_ERR_TEST_FROZEN', 422, 'test_frozen', 'frozen');
    expect(() => {
      (definition as { status: number }).status = 200;
    }).toThrow(TypeError);
    expect(definition.status).toBe(422);
  });
});

describe('BastionError', () => {
  it('carries the definition, status, code, message, details and headers', () => {
    const cause = new Error('inner');
    const error = new BastionError(HttpErrors.tooManyRequests, {
      details: { limit: 5 },
      headers: { 'retry-after': '7' },
      cause,
    });
    expect(error).toBeInstanceOf(Error);
    expect(error.name).toBe('BastionError');
    expect(error.definition).toBe(HttpErrors.tooManyRequests);
    expect(error.statusCode).toBe(429);
    expect(error.code).toBe('BASTION_ERR_TOO_MANY_REQUESTS');
    expect(error.message).toBe(HttpErrors.tooManyRequests.message);
    expect(error.details).toEqual({ limit: 5 });
    expect(error.headers).toEqual({ 'retry-after': '7' });
    expect(error.cause).toBe(cause);
  });

  it('uses a custom message when given', () => {
    const error = new BastionError(HttpErrors.conflict, { message: 'Email already registered' });
    expect(error.message).toBe('Email already registered');
    expect(error.statusCode).toBe(409);
    expect(error.details).toBeUndefined();
    expect(error.headers).toBeUndefined();
  });
});
