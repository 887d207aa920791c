import { setTimeout as delay } from 'node:timers/promises';
import type { Kysely } from 'kysely';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import { type Clock, systemClock } from '../core/clock.ts';
import type { DatabaseSchema } from '../storage/schema.ts';
import type { SharedState } from '../storage/state.ts';
import { type ColumnLocation, ENCRYPTED_COLUMNS, rowIdOf } from './encrypted-columns.ts';
import type { FieldCipher } from './field-cipher.ts';
import { KEYRING_CHANNEL, type Keyring } from './keyring.ts';
import { ReencryptionMetrics } from './reencryption-metrics.ts';
import { StaleRows } from './stale-rows.ts';

/** Options for `ReencryptionJob`. */
export interface ReencryptionOptions {
  /** The database holding the encrypted columns. */
  db: Kysely<DatabaseSchema>;
  /** Field cipher; rows are moved to its active key. */
  cipher: FieldCipher;
  /** The keyring behind `cipher`: which keys are not active, and where emptied keys are retired. */
  keyring: Keyring;
  /** Receives one progress line per batch (never a value). */
  logger: Logger;
  /** Registry for the job's metrics; default none (kept in memory, not exported). */
  registry?: Registry;
  /** Shared state whose keyring channel starts a background run after a rotation; default none. */
  state?: SharedState;
  /** Columns to walk; default `ENCRYPTED_COLUMNS`. */
  columns?: readonly ColumnLocation[];
  /** Rows read and rewritten per batch; default 200. */
  batchSize?: number;
  /** Upper bound on rows processed per second, so the job never starves requests; default 500. */
  maxRowsPerSecond?: number;
  /** How often the background job reloads the keyring to notice rotations nobody announced; default 60000 ms, 0 never. */
  pollIntervalMs?: number;
  /** Time source for the rate limit; default the system clock. */
  clock?: Clock;
  /** Waits `ms`, returning early when `signal` aborts; default a timer. */
  sleep?: (ms: number, signal: AbortSignal) => Promise<void>;
  /** Called after each batch (the CLI prints it); default none. */
  onProgress?: (progress: ReencryptionProgress) => void;
}

/** Rows whose value is under a key other than the active field key. */
export interface RemainingRows {
  columns: Array<{ table: string; column: string; rows: number }>;
  total: number;
}

/** Where a run stands after a batch. */
export interface ReencryptionProgress {
  table: string;
  column: string;
  /** Rows re-encrypted so far in this run, all columns. */
  done: number;
  /** Rows that failed to decrypt so far in this run. */
  failed: number;
  /** Estimated rows still to do, all columns. */
  remaining: number;
}

/** The outcome of `runOnce`. */
export interface ReencryptionResult {
  reencrypted: number;
  failed: number;
  /** Rows rewritten by someone else mid-batch; left alone, the next pass sees their new value. */
  conflicts: number;
  /** Decrypt-only keys retired because no row is left under them. */
  retired: string[];
  remaining: RemainingRows;
  /** True when `stop()` ended the run early. */
  stopped: boolean;
}

interface RunTotals {
  reencrypted: number;
  failed: number;
  conflicts: number;
  remaining: number;
  /** `table.column#rowId` of rows that failed in this run, so later passes do not retry them. */
  failedRows: Set<string>;
}

// A pass that re-encrypted something may have raced writers still on an old key (another instance
// that has not reloaded yet); a few more passes pick those up, without looping on a busy table.
const MAX_PASSES = 5;

function defaultSleep(ms: number, signal: AbortSignal): Promise<void> {
  return delay(ms, undefined, { signal }).catch(() => {});
}

function positive(name: string, value: number): number {
  if (!(value > 0) || !Number.isFinite(value)) throw new TypeError(`${name} must be a positive number`);
  return value;
}

/**
 * Moves rows still under decrypt-only keys to the active field key, batch by batch, rate-limited.
 * The data is the state: a row done no longer matches, so a killed job resumes by running again.
 * Each row is rewritten only if it still holds the ciphertext that was read, so a concurrent write
 * is never overwritten. Keys with nothing left under them are retired.
 */
export class ReencryptionJob {
  readonly #cipher: FieldCipher;
  readonly #keyring: Keyring;
  readonly #logger: Logger;
  readonly #state: SharedState | null;
  readonly #columns: readonly ColumnLocation[];
  readonly #rows: StaleRows;
  readonly #batchSize: number;
  readonly #maxRowsPerSecond: number;
  readonly #pollIntervalMs: number;
  readonly #clock: Clock;
  readonly #sleep: (ms: number, signal: AbortSignal) => Promise<void>;
  readonly #onProgress: ((progress: ReencryptionProgress) => void) | null;
  readonly #metrics: ReencryptionMetrics;
  readonly #abort = new AbortController();
  readonly #runs = new Set<Promise<unknown>>();
  #stopped = false;
  #started = false;
  #background: Promise<void> | null = null;
  #again = false;
  #lastKeys: string | null = null;
  #timer: NodeJS.Timeout | null = null;
  #unsubscribe: (() => Promise<void>) | null = null;

