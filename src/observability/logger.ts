import { EventEmitter } from 'node:events';
import pino, { type DestinationStream, type Logger } from 'pino';
import pretty from 'pino-pretty';
import type { BastionConfig } from '../config/schema.ts';
import { createPiiMasker } from '../data-protection/pii-masking.ts';

/** Where log lines go: a stream (tests), a file path ('/dev/null' for benchmarks) or a file descriptor; default stdout. */
export type LogDestination = DestinationStream | string | number;

/** Whether lines are printed for people (pretty) or machines (JSON). */
export function logFormat(config: BastionConfig): 'json' | 'pretty' {
  if (config.logging.format !== 'auto') return config.logging.format;
  return config.env === 'development' ? 'pretty' : 'json';
}

/**
 * The process logger. Every line is cleaned before it is written, by one function built here
 * from `config.privacy`: secrets are redacted (fields such as password, token, authorization;
 * bearer tokens, JWTs, API keys, URL passwords) and PII masked (e-mail addresses, card numbers,
 * the configured fields).
 */
export function createLogger(config: BastionConfig, destination?: LogDestination): Logger {
  const target =
    destination === undefined || typeof destination === 'string' || typeof destination === 'number'
      ? bufferedFile(destination ?? 1)
      : destination;
  const options: pino.LoggerOptions = {
    level: config.logging.level,
    hooks: {
      streamWrite: createPiiMasker({ fields: config.privacy.maskFields, emails: config.privacy.maskEmails }),
    },
    timestamp: pino.stdTimeFunctions.epochTime,
    base: { pid: process.pid },
    serializers: { err: pino.stdSerializers.err },
  };
  if (logFormat(config) === 'pretty') {
    return pino(options, pretty({ destination: target, sync: true, translateTime: 'SYS:HH:MM:ss.l' }));
  }
  const logger = pino(options, target);
  (logger as TrustedLineLogger)[TRUSTED_LINES] = new TrustedLines(logger, target);
  return logger;
}

const TRUSTED_LINES = Symbol('bastion.trustedLines');
type TrustedLineLogger = Logger & { [TRUSTED_LINES]?: TrustedLines };

const INFO = 30;

/**
 * Writes `info` lines built only from values Bastion controls or has validated (route patterns,
 * status codes, ids, IP addresses) straight to the logger's destination, in the logger's own JSON
 * format but without pino's walk over a fields object and without the cleaning pass, which scans
 * every line for secrets and PII. The access line of each request goes this way.
 */
export class TrustedLines {
  readonly #logger: Logger;
  readonly #stream: DestinationStream;
  readonly #prefix = `,"pid":${process.pid},`;

  constructor(logger: Logger, stream: DestinationStream) {
    this.#logger = logger;
    this.#stream = stream;
  }

  /** Whether `info` lines are written at the logger's current level. */
  get enabled(): boolean {
    return this.#logger.levelVal <= INFO;
  }

  /**
   * Writes one `info` line. `fields` is the serialized inside of a JSON object (`"a":1,"b":"x"`)
   * whose strings were serialized by `JSON.stringify` or are known to need no escaping; `msg` is
   * a constant message without quotes or backslashes.
   */
  info(fields: string, msg: string): void {
    this.#stream.write(`{"level":${INFO},"time":${Date.now()}${this.#prefix}${fields},"msg":"${msg}"}\n`);
  }
}

/**
 * The trusted-line writer of a JSON logger made by `createLogger`, or undefined for any other
 * logger (pretty output, a library user's own logger): then lines go through the logger itself.
 */
export function trustedLinesOf(logger: Logger): TrustedLines | undefined {
  return (logger as TrustedLineLogger)[TRUSTED_LINES];
}

// Lines are gathered up to 4 KiB before a write (one syscall for many requests) and flushed at
// least every 250 ms, so a quiet server's logs are never held back, and at exit. The write itself
// is synchronous: cheaper than a thread-pool round trip per batch, and a slow log reader slows
// the server down instead of letting an unbounded buffer grow in memory. The batching is done
// here rather than by sonic-boom's `minLength`, which measures the whole pending buffer again
// for every line appended to it.
const BUFFER_CHARS = 4096;
const FLUSH_INTERVAL_MS = 250;

/** Destinations with lines still pending, flushed when the process exits. */
const pending = new Set<BatchedFile>();
let exitHookInstalled = false;

class BatchedFile extends EventEmitter implements DestinationStream {
  readonly #file: ReturnType<typeof pino.destination>;
  #lines: string[] = [];
  #chars = 0;

  constructor(dest: string | number) {
    super();
    this.#file = pino.destination({ dest, sync: true });
    this.#file.on('error', (error) => this.emit('error', error));
    this.#file.on('close', () => {
      pending.delete(this);
      this.emit('close');
    });
    const timer = setInterval(() => this.flushSync(), FLUSH_INTERVAL_MS);
    timer.unref();
    this.once('close', () => clearInterval(timer));
    if (!exitHookInstalled) {
      exitHookInstalled = true;
      process.once('exit', () => {
        for (const file of pending) file.flushSync();
      });
    }
  }

  write(line: string): boolean {
    this.#lines.push(line);
    this.#chars += line.length;
    if (this.#chars >= BUFFER_CHARS) this.flushSync();
    else pending.add(this);
    return true;
  }

  /** Writes the pending lines now. */
  flushSync(): void {
    if (this.#chars === 0) return;
    const chunk = this.#lines.join('');
    this.#lines = [];
    this.#chars = 0;
    pending.delete(this);
    try {
      this.#file.write(chunk);
    } catch (error) {
      // Not open yet or already closed: the lines are lost, as a write to a closed file would be.
      this.emit('error', error);
    }
  }

  /** pino's `logger.flush(callback)`. */
  flush(callback?: (error?: Error) => void): void {
    this.flushSync();
    callback?.();
  }

  end(): void {
    this.flushSync();
    this.#file.end();
  }
}

function bufferedFile(dest: string | number): DestinationStream {
  return new BatchedFile(dest);
}
