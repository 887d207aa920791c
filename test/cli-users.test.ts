import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config/load-config.ts';
import { createApp } from '../src/server/create-app.ts';
import { openDatabase } from '../src/storage/database.ts';
import { LogCapture } from './support/app.ts';
import { runCli } from './support/cli.ts';

const SLOW = { timeout: 120_000 };
const PASSWORD = 'Granite-Willow-Compass-88';

let dataDir: string;
let env: Record<string, string>;
beforeAll(async () => {
  dataDir = await mkdtemp(path.join(tmpdir(), 'bastion-cli-users-'));
  env = { BASTION_DATA_DIR: dataDir, BASTION_LOG_FORMAT: 'json' };
  const migrated = await runCli(['migrate', 'up'], env);
  expect(migrated.code, migrated.stderr).toBe(0);
});
afterAll(async () => {
  await rm(dataDir, { recursive: true, force: true });
});

describe('bastion users create-admin', () => {
  it('documents itself and takes no password argument', SLOW, async () => {
    const help = await runCli(['users', 'create-admin', '--help'], {});
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/^Usage: bastion users create-admin /);
    expect(help.stdout).toContain('--email');
    expect(help.stdout).not.toMatch(/--password/);
  });

  it('creates a platform admin from a password on stdin, who can then log in', SLOW, async () => {
    const result = await runCli(
      ['users', 'create-admin', '--email', 'Root@Example.com'],
      env,
      `${PASSWORD}\n`,
    );
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toMatch(/Created platform admin Root@Example\.com \(id [0-9a-f]{28}\)/);
    expect(result.stdout + result.stderr).not.toContain(PASSWORD);

    // Stored encrypted: the raw row holds neither the address nor the password.
    const database = openDatabase({ url: `sqlite:${path.join(dataDir, 'bastion.db')}` });
    const rows = await database.db.selectFrom('users').selectAll().execute();
    await database.close();
    expect(rows).toHaveLength(1);
    expect(JSON.stringify(rows)).not.toMatch(/root@example\.com|Root@Example|Granite/i);
    expect(rows[0]!.platform_admin).toBe(1);

    const logs = new LogCapture();
    const config = await loadConfig({ file: null, env: { ...env, NODE_ENV: 'test' } });
    const app = await createApp({ config, logDestination: logs });
    try {
      // The address matches whatever its case.
      const login = await app.inject({
        method: 'POST',
        url: '/auth/login',
        payload: { email: 'root@example.com', password: PASSWORD },
      });
      expect(login.statusCode, login.body).toBe(200);
      const token = (login.json() as { access_token: string }).access_token;
      const users = await app.inject({
        url: '/api/v1/admin/users',
        headers: { authorization: `Bearer ${token}` },
      });
      expect(users.statusCode).toBe(200);
    } finally {
      await app.close();
    }
  });

  it('refuses a taken address, a weak password and an empty one, with a reason', SLOW, async () => {
    const [taken, weak, empty] = await Promise.all([
      runCli(['users', 'create-admin', '--email', 'root@example.com'], env, `${PASSWORD}\n`),
      runCli(['users', 'create-admin', '--email', 'weak@example.com'], env, 'password123\n'),
      runCli(['users', 'create-admin', '--email', 'empty@example.com'], env, ''),
    ]);
    expect(taken.code).toBe(1);
    expect(taken.stderr).toMatch(/exists/);
    expect(weak.code).toBe(1);
    expect(weak.stderr).toMatch(/weak|guess|common/i);
    expect(empty.code).toBe(1);
    expect(empty.stderr).toMatch(/empty password/);
  });
});
