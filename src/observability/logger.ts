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
  return pino(options, target);
}

// Lines are gathered up to 4 KiB before a write (one syscall for many requests) and flushed at
// least every 250 ms, so a quiet server's logs are never held back; pino flushes on exit. The
// write itself is synchronous: cheaper than a thread-pool round trip per batch, and a slow log
// reader slows the server down instead of letting an unbounded buffer grow in memory.
const BUFFER_BYTES = 4096;
const FLUSH_INTERVAL_MS = 250;

function bufferedFile(dest: string | number): DestinationStream {
  const stream = pino.destination({ dest, sync: true, minLength: BUFFER_BYTES });
  const timer = setInterval(() => {
    try {
      stream.flush();
    } catch {
      // Not ready yet (the file is still opening) or already closed: the next tick retries.
    }
  }, FLUSH_INTERVAL_MS);
  timer.unref();
  stream.on('close', () => clearInterval(timer));
  return stream;
}
