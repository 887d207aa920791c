import pino, { type DestinationStream, type Logger } from 'pino';
import pretty from 'pino-pretty';
import type { BastionConfig } from '../config/schema.ts';
import { REDACT_PATHS, REDACTED, redactValues } from './redaction.ts';

/** Where log lines go: a stream (tests) or a file path ('/dev/null' for benchmarks); default stdout. */
export type LogDestination = DestinationStream | string;

/** Whether lines are printed for people (pretty) or machines (JSON). */
export function logFormat(config: BastionConfig): 'json' | 'pretty' {
  if (config.logging.format !== 'auto') return config.logging.format;
  return config.env === 'development' ? 'pretty' : 'json';
}

/**
 * The process logger: redaction by path (fields such as password, token, authorization) and
 * by value pattern (bearer tokens, JWTs, API keys, URL passwords) on every line.
 */
export function createLogger(config: BastionConfig, destination?: LogDestination): Logger {
  const target =
    typeof destination === 'string' ? pino.destination({ dest: destination, sync: false }) : destination;
  const options: pino.LoggerOptions = {
    level: config.logging.level,
    redact: { paths: REDACT_PATHS, censor: REDACTED },
    hooks: { streamWrite: redactValues },
    timestamp: pino.stdTimeFunctions.isoTime,
    base: { pid: process.pid },
    serializers: { err: pino.stdSerializers.err },
  };
  if (logFormat(config) === 'pretty') {
    return pino(options, pretty({ destination: target ?? 1, sync: true, translateTime: 'SYS:HH:MM:ss.l' }));
  }
  return target ? pino(options, target) : pino(options);
}