  constructor(options: ReencryptionOptions) {
    this.#cipher = options.cipher;
    this.#keyring = options.keyring;
    this.#logger = options.logger;
    this.#state = options.state ?? null;
    this.#columns = options.columns ?? ENCRYPTED_COLUMNS;
    this.#rows = new StaleRows(options.db);
    this.#batchSize = Math.trunc(positive('batchSize', options.batchSize ?? 200));
    this.#maxRowsPerSecond = positive('maxRowsPerSecond', options.maxRowsPerSecond ?? 500);
    this.#pollIntervalMs = options.pollIntervalMs ?? 60_000;
    this.#clock = options.clock ?? systemClock;
    this.#sleep = options.sleep ?? defaultSleep;
    this.#onProgress = options.onProgress ?? null;
    this.#metrics = new ReencryptionMetrics(options.registry);
  }

  /** Counts values under a non-active field key, per column and in total. */
  async remaining(): Promise<RemainingRows> {
    const stale = this.#staleKeyIds();
    const columns: RemainingRows['columns'] = [];
    for (const location of this.#columns) {
      const rows = stale.length === 0 ? 0 : await this.#rows.count(location, stale);
      columns.push({ table: location.table, column: location.column, rows });
      this.#metrics.remaining.set({ table: location.table, column: location.column }, rows);
    }
    return { columns, total: columns.reduce((sum, column) => sum + column.rows, 0) };
  }

  /** Re-encrypts until nothing is left (or `stop()`), retires emptied keys, and reports. */
  runOnce(): Promise<ReencryptionResult> {
    const run = this.#run();
    this.#runs.add(run);
    const forget = () => this.#runs.delete(run);
    run.then(forget, forget);
    return run;
  }

  /** Runs in the background now if anything remains, and again after every rotation; never awaited by requests. */
  async start(): Promise<void> {
    if (this.#started || this.#stopped) return;
    this.#started = true;
    if (this.#state) {
      try {
        this.#unsubscribe = await this.#state.subscribe(KEYRING_CHANNEL, () => this.#trigger('rotation'));
      } catch (error) {
        this.#logger.warn(
          { event: 'reencryption_subscribe_failed', err: error },
          'cannot listen for key rotations; the re-encryption job falls back to polling',
        );
      }
    }
    if (this.#pollIntervalMs > 0) {
      this.#timer = setInterval(() => this.#trigger('poll'), this.#pollIntervalMs);
      this.#timer.unref();
    }
    this.#trigger('startup');
  }

  /** Stops the job (for shutdown): the current batch finishes, then every run returns. */
  async stop(): Promise<void> {
    this.#stopped = true;
    this.#abort.abort();
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = null;
    await this.#unsubscribe?.().catch(() => {});
    this.#unsubscribe = null;
    await Promise.allSettled([...this.#runs, this.#background]);
  }

  #trigger(reason: 'startup' | 'rotation' | 'poll'): void {
    if (this.#stopped) return;
    if (this.#background) {
      this.#again = true;
      return;
    }
    const background = this.#loop(reason).finally(() => {
      this.#background = null;
    });
    this.#background = background;
  }

