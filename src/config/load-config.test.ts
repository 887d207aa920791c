import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError } from './errors.ts';
import { loadConfig } from './load-config.ts';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'bastion-config-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function file(name: string, text: string): Promise<string> {
  const target = path.join(dir, name);
  await writeFile(target, text);
  return target;
}

async function problemsOf(promise: Promise<unknown>): Promise<string[]> {
  const error = await promise.then(
    () => null,
    (caught: unknown) => caught,
  );
  expect(error).toBeInstanceOf(ConfigError);
  return (error as ConfigError).problems.map(
    (problem) => `${problem.key} (${problem.source}): ${problem.message}`,
  );
}

describe('loadConfig', () => {
  it('gives the documented defaults with nothing set', async () => {
    const config = await loadConfig({ env: {}, file: null });
    expect(config.env).toBe('development');
    expect(config.server).toMatchObject({ host: '127.0.0.1', port: 8080, bodyLimit: 1_048_576 });
    expect(config.database.url).toBe('sqlite:./data/bastion.db');
    expect(config.redis.url).toBeNull();
    expect(config.metrics).toMatchObject({ token: null, listen: null });
    expect(config.database.slowQueryMs).toBe(1000);
    expect(config.sharedStatePolicy).toEqual({ rateLimit: 'fail-open', revocation: 'fail-closed' });
  });

  it('reads YAML, then lets the environment override it, then flags override both', async () => {
    const yaml = await file('a.yaml', 'server:\n  port: 9000\n  host: 0.0.0.0\nlogging:\n  level: debug\n');
    const fromFile = await loadConfig({ env: {}, file: yaml });
    expect(fromFile.server.port).toBe(9000);
    expect(fromFile.logging.level).toBe('debug');
    const withEnv = await loadConfig({ env: { PORT: '9100' }, file: yaml });
    expect(withEnv.server).toMatchObject({ port: 9100, host: '0.0.0.0' });
    const withFlag = await loadConfig({
      env: { PORT: '9100' },
      file: yaml,
      overrides: { 'server.port': 9200 },
    });
    expect(withFlag.server.port).toBe(9200);
  });

  it('reads JSON and finds the file through BASTION_CONFIG', async () => {
    const json = await file('b.json', JSON.stringify({ database: { slowQueryMs: 5 } }));
    const config = await loadConfig({ env: { BASTION_CONFIG: json } });
    expect(config.database.slowQueryMs).toBe(5);
  });

  it('parses lists and listener addresses from the environment', async () => {
    const config = await loadConfig({
      env: {
        CORS_ORIGINS: 'https://a.example, https://b.example,,',
        TRUSTED_PROXIES: '10.0.0.0/8,127.0.0.1',
        BASTION_METRICS_LISTEN: '[::1]:9464',
      },
      file: null,
    });
    expect(config.security.corsOrigins).toEqual(['https://a.example', 'https://b.example']);
    expect(config.server.trustedProxies).toEqual(['10.0.0.0/8', '127.0.0.1']);
    expect(config.metrics.listen).toEqual({ host: '::1', port: 9464 });
  });

  it('places the database in the data directory unless DATABASE_URL says otherwise', async () => {
    expect((await loadConfig({ env: { BASTION_DATA_DIR: '/srv/b' }, file: null })).database.url).toBe(
      'sqlite:/srv/b/bastion.db',
    );
    expect(
      (await loadConfig({ env: { BASTION_DATA_DIR: '/srv/b', DATABASE_URL: 'postgres://h/db' }, file: null }))
        .database.url,
    ).toBe('postgres://h/db');
  });

  it('names unknown keys in the file, with the keys that are allowed', async () => {
    const yaml = await file('c.yaml', 'sever:\n  port: 1\nserver:\n  prot: 2\n');
    const problems = await problemsOf(loadConfig({ env: {}, file: yaml }));
    expect(problems).toHaveLength(2);
    expect(problems[0]).toMatch(/^sever \(file .*c\.yaml\): unknown key; allowed: env, dataDir, server/);
    expect(problems[1]).toMatch(/^server\.prot \(file .*\): unknown key; allowed: host, port, bodyLimit/);
  });

  it('lists every bad value at once, naming the key, the source and what is expected', async () => {
    const yaml = await file('d.yaml', 'server:\n  port: 70000\n  trustedProxies: nope\n');
    const problems = await problemsOf(
      loadConfig({
        env: { NODE_ENV: 'staging', LOG_LEVEL: 'loud', BASTION_BODY_LIMIT: '1MB', REDIS_URL: 'http://cache' },
        file: yaml,
      }),
    );
    expect(problems).toEqual(
      expect.arrayContaining([
        'env (env NODE_ENV): expected one of: development, production, test',
        'logging.level (env LOG_LEVEL): expected one of: fatal, error, warn, info, debug, trace, silent',
        'server.bodyLimit (env BASTION_BODY_LIMIT): expected a whole number, got "1MB"',
        expect.stringMatching(/^redis\.url \(env REDIS_URL\): must match pattern/),
        expect.stringMatching(/^server\.port \(file .*\): must be <= 65535/),
        expect.stringMatching(/^server\.trustedProxies \(file .*\): must be array/),
      ]),
    );
    expect(problems).toHaveLength(6);
  });

  it('rejects a malformed listener and a port that is not a number', async () => {
    const problems = await problemsOf(
      loadConfig({ env: { BASTION_METRICS_LISTEN: '9464', PORT: '-1' }, file: null }),
    );
    expect(problems).toEqual([
      'server.port (env PORT): expected a whole number, got "-1"',
      'metrics.listen (env BASTION_METRICS_LISTEN): expected HOST:PORT, got "9464"',
    ]);
  });

  it('reports an unreadable or unparsable file instead of ignoring it', async () => {
    expect(await problemsOf(loadConfig({ env: {}, file: path.join(dir, 'missing.yaml') }))).toEqual([
      expect.stringMatching(/^BASTION_CONFIG \(file .*missing\.yaml\): cannot read: ENOENT/),
    ]);
    const broken = await file('e.json', '{"server": ');
    expect(await problemsOf(loadConfig({ env: {}, file: broken }))).toEqual([
      expect.stringMatching(/^BASTION_CONFIG \(file .*e\.json\): cannot parse/),
    ]);
    const list = await file('f.yaml', '- a\n- b\n');
    expect(await problemsOf(loadConfig({ env: {}, file: list }))).toEqual([
      expect.stringMatching(/must contain an object at the top/),
    ]);
  });

  it('never echoes a secret value in a problem message', async () => {
    const secret = 'redis-password-7f3a9c';
    const error = await loadConfig({ env: { REDIS_URL: `http://:${secret}@cache` }, file: null }).catch(
      (caught: unknown) => caught as Error,
    );
    expect(String((error as Error).message)).not.toContain(secret);
  });
});

