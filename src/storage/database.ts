import { chmodSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import SqliteDatabase from 'better-sqlite3';
import { Kysely, type LogEvent, PostgresDialect, SqliteDialect, sql } from 'kysely';
import pg from 'pg';
import type { DatabaseSchema } from './schema.ts';

/** Which engine a database URL selects. */
export type DatabaseKind = 'sqlite' | 'postgres';

/** What the database reports about each query; observability turns it into metrics and logs. */
export interface QueryEvent {
  operation: string;
  durationMs: number;
  /** SQL text without parameter values (values may be secrets). */
  sql: string;
  failed: boolean;
}

/** Options for `openDatabase`. */
export interface DatabaseOptions {
  /** `sqlite:PATH`, `sqlite::memory:` or `postgres://…`. */
  url: string;
  /** PostgreSQL pool size (default 10). */
  poolMax?: number;
  /** SQLite busy timeout in ms (default 5000). */
  busyTimeoutMs?: number;
  /** PostgreSQL schema to use as search_path (default: the server's). */
  schema?: string;
  /** Called after every query. */
  onQuery?: (event: QueryEvent) => void;
}

/** An open database: the Kysely instance plus what health checks and metrics need. */
export interface Database {
  readonly db: Kysely<DatabaseSchema>;
  readonly kind: DatabaseKind;
  /** PostgreSQL pool counters (null for SQLite). */
  poolStats(): { total: number; idle: number; waiting: number; max: number } | null;
  /** One round-trip; resolves with the latency in ms. */
  ping(): Promise<number>;
  close(): Promise<void>;
}

// Bounded label values: the statement's leading keyword, or 'other'.
const OPERATIONS = new Set([
  'select',
  'insert',
  'update',
  'delete',
  'with',
  'create',
  'alter',
  'drop',
  'pragma',
]);

/** The kind of statement, from its first keyword (bounded set, safe as a metric label). */
export function operationOf(text: string): string {
  const match = /^\s*([a-zA-Z]+)/.exec(text);
  const word = match ? match[1]!.toLowerCase() : '';
  return OPERATIONS.has(word) ? word : 'other';
}

/** Which engine a URL selects; throws TypeError for anything else. */
export function databaseKind(url: string): DatabaseKind {
  if (url.startsWith('sqlite:')) return 'sqlite';
  if (/^postgres(ql)?:\/\//.test(url)) return 'postgres';
  throw new TypeError(`DATABASE_URL must start with sqlite: or postgres:// (got ${url.split(':')[0]}:…)`);
}

/** Opens SQLite (WAL, busy timeout, foreign keys) or a PostgreSQL pool, per the URL. */
export function openDatabase(options: DatabaseOptions): Database {
  const kind = databaseKind(options.url);
  const log = options.onQuery ? queryLogger(options.onQuery) : undefined;
  if (kind === 'sqlite') return openSqlite(options, log);
  return openPostgres(options, log);
}

function queryLogger(onQuery: (event: QueryEvent) => void) {
  return (event: LogEvent) => {
    const text = event.query.sql;
    onQuery({
      operation: operationOf(text),
      durationMs: event.queryDurationMillis,
      sql: text,
      failed: event.level === 'error',
    });
  };
}

function openSqlite(options: DatabaseOptions, log: ((event: LogEvent) => void) | undefined): Database {
  const file = options.url.slice('sqlite:'.length);
  if (file !== ':memory:') mkdirSync(path.dirname(path.resolve(file)), { recursive: true, mode: 0o700 });
  const connection = new SqliteDatabase(file);
  // The database holds every durable secret's ciphertext and every audit trail: owner-only.
  if (file !== ':memory:') chmodSync(file, 0o600);
  connection.pragma('journal_mode = WAL');
  connection.pragma('synchronous = NORMAL');
  connection.pragma(`busy_timeout = ${Math.trunc(options.busyTimeoutMs ?? 5000)}`);
  connection.pragma('foreign_keys = ON');
  const db = new Kysely<DatabaseSchema>({ dialect: new SqliteDialect({ database: connection }), log });
  return {
    db,
    kind: 'sqlite',
    poolStats: () => null,
    ping: () => timed(() => sql`select 1`.execute(db)),
    close: () => db.destroy(),
  };
}

function openPostgres(options: DatabaseOptions, log: ((event: LogEvent) => void) | undefined): Database {
  const max = options.poolMax ?? 10;
  const pool = new pg.Pool({
    connectionString: options.url,
    max,
    connectionTimeoutMillis: 5000,
    idleTimeoutMillis: 30_000,
    ...(options.schema ? { options: `-c search_path=${quoteIdentifier(options.schema)}` } : {}),
  });
  // An idle client losing its connection must not crash the process; the pool replaces it.
  pool.on('error', () => {});
  const db = new Kysely<DatabaseSchema>({ dialect: new PostgresDialect({ pool }), log });
  return {
    db,
    kind: 'postgres',
    poolStats: () => ({ total: pool.totalCount, idle: pool.idleCount, waiting: pool.waitingCount, max }),
    ping: () => timed(() => sql`select 1`.execute(db)),
    close: () => db.destroy(),
  };
}

function quoteIdentifier(name: string): string {
  if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) throw new TypeError(`Invalid schema name ${name}`);
  return name;
}

async function timed(work: () => Promise<unknown>): Promise<number> {
  const start = performance.now();
  await work();
  return performance.now() - start;
}
