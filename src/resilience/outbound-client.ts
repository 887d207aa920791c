import { lookup as dnsLookup } from 'node:dns';
import { BlockList, isIP, type LookupFunction } from 'node:net';
import { performance } from 'node:perf_hooks';
import { Agent, type Dispatcher, request as undiciRequest } from 'undici';
import { BUILD_INFO } from '../observability/build-info.ts';

/** Options of an {@link OutboundClient}, checked once when it is created. */
export interface OutboundClientOptions {
  /** Default per-call timeout (whole exchange: connect + headers + body), ms. */
  timeoutMs: number;
  /**
   * When false (the secure default), refuse destinations that resolve to loopback, private, link-local
   * (including cloud metadata), unspecified, CGNAT, multicast, broadcast or reserved addresses, in any
   * notation, including their IPv4-mapped, IPv4-compatible, NAT64 and 6to4 IPv6 forms.
   */
  allowPrivateNetworks: boolean;
  /** Largest response body read, bytes (default 1 MiB); the rest is discarded and `truncated` is true. */
  maxResponseBytes?: number;
  /** Sent as User-Agent unless the request sets its own (default `bastion/<version>`). */
  userAgent?: string;
}

/** One outbound HTTP exchange. */
export interface OutboundRequest {
  /** HTTP method (default GET). */
  method?: 'GET' | 'POST' | 'PUT' | 'DELETE' | 'HEAD' | 'PATCH';
  /** Absolute `http:` or `https:` URL without credentials. */
  url: string;
  /** Request headers; names are case-insensitive and sent lower-cased. */
  headers?: Record<string, string>;
  /** Request body, sent as UTF-8. */
  body?: string;
  /** Timeout of this call, ms (default: the client's `timeoutMs`). */
  timeoutMs?: number;
  /**
   * Cancels the call; it then rejects with the signal's reason, as fetch does. This is the seam for
   * outer policies (e.g. a cockatiel timeout passes its own signal here).
   */
  signal?: AbortSignal;
}

/** What came back. Any status, 3xx included, is a response, not an error. */
export interface OutboundResponse {
  status: number;
  /** Lower-cased names; repeated headers joined with ', '. */
  headers: Record<string, string>;
  /** The body decoded as UTF-8, cut at `maxResponseBytes`. */
  body: string;
  /** True when the body was longer than `maxResponseBytes` and the rest was discarded. */
  truncated: boolean;
  durationMs: number;
}

/** Anything that performs outbound requests: the client itself, or the client wrapped in policies. */
export interface OutboundTransport {
  request(request: OutboundRequest): Promise<OutboundResponse>;
}

/** Why an outbound call failed. */
export type OutboundErrorCode =
  | 'invalid_url'
  | 'invalid_request'
  | 'blocked_destination'
  | 'timeout'
  | 'connection_failed';

/** An outbound call that failed. Messages name the host at most, never the path or query (they may hold tokens). */
export class OutboundError extends Error {
  readonly code: OutboundErrorCode;

  constructor(code: OutboundErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'OutboundError';
    this.code = code;
  }

  /** True for failures a retry might cure (timeouts, refused or broken connections). */
  get transient(): boolean {
    return this.code === 'timeout' || this.code === 'connection_failed';
  }
}

const DEFAULT_MAX_RESPONSE_BYTES = 1024 * 1024;
const DEFAULT_USER_AGENT = `bastion/${BUILD_INFO.version}`;
const TIMEOUT_CODES = new Set(['UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT']);
const INVALID_REQUEST_CODES = new Set(['UND_ERR_INVALID_ARG', 'UND_ERR_NOT_SUPPORTED']);

// Special-purpose IPv4 ranges that are not globally reachable (IANA registry), minus the documentation
// ranges, which route nowhere and are handy as "public" addresses in tests.
const BLOCKED_IPV4: ReadonlyArray<readonly [string, number]> = [
  ['0.0.0.0', 8], // "this network", including the unspecified address
  ['10.0.0.0', 8],
  ['100.64.0.0', 10], // CGNAT
  ['127.0.0.0', 8],
  ['169.254.0.0', 16], // link-local, including cloud metadata at 169.254.169.254
  ['172.16.0.0', 12],
  ['192.0.0.0', 24], // IETF protocol assignments
  ['192.168.0.0', 16],
  ['198.18.0.0', 15], // benchmarking
  ['224.0.0.0', 4], // multicast
  ['240.0.0.0', 4], // reserved, including broadcast 255.255.255.255
];

const BLOCKED_IPV6: ReadonlyArray<readonly [string, number]> = [
  ['::', 128],
  ['::1', 128],
  ['64:ff9b:1::', 48], // local-use NAT64
  ['100::', 64], // discard-only
  ['fc00::', 7], // unique local
  ['fe80::', 10], // link-local
  ['fec0::', 10], // deprecated site-local
  ['ff00::', 8], // multicast
];

