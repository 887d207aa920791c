import { randomBytes } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDatabase } from '../src/storage/database.ts';
import { createPostgresSchema } from './support/app.ts';
import { type CliResult, runCli } from './support/cli.ts';
import { DATABASE_URL_TEST, postgresAvailable } from './support/services.ts';

const pgUp = await postgresAvailable();

let dataDir: string;
let baseEnv: Record<string, string>;
beforeAll(async () => {
  dataDir = await mkdtemp(path.join(tmpdir(), 'bastion-cli-secrets-'));
  // One data dir: every run must find the same development master key.
  baseEnv = { BASTION_DATA_DIR: dataDir, BASTION_LOG_FORMAT: 'json' };
});
afterAll(async () => {
  await rm(dataDir, { recursive: true, force: true });
});

// Every case spawns Node with tsx (about a second each, more on a busy machine): independent
// runs go in parallel, and each test gets room for its sequence.
const SLOW = { timeout: 120_000 };

describe('bastion secrets --help', () => {
  it('describes the group and every command, none of which takes a value argument', SLOW, async () => {
    const commands = [
      [],
      ['secrets'],
      ...['set', 'get', 'list', 'delete', 'rotate'].map((c) => ['secrets', c]),
    ];
    const results = await Promise.all(commands.map((args) => runCli([...args, '--help'], {})));
    results.forEach((result, index) => {
      const name = ['bastion', ...commands[index]!].join(' ');
      expect(result.code, name).toBe(0);
      expect(result.stdout, name).toMatch(new RegExp(`^Usage: ${name} `));
      expect(result.stdout, name).not.toMatch(/--value|<value>/);
      if (index > 1) expect(result.stdout, name).toContain('-c, --config <file>');
    });
    expect(results[0]!.stdout).toMatch(/\n {2}secrets /);
    expect(results[1]!.stdout).toMatch(/set .*\n.*get .*\n.*list .*\n.*delete .*\n.*rotate /s);
    expect(results[2]!.stdout).toContain('stdin');
    expect(results[6]!.stdout).toContain('stdin');
  });
});

interface Flow {
  env: Record<string, string>;
  /** The SQLite file, or null on PostgreSQL. */
  file: string | null;
  /** Every value a test planted; none may reach stderr or the database files. */
  values: string[];
  stderrs: string[];
}

async function openFlow(url: string, file: string | null): Promise<Flow> {
  const env = { ...baseEnv, DATABASE_URL: url };
  const up = await runCli(['migrate', 'up'], env);
  expect(up.code, up.stderr).toBe(0);
  return { env, file, values: [], stderrs: [] };
}

function planted(flow: Flow, label: string): string {
  const value = `${label}-${randomBytes(12).toString('hex')}`;
  flow.values.push(value);
  return value;
}

async function exec(flow: Flow, args: string[], input = ''): Promise<CliResult> {
  const result = await runCli(args, flow.env, input);
  flow.stderrs.push(result.stderr);
  return result;
}

/** set (stdin) → get → rotate → get, get an old version → list → delete → get fails. */
async function roundTrip(flow: Flow): Promise<void> {
  const first = planted(flow, 'first');
  const second = planted(flow, 'second');
  const set = await exec(flow, ['secrets', 'set', 'ci/token', '--rotation-days', '30'], `${first}\n`);
  expect(set.code, set.stderr).toBe(0);
  expect(set.stdout).toBe('Created secret ci/token (version 1).\n');

  // Only the value (and one newline, which `set` strips again) goes to stdout.
  const get = await exec(flow, ['secrets', 'get', 'ci/token']);
  expect(get.code).toBe(0);
  expect(get.stdout).toBe(`${first}\n`);

  // Without a trailing newline the value is taken as it is.
  const rotated = await exec(flow, ['secrets', 'rotate', 'ci/token'], second);
  expect(rotated.code, rotated.stderr).toBe(0);
  expect(rotated.stdout).toBe('Rotated secret ci/token to version 2.\n');
  const [current, old] = await Promise.all([
    exec(flow, ['secrets', 'get', 'ci/token']),
    exec(flow, ['secrets', 'get', 'ci/token', '--secret-version', '1']),
  ]);
  expect(current.stdout).toBe(`${second}\n`);
  expect(old.stdout).toBe(`${first}\n`);

  const list = await exec(flow, ['secrets', 'list']);
  expect(list.code).toBe(0);
  const lines = list.stdout.trimEnd().split('\n');
  expect(lines[0]).toMatch(/^NAME\s+VERSION\s+CREATED\s+ROTATED\s+LAST READ\s+ROTATION$/);
  const time = String.raw`\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ`;
  expect(lines[1]).toMatch(new RegExp(`^ci/token\\s+2\\s+${time}\\s+${time}\\s+${time}\\s+30d$`));
  expect(lines).toHaveLength(2);
  for (const value of [first, second]) expect(list.stdout).not.toContain(value);

  const deleted = await exec(flow, ['secrets', 'delete', 'ci/token']);
  expect(deleted.code).toBe(0);
  expect(deleted.stdout).toBe('Deleted secret ci/token.\n');
  const gone = await exec(flow, ['secrets', 'get', 'ci/token']);
  expect(gone.code).toBe(1);
  expect(gone.stdout).toBe('');
  expect(gone.stderr).toContain('bastion: No secret named "ci/token"');
}

