import {
  OutboundError,
  type OutboundRequest,
  type OutboundResponse,
  type OutboundTransport,
} from '../../resilience/outbound-client.ts';
import { DeliveryError } from '../types.ts';

const DETAIL_CHARS = 200;

/**
 * Sends one request of channel `channel` and returns the response when it is a 2xx. Anything else
 * becomes a {@link DeliveryError}: retryable for timeouts, connection failures, 408, 429 and 5xx
 * (with the receiver's Retry-After), permanent for other answers and for URLs the client refuses.
 * When the caller's signal aborts, the call rejects with the signal's reason, untouched.
 * `nowMs` dates an HTTP-date Retry-After. Messages name the host only: paths may be secrets.
 */
export async function deliverHttp(
  transport: OutboundTransport,
  channel: string,
  request: OutboundRequest,
  nowMs: number,
): Promise<OutboundResponse> {
  const host = new URL(request.url).host;
  let response: OutboundResponse;
  try {
    response = await transport.request(request);
  } catch (error) {
    if (request.signal?.aborted) throw error;
    if (error instanceof OutboundError) {
      throw new DeliveryError(`${channel}: ${error.message}`, { retryable: error.transient, cause: error });
    }
    // A transport wrapped in other policies may fail in its own ways; nothing says a retry is futile.
    const reason = error instanceof Error ? error.message : String(error);
    throw new DeliveryError(`${channel}: request to ${host} failed: ${reason}`, {
      retryable: true,
      cause: error,
    });
  }
  if (response.status >= 200 && response.status < 300) return response;
  const { status } = response;
  const retryable = status === 408 || status === 429 || status >= 500;
  throw new DeliveryError(`${channel}: ${host} answered HTTP ${status}${responseDetail(response.body)}`, {
    retryable,
    retryAfterSeconds: retryable ? parseRetryAfter(response.headers['retry-after'], nowMs) : null,
  });
}

/** The start of a response body, on one line, for error messages (`: …`), or nothing. */
export function responseDetail(body: string): string {
  const text = body.replace(/\s+/g, ' ').trim();
  if (text === '') return '';
  return `: ${text.length > DETAIL_CHARS ? `${text.slice(0, DETAIL_CHARS)}…` : text}`;
}

/** Seconds a Retry-After header asks for (delta-seconds or an HTTP-date), or null when absent or unreadable. */
export function parseRetryAfter(header: string | undefined, nowMs: number): number | null {
  if (header === undefined) return null;
  const text = header.trim();
  if (/^\d+$/.test(text)) return Number(text);
  const at = Date.parse(text);
  if (Number.isNaN(at)) return null;
  return Math.max(0, Math.ceil((at - nowMs) / 1000));
}
