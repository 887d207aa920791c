import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { loadConfig } from './load-config.ts';
import { decodeMasterKey } from './master-key.ts';
import { productionProblems } from './production-guards.ts';

const goodKey = randomBytes(32).toString('base64');
const goodToken = randomBytes(32).toString('base64url');

async function problems(env: Record<string, string>) {
  const config = await loadConfig({ env: { NODE_ENV: 'production', ...env }, file: null });
  return productionProblems(config).map((problem) => `${problem.key}: ${problem.message}`);
}

describe('production guards', () => {
  it('accept a sound production configuration', async () => {
    expect(
      await problems({
        BASTION_MASTER_KEY: goodKey,
        BASTION_METRICS_TOKEN: goodToken,
        BASTION_ADMIN_PASSWORD: 'a-long-and-unusual-passphrase',
        CORS_ORIGINS: 'https://app.example.com',
      }),
    ).toEqual([]);
  });

  it('do nothing outside production', async () => {
    const config = await loadConfig({ env: { CORS_ORIGINS: '*' }, file: null });
    expect(productionProblems(config)).toEqual([]);
  });

  it('list every problem at once', async () => {
    const found = await problems({
      CORS_ORIGINS: 'https://ok.example,*',
      BASTION_ADMIN_PASSWORD: 'short',
      ALERT_WEBHOOK_SECRET: 'changeme',
    });
    expect(found).toEqual([
      'security.masterKey: is required in production (32 random bytes, base64)',
      'alertChannels.webhookSecret: is a default or placeholder value; generate a random one',
      'admin.password: must be at least 12 characters',
      'security.corsOrigins: "*" allows every site; list the allowed origins',
      expect.stringMatching(/^metrics: \/metrics would be open to the world/),
    ]);
  });

  it('refuse weak master keys', async () => {
    for (const key of [
      Buffer.alloc(32, 7).toString('base64'),
      Buffer.from('abababababababababababababababab').toString('base64'),
      randomBytes(16).toString('base64'),
      randomBytes(64).toString('base64'),
      'not base64!',
    ]) {
      const found = await problems({ BASTION_MASTER_KEY: key, BASTION_METRICS_TOKEN: goodToken });
      expect(found, key).toHaveLength(1);
      expect(found[0]).toMatch(/^security\.masterKey: /);
    }
    expect(decodeMasterKey(goodKey)).toMatchObject({ ok: true });
    expect(decodeMasterKey(randomBytes(32).toString('base64url'))).toMatchObject({ ok: true });
  });

  it('refuse short and default secrets', async () => {
    const base = { BASTION_MASTER_KEY: goodKey };
    expect(await problems({ ...base, BASTION_METRICS_TOKEN: 'x'.repeat(40) })).toEqual([
      'metrics.token: is a default or placeholder value; generate a random one',
    ]);
    expect(await problems({ ...base, BASTION_METRICS_TOKEN: 'abc123' })).toEqual([
      'metrics.token: is 6 characters; at least 32 are required',
    ]);
    expect(
      await problems({ ...base, BASTION_METRICS_TOKEN: goodToken, BASTION_ADMIN_PASSWORD: 'password123' }),
    ).toEqual(['admin.password: must be at least 12 characters']);
    expect(
      await problems({
        ...base,
        BASTION_METRICS_TOKEN: goodToken,
        DATABASE_URL: 'postgres://postgres:postgres@db/x',
      }),
    ).toEqual(['database.url: uses a default password; set a strong one']);
  });

  it('accept an internal metrics listener instead of a token, but not one on every interface', async () => {
    const base = { BASTION_MASTER_KEY: goodKey };
    expect(await problems({ ...base, BASTION_METRICS_LISTEN: '127.0.0.1:9464' })).toEqual([]);
    expect(await problems({ ...base, BASTION_METRICS_LISTEN: '0.0.0.0:9464' })).toEqual([
      expect.stringMatching(/^metrics\.listen: listens on every interface/),
    ]);
  });
});

describe('production guards on proxies', () => {
  it('refuse a trusted-proxy range that covers every address', async () => {
    const found = await problems({
      BASTION_MASTER_KEY: goodKey,
      BASTION_METRICS_TOKEN: goodToken,
      TRUSTED_PROXIES: '10.0.0.0/8,0.0.0.0/0,::/0',
    });
    expect(found).toEqual([
      'server.trustedProxies: "0.0.0.0/0" trusts every address, so any client could spoof its IP',
      'server.trustedProxies: "::/0" trusts every address, so any client could spoof its IP',
    ]);
  });
});