describe('bastion secrets on SQLite', () => {
  let flow: Flow;
  beforeAll(async () => {
    const file = path.join(dataDir, 'secrets.db');
    flow = await openFlow(`sqlite:${file}`, file);
  }, 120_000);

  it('sets from stdin, gets, rotates, lists and deletes', SLOW, async () => {
    await roundTrip(flow);
  });

  it('refuses values on argv, empty or oversized stdin, bad names and missing secrets', SLOW, async () => {
    const value = planted(flow, 'argv');
    const cases: Array<{ args: string[]; input?: string; error: string }> = [
      { args: ['set', 'from/argv', value], error: "too many arguments for 'set'" },
      { args: ['set', 'from/argv', '--value', value], error: "unknown option '--value'" },
      { args: ['rotate', 'from/argv', value], error: "too many arguments for 'rotate'" },
      { args: ['set', 'empty'], input: '', error: 'Refusing an empty value for empty' },
      { args: ['set', 'empty'], input: '\r\n', error: 'Refusing an empty value for empty' },
      { args: ['set', 'big'], input: 'x'.repeat(65_537), error: 'The value is larger than 65536 bytes' },
      { args: ['set', 'bad name'], input: 'v', error: 'Secret names are 1-200 characters' },
      { args: ['set', 'days', '--rotation-days', '0'], input: 'v', error: 'expected a whole number of days' },
      { args: ['get', 'no/such'], error: 'No secret named "no/such"' },
      { args: ['rotate', 'no/such'], input: 'v', error: 'No secret named "no/such"' },
      { args: ['delete', 'no/such'], error: 'No secret named "no/such"' },
    ];
    const results = await Promise.all(cases.map((c) => exec(flow, ['secrets', ...c.args], c.input)));
    results.forEach((result, index) => {
      const { args, error } = cases[index]!;
      expect(result.code, args.join(' ')).not.toBe(0);
      expect(result.stdout, args.join(' ')).toBe('');
      expect(result.stderr, args.join(' ')).toContain(error);
    });

    // Exactly 64 KiB (plus the newline that is stripped) is accepted; a taken name is refused.
    const exact = await exec(flow, ['secrets', 'set', 'exact'], `${'x'.repeat(65_536)}\n`);
    expect(exact.code, exact.stderr).toBe(0);
    const taken = await exec(flow, ['secrets', 'set', 'exact'], 'other');
    expect(taken.code).toBe(1);
    expect(taken.stderr).toContain('A secret named "exact" exists; use rotate');

    const listed = await exec(flow, ['secrets', 'list', '--json']);
    const secrets = JSON.parse(listed.stdout) as Array<Record<string, unknown>>;
    expect(secrets).toEqual([
      expect.objectContaining({
        name: 'exact',
        current_version: 1,
        rotation_period_days: null,
        overdue: false,
      }),
    ]);
  });

  it('marks secrets overdue for rotation in the list', SLOW, async () => {
    const set = await exec(flow, ['secrets', 'set', 'stale', '--rotation-days', '7'], planted(flow, 'stale'));
    expect(set.code, set.stderr).toBe(0);
    // Age the secret in the database: the CLI reads the wall clock.
    const db = openDatabase({ url: flow.env.DATABASE_URL! });
    try {
      await db.db
        .updateTable('secrets')
        .set({ rotated_at: '2020-01-01T00:00:00.000Z' })
        .where('name', '=', 'stale')
        .execute();
    } finally {
      await db.close();
    }
    const list = await exec(flow, ['secrets', 'list']);
    const lines = list.stdout.split('\n');
    expect(lines.find((line) => line.startsWith('stale '))).toMatch(/\s7d\s+OVERDUE$/);
    expect(lines.find((line) => line.startsWith('exact '))).toMatch(/\s-$/);
    expect(list.stdout).toContain('1 secret(s) overdue for rotation');
  });

  it('keeps every planted value out of the database files and stderr', async () => {
    expect(flow.values.length).toBeGreaterThanOrEqual(4);
    for (const stderr of flow.stderrs) for (const value of flow.values) expect(stderr).not.toContain(value);
    // The database, its write-ahead log and shared memory: wherever SQLite may have put a page.
    const base = path.basename(flow.file!);
    const files = (await readdir(dataDir)).filter((name) => name.startsWith(base));
    expect(files).toContain(base);
    for (const name of files) {
      const bytes = await readFile(path.join(dataDir, name));
      for (const value of flow.values) {
        expect(bytes.includes(value), name).toBe(false);
        expect(bytes.includes(Buffer.from(value, 'utf16le')), name).toBe(false);
      }
    }
  });
});

describe.skipIf(!pgUp)('bastion secrets on PostgreSQL', () => {
  let flow: Flow;
  beforeAll(async () => {
    const { schema } = await createPostgresSchema();
    flow = await openFlow(
      `${DATABASE_URL_TEST}?options=${encodeURIComponent(`-c search_path=${schema}`)}`,
      null,
    );
  }, 120_000);

  it('sets from stdin, gets, rotates, lists and deletes', SLOW, async () => {
    await roundTrip(flow);
    for (const stderr of flow.stderrs) for (const value of flow.values) expect(stderr).not.toContain(value);
  });
});