function buildBlockList(): BlockList {
  const list = new BlockList();
  for (const [network, prefix] of BLOCKED_IPV6) list.addSubnet(network, prefix, 'ipv6');
  for (const [network, prefix] of BLOCKED_IPV4) {
    list.addSubnet(network, prefix, 'ipv4');
    // IPv6 forms that embed an IPv4 address: mapped, compatible, NAT64 (RFC 6052) and 6to4.
    const value = network.split('.').reduce((sum, octet) => sum * 256 + Number(octet), 0);
    const high = Math.floor(value / 65536).toString(16);
    const low = (value % 65536).toString(16);
    list.addSubnet(`::ffff:${high}:${low}`, 96 + prefix, 'ipv6');
    list.addSubnet(`::${high}:${low}`, 96 + prefix, 'ipv6');
    list.addSubnet(`64:ff9b::${high}:${low}`, 96 + prefix, 'ipv6');
    list.addSubnet(`2002:${high}:${low}::`, 16 + prefix, 'ipv6');
  }
  return list;
}

const BLOCKED = buildBlockList();

/** True for an address outside the public internet; anything unparseable counts as blocked. */
function isBlockedAddress(address: string): boolean {
  const bare = address.split('%', 1)[0] ?? ''; // drop an IPv6 zone id
  const family = isIP(bare);
  if (family === 0) return true;
  return BLOCKED.check(bare, family === 4 ? 'ipv4' : 'ipv6');
}

/** Marks a lookup refused by {@link guardedLookup}, so it can be told apart from DNS failures. */
class BlockedAddressError extends Error {
  constructor(hostname: string) {
    super(`${hostname} resolves to a blocked address`);
    this.name = 'BlockedAddressError';
  }
}

// Runs on the socket's own lookup, so the check covers the address actually connected to: a name that
// resolves to a private address, or that re-resolves differently later (DNS rebinding), is refused.
const guardedLookup: LookupFunction = (hostname, options, callback) => {
  dnsLookup(hostname, options, (error, address, family) => {
    if (error) return callback(error, address, family);
    const addresses = typeof address === 'string' ? [address] : address.map((entry) => entry.address);
    if (addresses.some(isBlockedAddress)) return callback(new BlockedAddressError(hostname), address, family);
    callback(null, address, family);
  });
};

function assertPositive(value: number, name: string): void {
  if (!Number.isFinite(value) || value <= 0) throw new TypeError(`${name} must be a positive number of ms`);
}

/**
 * The product's one outbound HTTP client. Never follows redirects, never retries, and by default refuses
 * private destinations. Retry and circuit-breaker policies wrap {@link OutboundClient.request} from the
 * outside (through {@link OutboundTransport}, passing their signal in {@link OutboundRequest.signal}) and
 * use {@link OutboundError.transient} to decide what to retry.
 */
export class OutboundClient implements OutboundTransport {
  readonly #agent: Agent;
  readonly #timeoutMs: number;
  readonly #allowPrivateNetworks: boolean;
  readonly #maxResponseBytes: number;
  readonly #userAgent: string;