describe('loadConfig against hostile or mistaken input', () => {
  it('refuses prototype keys in a config file and pollutes nothing', async () => {
    const json = await file(
      'proto.json',
      '{"__proto__": {"auth": "public", "polluted": true}, "server": {"constructor": {"prototype": {"x": 1}}}}',
    );
    const problems = await problemsOf(loadConfig({ env: {}, file: json }));
    expect(problems).toEqual([
      expect.stringMatching(/^__proto__ \(file .*\): is not allowed in a config file$/),
      expect.stringMatching(/^server\.constructor \(file .*\): is not allowed in a config file$/),
    ]);
    const probe: Record<string, unknown> = {};
    expect(probe.auth).toBeUndefined();
    expect(probe.polluted).toBeUndefined();
    const yaml = await file('proto.yaml', '__proto__:\n  polluted: yes\n');
    await problemsOf(loadConfig({ env: {}, file: yaml }));
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it('checks every trusted proxy entry', async () => {
    const problems = await problemsOf(
      loadConfig({
        env: { TRUSTED_PROXIES: '10.0.0.0/8,foo,10.0.0.0/33,::1/129,loopback,192.168.1.1' },
        file: null,
      }),
    );
    expect(problems).toEqual([
      expect.stringMatching(/^server\.trustedProxies \(env TRUSTED_PROXIES\): "foo" is not an IP address/),
      'server.trustedProxies (env TRUSTED_PROXIES): "10.0.0.0/33" has a prefix length outside 0-32',
      'server.trustedProxies (env TRUSTED_PROXIES): "::1/129" has a prefix length outside 0-128',
    ]);
  });

  it('does not echo the file around a YAML syntax error', async () => {
    const yaml = await file(
      'bad.yaml',
      'server:\n  port: [1\nsecurity:\n  masterKey: hunter2-secret-value\n',
    );
    const [problem] = await problemsOf(loadConfig({ env: {}, file: yaml }));
    expect(problem).toMatch(/cannot parse/);
    expect(problem).not.toContain('hunter2');
  });
});
