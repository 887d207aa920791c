import { performance } from 'node:perf_hooks';
import { OutboundError, type OutboundTransport } from '../../resilience/outbound-client.ts';
import { type IntegrationCredentials, secretStrings } from './integration-credentials.ts';

/** Longest part of the upstream's answer shown back, characters. */
export const SNIPPET_MAX = 200;
const REDACTED = '[redacted]';

/** The outcome of a test call, as the API answers it. */
export interface PingResult {
  /** True for a 2xx answer. */
  ok: boolean;
  /** The upstream's HTTP status; null when no answer came. */
  status: number | null;
  duration_ms: number;
  /** Why the call failed (`timeout`, `blocked_destination`, `connection_failed`, …); absent on an answer. */
  error?: string;
  /** The start of the upstream's body, with every credential value blanked out. */
  response_snippet?: string;
}

/**
 * Sends the test ping: a small JSON POST to the integration's URL with its credentials (a `token`
 * becomes `Authorization: Bearer …`, `headers` are added). Never throws for an outbound failure:
 * the failure is the result. Credentials are blanked out of the snippet before it is cut, so an
 * upstream that echoes the request cannot hand them back.
 */
export async function pingIntegration(
  outbound: OutboundTransport,
  target: { id: string; url: string },
  credentials: IntegrationCredentials,
  sentAt: string,
  timeoutMs: number,
): Promise<PingResult> {
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  for (const [name, value] of Object.entries(credentials.headers ?? {})) headers[name.toLowerCase()] = value;
  if (typeof credentials.token === 'string') headers.authorization = `Bearer ${credentials.token}`;
  const body = JSON.stringify({ type: 'bastion.ping', integration_id: target.id, sent_at: sentAt });
  const started = performance.now();
  try {
    const response = await outbound.request({ method: 'POST', url: target.url, headers, body, timeoutMs });
    let snippet = response.body;
    for (const secret of secretStrings(credentials)) snippet = snippet.replaceAll(secret, REDACTED);
    return {
      ok: response.status >= 200 && response.status < 300,
      status: response.status,
      duration_ms: Math.round(performance.now() - started),
      ...(snippet.length > 0 ? { response_snippet: snippet.slice(0, SNIPPET_MAX) } : {}),
    };
  } catch (error) {
    return {
      ok: false,
      status: null,
      duration_ms: Math.round(performance.now() - started),
      error: error instanceof OutboundError ? error.code : 'failed',
    };
  }
}
