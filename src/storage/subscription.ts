import type { SharedState } from './state.ts';

/** How long to wait before trying a failed subscription again. */
export const SUBSCRIBE_RETRY_MS = 5000;

/** A subscription kept alive by {@link listen}. */
export interface Listener {
  /** Ends the subscription and any pending retry. */
  close(): Promise<void>;
}

/**
 * Subscribes to `channel` without holding up start-up: while shared state is unreachable the
 * subscription is retried in the background every `retryMs`, and `onRecovered` runs once it
 * succeeds after a failure, and whenever the backend's pub/sub comes back after an interruption
 * (messages sent meanwhile were missed: drop caches that relied on them).
 */
export function listen(
  state: SharedState,
  channel: string,
  handler: (message: string) => void,
  options: { retryMs?: number; onRecovered?: () => void } = {},
): Listener {
  let closed = false;
  let failed = false;
  let retry: NodeJS.Timeout | null = null;
  let unsubscribe: (() => Promise<void>) | null = null;
  const attempt = (): void => {
    if (closed) return;
    state.subscribe(channel, handler).then(
      async (end) => {
        if (closed) return end();
        unsubscribe = end;
        if (failed) options.onRecovered?.();
      },
      () => {
        failed = true;
        retry = setTimeout(attempt, options.retryMs ?? SUBSCRIBE_RETRY_MS);
        retry.unref();
      },
    );
  };
  attempt();
  const stopWatching = options.onRecovered ? state.onResubscribed(options.onRecovered) : () => {};
  return {
    async close() {
      closed = true;
      stopWatching();
      if (retry) clearTimeout(retry);
      await unsubscribe?.().catch(() => {});
    },
  };
}
