import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { RedisState } from '../src/storage/stores/redis-state.ts';
import { listen } from '../src/storage/subscription.ts';
import { REDIS_URL_TEST, redisAvailable, uniqueName } from './support/services.ts';

const redisUp = await redisAvailable();

/**
 * When Redis pub/sub is interrupted, messages published meanwhile are lost; subscribers are told
 * when it comes back, so caches that relied on those messages (revoked sessions, API keys, roles)
 * are dropped rather than trusted.
 */
describe.skipIf(!redisUp)('pub/sub interrupted and back', () => {
  const sockets = new Set<net.Socket>();
  const relay = net.createServer((client) => {
    const target = new URL(REDIS_URL_TEST);
    const server = net.connect(Number(target.port || 6379), target.hostname);
    for (const socket of [client, server]) {
      sockets.add(socket);
      socket.on('close', () => sockets.delete(socket));
      socket.on('error', () => {});
    }
    client.pipe(server).pipe(client);
  });
  let state: RedisState;
  let publisher: RedisState;

  beforeAll(async () => {
    await new Promise<void>((resolve) => relay.listen(0, '127.0.0.1', resolve));
    const { port } = relay.address() as net.AddressInfo;
    const keyPrefix = `${uniqueName('resub')}:`;
    state = new RedisState({ url: `redis://127.0.0.1:${port}`, keyPrefix });
    publisher = new RedisState({ url: REDIS_URL_TEST, keyPrefix });
  });
  afterAll(async () => {
    await state?.close();
    await publisher?.close();
    for (const socket of sockets) socket.destroy();
    await new Promise((resolve) => relay.close(resolve));
  });

  it('tells the listener it may have missed messages, and keeps delivering after', async () => {
    const received: string[] = [];
    const recovered = vi.fn();
    const listener = listen(state, 'news', (message) => received.push(message), { onRecovered: recovered });
    await vi.waitFor(async () => {
      await publisher.publish('news', 'before');
      expect(received).toContain('before');
    });
    expect(recovered).not.toHaveBeenCalled();

    for (const socket of sockets) socket.destroy();
    await vi.waitFor(() => expect(recovered).toHaveBeenCalled(), { timeout: 10_000 });
    await vi.waitFor(async () => {
      await publisher.publish('news', 'after');
      expect(received).toContain('after');
    });
    await listener.close();
  });
});
