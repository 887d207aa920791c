import { describe, expect, it } from 'vitest';
import { redactValues } from '../observability/redaction.ts';
import { API_KEY_PREFIX, apiKeySecretMatches, createApiKey, parseApiKey } from './api-key-token.ts';

describe('API key tokens', () => {
  it('are bst_ + a public id + a 256-bit secret, different every time', () => {
    const keys = Array.from({ length: 100 }, () => createApiKey());
    for (const key of keys) {
      expect(key.token).toMatch(/^bst_[0-9a-f]{16}_[A-Za-z0-9_-]{43}$/);
      expect(key.token.startsWith(`${API_KEY_PREFIX}${key.publicId}_`)).toBe(true);
      expect(Buffer.from(parseApiKey(key.token)!.secret, 'base64url')).toHaveLength(32);
    }
    expect(new Set(keys.map((key) => key.token)).size).toBe(100);
    expect(new Set(keys.map((key) => key.publicId)).size).toBe(100);
  });

  it('store only a hash: the token and its secret are not in what is kept', () => {
    const key = createApiKey();
    const { secret } = parseApiKey(key.token)!;
    expect(key.secretHash).toMatch(/^[0-9a-f]{64}$/);
    expect(key.secretHash).not.toContain(secret);
    expect(apiKeySecretMatches(secret, key.secretHash)).toBe(true);
  });

  it('refuse a wrong, altered or malformed secret', () => {
    const key = createApiKey();
    const { secret } = parseApiKey(key.token)!;
    const altered = `${secret.slice(0, -1)}${secret.endsWith('A') ? 'B' : 'A'}`;
    expect(apiKeySecretMatches(altered, key.secretHash)).toBe(false);
    expect(apiKeySecretMatches(parseApiKey(createApiKey().token)!.secret, key.secretHash)).toBe(false);
    expect(apiKeySecretMatches(secret, 'not-hex')).toBe(false);
    expect(apiKeySecretMatches(secret, '')).toBe(false);
  });

  it('parse only well-formed keys', () => {
    const key = createApiKey();
    for (const bad of [
      '',
      key.token.slice(4),
      key.token.replace('bst_', 'BST_'),
      `${key.token}x`,
      key.token.slice(0, -1),
      `Bearer ${key.token}`,
      key.token.replace(key.publicId, key.publicId.toUpperCase()),
    ]) {
      expect(parseApiKey(bad), bad).toBeNull();
    }
    expect(parseApiKey(key.token)).toEqual({ publicId: key.publicId, secret: expect.any(String) });
  });

  it('never reach a log line whole', () => {
    const key = createApiKey();
    const line = JSON.stringify({ msg: `key ${key.token} used`, header: `X-API-Key: ${key.token}` });
    expect(redactValues(line)).not.toContain(parseApiKey(key.token)!.secret);
  });
});
