/**
 * Constants and helpers shared by the benchmark runner and every server script, so that all
 * stages answer the same route with the same body and accept the same token.
 */
import { Buffer } from 'node:buffer';

/** The one route every stage serves. */
export const ROUTE_PATH = '/hello';
/** The exact body every stage must answer; the runner compares bytes, not parsed JSON. */
export const EXPECTED_BODY = '{"hello":"world"}';
/** Origin sent by the load generator and allowed by the peers' CORS lists, so CORS does real work. */
export const ALLOWED_ORIGIN = 'https://app.example.com';
/** Claims checked by the peers' JWT verification (both libraries check the same ones). */
export const JWT_ISSUER = 'bastion-bench';
export const JWT_AUDIENCE = 'bastion-bench-api';
/** Environment variable through which the runner hands the HS256 secret to server processes. */
export const JWT_SECRET_ENV = 'BENCH_JWT_SECRET';

/** Reads the HS256 secret the runner generated; servers refuse to start without it. */
export function readJwtSecret(): Buffer {
  const encoded = process.env[JWT_SECRET_ENV];
  if (!encoded) {
    throw new Error(`${JWT_SECRET_ENV} is not set; server scripts are meant to be started by bench/run.ts`);
  }
  return Buffer.from(encoded, 'base64url');
}

/** Extracts the token from an `Authorization: Bearer <token>` header, or undefined. */
export function bearerToken(header: string | undefined): string | undefined {
  if (!header?.startsWith('Bearer ')) return undefined;
  const token = header.slice('Bearer '.length).trim();
  return token === '' ? undefined : token;
}

/** The handshake line the runner waits for; it is the only thing servers print on stdout. */
export function announceReady(port: number): void {
  process.stdout.write(`READY ${port}\n`);
}

/**
 * Runs `close` on SIGTERM/SIGINT and exits. A timer forces the exit if closing hangs (e.g. a
 * keep-alive socket the load generator left open), so the runner never waits on a stuck server.
 */
export function exitOnSignal(close: () => Promise<void>): void {
  let closing = false;
  const handler = (): void => {
    if (closing) return;
    closing = true;
    setTimeout(() => process.exit(0), 3000).unref();
    close().then(
      () => process.exit(0),
      (error: unknown) => {
        console.error('error while closing server:', error);
        process.exit(1);
      },
    );
  };
  process.once('SIGTERM', handler);
  process.once('SIGINT', handler);
}

/** Reports a startup failure on stderr (the runner shows it) and exits non-zero. */
export function failStartup(error: unknown): never {
  console.error('server failed to start:', error);
  process.exit(1);
}

/** Port of a server bound to a TCP address. */
export function portOf(address: string | { port: number } | null): number {
  if (address === null || typeof address === 'string') {
    throw new Error(`expected a TCP address, got ${String(address)}`);
  }
  return address.port;
}

/**
 * The peers' log destination, buffered like Bastion's (4 KiB batches, written synchronously), so no
 * stage pays one write system call per request while another does not.
 */
export const PEER_LOG_DESTINATION = { dest: '/dev/null', sync: true, minLength: 4096 } as const;
