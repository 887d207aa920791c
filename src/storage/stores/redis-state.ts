import { performance } from 'node:perf_hooks';
import { Redis } from 'ioredis';
import type { SharedState } from '../state.ts';
import { deliver } from './deliver.ts';
import { checkTtl } from './ttl.ts';

/** Options for {@link RedisState}. */
export interface RedisStateOptions {
  /** Connection URL, e.g. `redis://127.0.0.1:6379/0`. */
  url: string;
  /** Prepended to every key and channel so several deployments can share one Redis; default 'bastion:'. */
  keyPrefix?: string;
  /** Longest wait for a connection, and for any single command, in ms; default 2000. */
  connectTimeoutMs?: number;
}

// PEXPIRE only when the key has no expiry yet: the window stays fixed at creation, and a key
// written without a TTL (by set) still gets one rather than living forever.
const INCREMENT_SCRIPT = `
local value = redis.call('INCRBY', KEYS[1], ARGV[1])
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  ttl = tonumber(ARGV[2])
end
return {value, ttl}
`;

// ARGV[1] = '1' means "expect the key to be absent", which an empty expected string cannot express.
const COMPARE_AND_SET_SCRIPT = `
local current = redis.call('GET', KEYS[1])
if ARGV[1] == '1' then
  if current then return 0 end
elseif current ~= ARGV[2] then
  return 0
end
if ARGV[4] == '' then
  redis.call('SET', KEYS[1], ARGV[3])
else
  redis.call('SET', KEYS[1], ARGV[3], 'PX', ARGV[4])
end
return 1
`;

interface ScriptedRedis extends Redis {
  bastionIncrement(key: string, by: number, ttlMs: number): Promise<[number, number]>;
  bastionCompareAndSet(
    key: string,
    expectAbsent: '0' | '1',
    expected: string,
    next: string,
    ttlMs: string,
  ): Promise<number>;
}

interface Subscription {
  handler: (message: string) => void;
  active: boolean;
}

interface Channel {
  subscriptions: Set<Subscription>;
  /** Settles when Redis has confirmed the SUBSCRIBE. */
  ready: Promise<void>;
}

/** Shared state in Redis: what every instance behind a load balancer sees alike. */
export class RedisState implements SharedState {
  readonly kind = 'redis' as const;
  readonly #prefix: string;
  readonly #timeoutMs: number;
  readonly #client: ScriptedRedis;
  #subscriber: Redis | null = null;
  readonly #resubscribed = new Set<() => void>();
  readonly #channels = new Map<string, Channel>();
  readonly #connecting = new WeakMap<Redis, Promise<void>>();
  #lastError: Error | null = null;
  #closed = false;