  constructor(options: OutboundClientOptions) {
    assertPositive(options.timeoutMs, 'timeoutMs');
    const maxResponseBytes = options.maxResponseBytes ?? DEFAULT_MAX_RESPONSE_BYTES;
    if (!Number.isSafeInteger(maxResponseBytes) || maxResponseBytes < 0) {
      throw new TypeError('maxResponseBytes must be a non-negative integer');
    }
    this.#timeoutMs = options.timeoutMs;
    this.#allowPrivateNetworks = options.allowPrivateNetworks;
    this.#maxResponseBytes = maxResponseBytes;
    this.#userAgent = options.userAgent ?? DEFAULT_USER_AGENT;
    this.#agent = new Agent({
      // The connect timeout is fixed per agent; a longer per-call timeout still connects within this one.
      connect: options.allowPrivateNetworks
        ? { timeout: options.timeoutMs }
        : { timeout: options.timeoutMs, lookup: guardedLookup },
      headersTimeout: options.timeoutMs,
      bodyTimeout: options.timeoutMs,
    });
  }

  /**
   * Sends one request and reads the response body, up to `maxResponseBytes`. Rejects with an
   * {@link OutboundError}, or with the caller's abort reason when `request.signal` aborts.
   */
  async request(request: OutboundRequest): Promise<OutboundResponse> {
    const url = this.#destination(request.url);
    const timeoutMs = request.timeoutMs ?? this.#timeoutMs;
    assertPositive(timeoutMs, 'timeoutMs');
    const timeout = AbortSignal.timeout(timeoutMs);
    const signal = request.signal ? AbortSignal.any([timeout, request.signal]) : timeout;
    const headers: Record<string, string> = { 'user-agent': this.#userAgent };
    for (const [name, value] of Object.entries(request.headers ?? {})) headers[name.toLowerCase()] = value;

    const started = performance.now();
    try {
      const response = await settleOrAbort(
        undiciRequest(url, {
          dispatcher: this.#agent,
          method: request.method ?? 'GET',
          headers,
          body: request.body,
          signal,
          headersTimeout: timeoutMs,
          bodyTimeout: timeoutMs,
        }),
        signal,
      );
      const { body, truncated } = await readCapped(response.body, this.#maxResponseBytes);
      return {
        status: response.statusCode,
        headers: flattenHeaders(response.headers),
        body,
        truncated,
        durationMs: Math.round(performance.now() - started),
      };
    } catch (error) {
      if (request.signal?.aborted && !timeout.aborted) throw request.signal.reason;
      throw classify(error, url, timeout.aborted);
    }
  }

  /** Closes idle connections and waits for calls in flight. */
  async close(): Promise<void> {
    await this.#agent.close();
  }

  /** Parses the URL and refuses what may not be sent anywhere, before any connection. */
  #destination(raw: string): URL {
    let url: URL;
    try {
      url = new URL(raw);
    } catch {
      throw new OutboundError('invalid_url', 'The URL is not valid');
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') {
      throw new OutboundError('invalid_url', 'Only http and https URLs are allowed');
    }
    if (url.username !== '' || url.password !== '') {
      throw new OutboundError('invalid_url', 'The URL must not contain credentials');
    }
    if (this.#allowPrivateNetworks) return url;
    // WHATWG parsing has already turned decimal, octal, hex and short IPv4 forms into dotted quads and
    // compressed IPv6. Literal addresses skip the socket's lookup, so they are checked here; names
    // (localhost included) are checked on what they resolve to.
    const host = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
    if (isIP(host) !== 0 && isBlockedAddress(host)) {
      throw new OutboundError('blocked_destination', `Destination ${url.host} is not allowed`);
    }
    return url;
  }
}

/**
 * The request's outcome, or a rejection as soon as the signal aborts: undici only acts on an abort once
 * the connection is up, so a slow DNS answer, TCP connect or TLS handshake would outlast the timeout.
 */
function settleOrAbort(pending: Promise<Dispatcher.ResponseData>, signal: AbortSignal) {
  return new Promise<Dispatcher.ResponseData>((resolve, reject) => {
    const onAbort = () => {
      reject(signal.reason);
      pending.then((late) => late.body.on('error', ignore).destroy(), ignore);
    };
    if (signal.aborted) return onAbort();
    signal.addEventListener('abort', onAbort, { once: true });
    pending.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}

function ignore(): void {}

async function readCapped(
  stream: AsyncIterable<Buffer>,
  limit: number,
): Promise<{ body: string; truncated: boolean }> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of stream) {
    if (size + chunk.length > limit) {
      chunks.push(chunk.subarray(0, limit - size));
      // Leaving the loop destroys the stream: the rest is never downloaded.
      return { body: Buffer.concat(chunks).toString('utf8'), truncated: true };
    }
    chunks.push(chunk);
    size += chunk.length;
  }
  return { body: Buffer.concat(chunks, size).toString('utf8'), truncated: false };
}

function flattenHeaders(headers: Record<string, string | string[] | undefined>): Record<string, string> {
  const flat: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value !== undefined) flat[name] = Array.isArray(value) ? value.join(', ') : value;
  }
  return flat;
}

function classify(error: unknown, url: URL, timedOut: boolean): OutboundError {
  const chain = causes(error);
  if (chain.some((cause) => cause instanceof BlockedAddressError)) {
    return new OutboundError('blocked_destination', `Destination ${url.host} is not allowed`, {
      cause: error,
    });
  }
  const codes = chain.map((cause) => (cause as { code?: unknown }).code);
  if (timedOut || codes.some((code) => TIMEOUT_CODES.has(String(code)))) {
    return new OutboundError('timeout', `Request to ${url.host} timed out`, { cause: error });
  }
  if (codes.some((code) => INVALID_REQUEST_CODES.has(String(code)))) {
    const reason = error instanceof Error ? `: ${error.message}` : '';
    return new OutboundError('invalid_request', `The request is not valid${reason}`, { cause: error });
  }
  return new OutboundError('connection_failed', `Request to ${url.host} failed`, { cause: error });
}

/** The error, its causes and, for aggregate errors (one per address tried), their members. */
function causes(error: unknown, depth = 0): object[] {
  if (typeof error !== 'object' || error === null || depth > 8) return [];
  const nested = error instanceof AggregateError ? error.errors : [];
  return [
    error,
    ...causes((error as { cause?: unknown }).cause, depth + 1),
    ...nested.flatMap((member: unknown) => causes(member, depth + 1)),
  ];
}