  async #loop(first: 'startup' | 'rotation' | 'poll'): Promise<void> {
    let reason = first;
    do {
      this.#again = false;
      try {
        // Picks up a rotation made by the CLI or another instance, so this one encrypts with it too.
        // At startup the keyring has just been loaded; a fresh database then sees no query at all.
        if (reason !== 'startup') await this.#keyring.reload();
        if (await this.#shouldRun(reason)) {
          this.#logger.info({ event: 'reencryption_started', reason }, 're-encryption started');
          await this.runOnce();
        }
      } catch (error) {
        this.#logger.error(
          { event: 'reencryption_error', err: error },
          're-encryption stopped by an error; it resumes after the next rotation, poll or restart',
        );
      }
      reason = 'rotation';
    } while (this.#again && !this.#stopped);
  }

  async #shouldRun(reason: 'startup' | 'rotation' | 'poll'): Promise<boolean> {
    const keys = this.#keyFingerprint();
    // At startup count rows (some may sit under a retired key); afterwards only a change of keys
    // starts a run, so a row that cannot be decrypted is not retried every minute.
    if (reason === 'startup') {
      this.#lastKeys = keys;
      return (await this.remaining()).total > 0;
    }
    if (keys === this.#lastKeys) return false;
    this.#lastKeys = keys;
    return this.#fieldKeys().some((key) => key.state === 'decrypt-only');
  }

  async #run(): Promise<ReencryptionResult> {
    const totals: RunTotals = {
      reencrypted: 0,
      failed: 0,
      conflicts: 0,
      remaining: 0,
      failedRows: new Set(),
    };
    if (!this.#stopped) {
      totals.remaining = (await this.remaining()).total;
      for (let pass = 0; pass < MAX_PASSES && !this.#stopped; pass += 1) {
        const activeBefore = this.#keyring.active('field').id;
        const before = { done: totals.reencrypted, conflicts: totals.conflicts };
        for (const location of this.#columns) await this.#pass(location, totals);
        const progressed = totals.reencrypted > before.done;
        const raced =
          totals.conflicts > before.conflicts || this.#keyring.active('field').id !== activeBefore;
        if (!progressed || !raced) break;
      }
    }
    const retired = this.#stopped ? [] : await this.#retireEmptied();
    this.#lastKeys = this.#keyFingerprint();
    const remaining = await this.remaining();
    this.#logger.info(
      {
        event: 'reencryption_finished',
        done: totals.reencrypted,
        failed: totals.failed,
        conflicts: totals.conflicts,
        remaining: remaining.total,
        retired,
        stopped: this.#stopped,
      },
      this.#stopped ? 're-encryption stopped' : 're-encryption finished',
    );
    return {
      reencrypted: totals.reencrypted,
      failed: totals.failed,
      conflicts: totals.conflicts,
      retired,
      remaining,
      stopped: this.#stopped,
    };
  }

  /** One walk over a column in key order; the cursor moves past every row, failed ones included. */
  async #pass(location: ColumnLocation, totals: RunTotals): Promise<void> {
    const labels = { table: location.table, column: location.column };
    let cursor: unknown[] | null = null;
    while (!this.#stopped) {
      const stale = this.#staleKeyIds();
      if (stale.length === 0) return;
      const started = this.#clock.now();
      const rows = await this.#rows.batch(location, stale, cursor, this.#batchSize);
      const last = rows.at(-1);
      if (!last) return;
      cursor = location.keyColumns.map((column) => last[column]);
      for (const row of rows) {
        const outcome = await this.#reencrypt(location, row, totals.failedRows);
        if (outcome === 'done') {
          totals.reencrypted += 1;
          this.#metrics.done.inc(labels);
        } else if (outcome === 'failed') {
          totals.failed += 1;
          this.#metrics.failures.inc(labels);
        } else if (outcome === 'conflict') {
          totals.conflicts += 1;
        }
      }
      const remaining = Math.max(0, totals.remaining - totals.reencrypted - totals.failed);
      this.#metrics.remaining.set(labels, remaining);
      const progress = { ...labels, done: totals.reencrypted, failed: totals.failed, remaining };
      this.#logger.info(
        { event: 'reencryption_progress', batch: rows.length, ...progress },
        're-encrypted a batch',
      );
      this.#onProgress?.(progress);
      const wait = (rows.length * 1000) / this.#maxRowsPerSecond - (this.#clock.now() - started);
      if (wait > 0 && !this.#stopped) await this.#sleep(wait, this.#abort.signal);
      if (rows.length < this.#batchSize) return;
    }
  }

  async #reencrypt(
    location: ColumnLocation,
    row: Record<string, unknown>,
    failedRows: Set<string>,
  ): Promise<'done' | 'failed' | 'conflict' | 'skipped'> {
    const rowId = rowIdOf(location, row);
    const where = `${location.table}.${location.column}#${rowId}`;
    if (failedRows.has(where)) return 'skipped';
    const stored = row[location.column];
    const context = { table: location.table, column: location.column, rowId };
    let next: string;
    try {
      if (typeof stored !== 'string') throw new TypeError('not a string');
      next = this.#cipher.encrypt(await this.#cipher.decryptBytes(stored, context), context);
    } catch (error) {
      failedRows.add(where);
      // The location only: the value, even encrypted, stays out of the logs.
      this.#logger.warn(
        {
          event: 'reencryption_row_failed',
          table: location.table,
          column: location.column,
          row_id: rowId,
          error: (error as { code?: string }).code ?? (error as Error).name,
        },
        'cannot decrypt a value; left under its old key',
      );
      return 'failed';
    }
    return (await this.#rows.replace(location, row, stored, next)) ? 'done' : 'conflict';
  }

  async #retireEmptied(): Promise<string[]> {
    const retired: string[] = [];
    for (const key of this.#fieldKeys()) {
      if (key.state !== 'decrypt-only') continue;
      let used = false;
      for (const location of this.#columns) {
        if (await this.#rows.any(location, key.id)) {
          used = true;
          break;
        }
      }
      if (used) continue;
      await this.#keyring.retire(key.id);
      retired.push(key.id);
      this.#logger.info(
        { event: 'data_key_retired', key_id: key.id },
        'retired a data key with nothing left under it',
      );
    }
    return retired;
  }

  #fieldKeys() {
    return this.#keyring.list().filter((key) => key.purpose === 'field');
  }

  #staleKeyIds(): string[] {
    const active = this.#keyring.active('field').id;
    return this.#fieldKeys()
      .filter((key) => key.id !== active)
      .map((key) => key.id);
  }

  #keyFingerprint(): string {
    return this.#fieldKeys()
      .map((key) => `${key.id}:${key.state}`)
      .sort()
      .join(',');
  }
}