  constructor(options: RedisStateOptions) {
    this.#prefix = options.keyPrefix ?? 'bastion:';
    this.#timeoutMs = options.connectTimeoutMs ?? 2000;
    if (!(this.#timeoutMs > 0)) throw new RangeError('connectTimeoutMs must be a positive number');
    const client = new Redis(options.url, {
      connectTimeout: this.#timeoutMs,
      // A half-open connection would otherwise leave callers waiting on TCP for minutes.
      commandTimeout: this.#timeoutMs,
      // Fail at once while disconnected instead of queueing requests behind an outage.
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      // A replayed INCRBY could count twice; the caller sees the failure and decides.
      autoResendUnfulfilledCommands: false,
      retryStrategy: (attempt) => Math.min(50 * 2 ** attempt, 2000),
    });
    client.defineCommand('bastionIncrement', { numberOfKeys: 1, lua: INCREMENT_SCRIPT });
    client.defineCommand('bastionCompareAndSet', { numberOfKeys: 1, lua: COMPARE_AND_SET_SCRIPT });
    this.#watch(client);
    this.#client = client as ScriptedRedis;
  }

  /**
   * The command connection, for storage-layer helpers that speak Redis themselves (the
   * rate limiters of `rate-limiters.ts`). Keys must carry {@link RedisState.keyPrefix}.
   */
  get client(): Redis {
    return this.#client;
  }

  /** The namespace prepended to every key and channel. */
  get keyPrefix(): string {
    return this.#prefix;
  }

  onResubscribed(handler: () => void): () => void {
    this.#resubscribed.add(handler);
    return () => this.#resubscribed.delete(handler);
  }

  /** The most recent connection or protocol error from either connection; null when none yet. */
  get lastError(): Error | null {
    return this.#lastError;
  }

  async increment(key: string, ttlMs: number, by = 1): Promise<{ value: number; ttlMs: number }> {
    const ttl = checkTtl(ttlMs);
    if (!Number.isSafeInteger(by)) throw new RangeError(`increment amount must be an integer, got ${by}`);
    const client = await this.#ready(this.#client);
    const [value, left] = await client.bastionIncrement(this.#prefix + key, by, ttl);
    return { value, ttlMs: left };
  }

  async set(key: string, value: string, ttlMs?: number): Promise<void> {
    const ttl = ttlMs === undefined ? undefined : checkTtl(ttlMs);
    const client = await this.#ready(this.#client);
    if (ttl === undefined) await client.set(this.#prefix + key, value);
    else await client.set(this.#prefix + key, value, 'PX', ttl);
  }

  async get(key: string): Promise<string | null> {
    const client = await this.#ready(this.#client);
    return client.get(this.#prefix + key);
  }

  async delete(key: string): Promise<boolean> {
    const client = await this.#ready(this.#client);
    return (await client.del(this.#prefix + key)) > 0;
  }

  async consume(key: string): Promise<string | null> {
    const client = await this.#ready(this.#client);
    return client.getdel(this.#prefix + key);
  }

  async compareAndSet(key: string, expected: string | null, next: string, ttlMs?: number): Promise<boolean> {
    const ttl = ttlMs === undefined ? '' : String(checkTtl(ttlMs));
    const client = await this.#ready(this.#client);
    const absent = expected === null ? '1' : '0';
    return (await client.bastionCompareAndSet(this.#prefix + key, absent, expected ?? '', next, ttl)) === 1;
  }

  async publish(channel: string, message: string): Promise<void> {
    const client = await this.#ready(this.#client);
    await client.publish(this.#prefix + channel, message);
  }

  async subscribe(channel: string, handler: (message: string) => void): Promise<() => Promise<void>> {
    this.#assertOpen();
    const name = this.#prefix + channel;
    let entry = this.#channels.get(name);
    if (!entry) {
      const subscriber = this.#subscriberConnection();
      const created: Channel = {
        subscriptions: new Set(),
        ready: this.#ready(subscriber).then(async () => {
          await subscriber.subscribe(name);
        }),
      };
      // Forget a failed SUBSCRIBE so the next caller tries again instead of inheriting the failure.
      created.ready.catch(() => {
        if (this.#channels.get(name) === created) this.#channels.delete(name);
      });
      this.#channels.set(name, created);
      entry = created;
    }
    const channelEntry = entry;
    const subscription: Subscription = { handler, active: true };
    channelEntry.subscriptions.add(subscription);
    try {
      await channelEntry.ready;
    } catch (error) {
      channelEntry.subscriptions.delete(subscription);
      throw error;
    }
    return async () => {
      if (!subscription.active) return;
      subscription.active = false;
      channelEntry.subscriptions.delete(subscription);
      if (channelEntry.subscriptions.size > 0 || this.#channels.get(name) !== channelEntry) return;
      this.#channels.delete(name);
      if (this.#closed || !this.#subscriber) return;
      // Delivery has already stopped locally; a lost UNSUBSCRIBE only costs ignored messages.
      await this.#subscriber.unsubscribe(name).catch(() => {});
    };
  }

  async ping(): Promise<number> {
    const client = await this.#ready(this.#client);
    const started = performance.now();
    await client.ping();
    return performance.now() - started;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const channel of this.#channels.values()) {
      for (const subscription of channel.subscriptions) subscription.active = false;
    }
    this.#channels.clear();
    await Promise.all([quit(this.#client), this.#subscriber ? quit(this.#subscriber) : undefined]);
  }

  #subscriberConnection(): Redis {
    if (this.#subscriber) return this.#subscriber;
    // A connection in subscriber mode cannot run other commands, hence a second one.
    const subscriber = this.#client.duplicate();
    this.#watch(subscriber);
    // ioredis renews the subscriptions on every reconnect; what was published meanwhile is lost.
    let connections = 0;
    subscriber.on('ready', () => {
      connections += 1;
      if (connections > 1) for (const handler of this.#resubscribed) handler();
    });
    subscriber.on('message', (channel: string, message: string) => {
      const entry = this.#channels.get(channel);
      if (!entry) return;
      for (const subscription of [...entry.subscriptions]) {
        if (subscription.active) deliver(subscription.handler, message);
      }
    });
    this.#subscriber = subscriber;
    return subscriber;
  }

  #watch(client: Redis): void {
    // Without a listener, an unreachable Redis would surface as an unhandled 'error' event.
    client.on('error', (error: Error) => {
      this.#lastError = error;
    });
  }

  /**
   * Resolves with `client` once it can take commands. Waits only while a connection attempt
   * is in flight; between attempts Redis is known to be down, so callers fail at once.
   */
  async #ready<T extends Redis>(client: T): Promise<T> {
    this.#assertOpen();
    if (client.status === 'ready') return client;
    if (client.status !== 'connecting' && client.status !== 'connect' && client.status !== 'wait') {
      throw this.#unavailable(client);
    }
    let pending = this.#connecting.get(client);
    if (!pending) {
      // One shared waiter per connection, so a burst of calls adds two listeners, not hundreds.
      pending = new Promise<void>((resolve, reject) => {
        const settle = (error: Error | null): void => {
          clearTimeout(timer);
          client.off('ready', onReady);
          client.off('close', onClose);
          this.#connecting.delete(client);
          if (error) reject(error);
          else resolve();
        };
        const onReady = (): void => settle(null);
        const onClose = (): void => settle(this.#unavailable(client));
        const timer = setTimeout(
          () => settle(new Error(`Redis did not become ready within ${this.#timeoutMs} ms`)),
          this.#timeoutMs,
        );
        client.on('ready', onReady);
        client.on('close', onClose);
      });
      this.#connecting.set(client, pending);
    }
    await pending;
    this.#assertOpen();
    return client;
  }

  #unavailable(client: Redis): Error {
    if (this.#closed) return new Error('RedisState is closed');
    const reason = this.#lastError?.message ?? `connection is ${client.status}`;
    return new Error(`Redis is unavailable: ${reason}`, { cause: this.#lastError ?? undefined });
  }

  #assertOpen(): void {
    if (this.#closed) throw new Error('RedisState is closed');
  }
}

async function quit(client: Redis): Promise<void> {
  if (client.status === 'ready') {
    try {
      await client.quit();
      return;
    } catch {
      // Fall through: the connection died mid-QUIT, so just stop it reconnecting.
    }
  }
  client.disconnect();
}
