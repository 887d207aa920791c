import { randomBytes } from 'node:crypto';
import { existsSync, statSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MIGRATIONS } from '../src/storage/migration-list.ts';
import { createPostgresSchema } from './support/app.ts';
import { runCli, startCli } from './support/cli.ts';
import { DATABASE_URL_TEST, postgresAvailable } from './support/services.ts';

const pgUp = await postgresAvailable();
const MIGRATION_NAMES = Object.keys(MIGRATIONS);

let dataDir: string;
let env: Record<string, string>;
beforeAll(async () => {
  dataDir = await mkdtemp(path.join(tmpdir(), 'bastion-cli-'));
  env = { BASTION_DATA_DIR: dataDir, BASTION_LOG_FORMAT: 'json' };
});
afterAll(async () => {
  await rm(dataDir, { recursive: true, force: true });
});

describe('bastion CLI', () => {
  it('prints --help for the program and every command', async () => {
    const commands = [
      [],
      ['serve'],
      ['migrate'],
      ['migrate', 'status'],
      ['migrate', 'up'],
      ['config', 'check'],
    ];
    const results = await Promise.all(commands.map((args) => runCli([...args, '--help'])));
    results.forEach((result, index) => {
      const name = commands[index]!.join(' ');
      expect(result.code, name).toBe(0);
      expect(result.stdout, name).toMatch(/^Usage: bastion/);
    });
    const root = await runCli(['--help']);
    for (const command of ['serve', 'migrate', 'config', 'keys', 'secrets', 'roles', 'alerts']) {
      expect(root.stdout).toContain(command);
    }
    // Seven CLI processes at once, each transpiling the sources, on a machine running other suites.
  }, 60_000);

  it('prints the role table, as text and as JSON', async () => {
    const text = await runCli(['roles']);
    expect(text.code).toBe(0);
    expect(text.stdout).toMatch(
      /^permission\s+owner\s+admin\s+security\s+operator\s+developer\s+auditor\s+viewer\s+platform_admin$/m,
    );
    expect(text.stdout).toMatch(/^org:delete\s+x\s+-\s+-\s+-\s+-\s+-\s+-\s+x$/m);
    const json = await runCli(['roles', '--json']);
    const table = JSON.parse(json.stdout) as { roles: Record<string, string[]>; platform_admin: string[] };
    expect(Object.keys(table.roles)).toEqual([
      'owner',
      'admin',
      'security',
      'operator',
      'developer',
      'auditor',
      'viewer',
    ]);
    expect(table.roles.viewer).not.toContain('workflows:write');
    expect(table.platform_admin).toContain('users:manage');
  });

  it('fails clearly on an unknown command or option', async () => {
    const unknown = await runCli(['serv']);
    expect(unknown.code).not.toBe(0);
    expect(unknown.stderr).toMatch(/unknown command 'serv'/);
    const badPort = await runCli(['serve', '--port', 'eighty']);
    expect(badPort.code).not.toBe(0);
    expect(badPort.stderr).toMatch(/--port expects a number/);
  });

  it('config check lists every production problem and exits 78', async () => {
    const result = await runCli(['config', 'check', '--production'], { ...env, CORS_ORIGINS: '*' });
    expect(result.code).toBe(78);
    expect(result.stdout).toContain('BASTION_MASTER_KEY');
    expect(result.stdout).toContain('CORS_ORIGINS');
    expect(result.stdout).toContain('/metrics would be open');
    const good = await runCli(['config', 'check'], {
      ...env,
      NODE_ENV: 'production',
      BASTION_MASTER_KEY: randomBytes(32).toString('base64'),
      BASTION_METRICS_TOKEN: randomBytes(32).toString('hex'),
    });
    expect(good.stdout).toContain('Configuration OK (production)');
    expect(good.code).toBe(0);
  });

  it('config check reports invalid values with exit 78', async () => {
    const result = await runCli(['config', 'check'], { ...env, PORT: 'http' });
    expect(result.code).toBe(78);
    expect(result.stderr).toContain('server.port (env PORT): expected a whole number');
  });

  it('migrate status and up on SQLite', async () => {
    const dbEnv = { ...env, DATABASE_URL: `sqlite:${path.join(dataDir, 'migrate.db')}` };
    const before = await runCli(['migrate', 'status'], dbEnv);
    for (const name of MIGRATION_NAMES) expect(before.stdout).toMatch(new RegExp(`pending\\s+${name}`));
    expect(before.stdout).toContain('yet');
    expect(before.code).toBe(1);
    expect(existsSync(path.join(dataDir, 'migrate.db'))).toBe(false);
    const up = await runCli(['migrate', 'up'], dbEnv);
    for (const name of MIGRATION_NAMES) expect(up.stdout).toMatch(new RegExp(`applied\\s+${name}`));
    expect(up.code).toBe(0);
    expect(statSync(path.join(dataDir, 'migrate.db')).mode & 0o777).toBe(0o600);
    const after = await runCli(['migrate', 'status'], dbEnv);
    expect(after.stdout).toContain('Database is up to date.');
    expect(after.code).toBe(0);
    const again = await runCli(['migrate', 'up'], dbEnv);
    expect(again.stdout).toContain('Nothing to apply');
  });

  describe.skipIf(!pgUp)('on PostgreSQL', () => {
    it('migrate up then status', async () => {
      const { schema, drop } = await createPostgresSchema();
      try {
        const url = `${DATABASE_URL_TEST}?options=${encodeURIComponent(`-c search_path=${schema}`)}`;
        const up = await runCli(['migrate', 'up'], { ...env, DATABASE_URL: url });
        expect(up.stderr).toBe('');
        for (const name of MIGRATION_NAMES) expect(up.stdout).toMatch(new RegExp(`applied\\s+${name}`));
        const status = await runCli(['migrate', 'status'], { ...env, DATABASE_URL: url });
        expect(status.stdout).toContain('Database is up to date.');
      } finally {
        await drop();
      }
    });
  });

  it('serve refuses production with pending migrations unless --migrate, then serves and stops on SIGTERM', async () => {
    const prodEnv = {
      ...env,
      NODE_ENV: 'production',
      DATABASE_URL: `sqlite:${path.join(dataDir, 'prod.db')}`,
      BASTION_MASTER_KEY: randomBytes(32).toString('base64'),
      BASTION_METRICS_TOKEN: randomBytes(32).toString('hex'),
    };
    const refused = await runCli(['serve', '--port', '0'], prodEnv);
    expect(refused.code).toBe(78);
    expect(refused.stderr).toContain(`pending migration(s) (${MIGRATION_NAMES.join(', ')})`);

    const child = startCli(['serve', '--port', '0', '--migrate'], prodEnv);
    let stdout = '';
    const address = await new Promise<string>((resolve, reject) => {
      child.stdout?.on('data', (chunk: Buffer) => {
        stdout += chunk.toString();
        const line = stdout.split('\n').find((text) => text.includes('"msg":"listening"'));
        if (line) resolve((JSON.parse(line) as { addresses: string[] }).addresses[0]!);
      });
      child.on('exit', (code) => reject(new Error(`serve exited early with ${code}: ${stdout}`)));
    });
    const live = await fetch(`${address}/health/live`);
    expect(live.status).toBe(200);
    expect(live.headers.get('content-type')).toContain('application/health+json');
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    child.kill('SIGTERM');
    expect(await exited).toBe(0);
    expect(stdout).toContain('"reason":"SIGTERM"');
    expect(stdout).toContain('shutdown complete');
  });

  it('serve also stops cleanly on SIGINT (Ctrl-C)', async () => {
    const child = startCli(['serve', '--port', '0'], {
      ...env,
      DATABASE_URL: `sqlite:${path.join(dataDir, 'int.db')}`,
    });
    let stdout = '';
    await new Promise<void>((resolve, reject) => {
      child.stdout?.on('data', (chunk: Buffer) => {
        stdout += chunk.toString();
        if (stdout.includes('"msg":"listening"')) resolve();
      });
      child.on('exit', (code) => reject(new Error(`serve exited early with ${code}: ${stdout}`)));
    });
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    child.kill('SIGINT');
    expect(await exited).toBe(0);
    expect(stdout).toContain('"reason":"SIGINT"');
  });

  it('serve lists every configuration problem and exits 78', async () => {
    const result = await runCli(['serve'], { ...env, NODE_ENV: 'production', CORS_ORIGINS: '*' });
    expect(result.code).toBe(78);
    expect(result.stderr).toContain('Refusing to start in production');
    expect(result.stderr).toContain('security.masterKey');
    expect(result.stderr).toContain('security.corsOrigins');
  });
});
