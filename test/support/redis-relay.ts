import net from 'node:net';
import { REDIS_URL_TEST } from './services.ts';

/** A TCP relay in front of the test Redis that can be cut and restored. */
export function relay() {
  let up = true;
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    sockets.add(client);
    client.on('close', () => sockets.delete(client));
    client.on('error', () => {});
    if (!up) return client.destroy();
    const target = new URL(REDIS_URL_TEST);
    const upstream = net.connect(Number(target.port || 6379), target.hostname);
    sockets.add(upstream);
    upstream.on('close', () => sockets.delete(upstream));
    upstream.on('error', () => client.destroy());
    client.pipe(upstream).pipe(client);
  });
  return {
    async start(): Promise<string> {
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      return `redis://127.0.0.1:${(server.address() as net.AddressInfo).port}`;
    },
    cut(): void {
      up = false;
      for (const socket of sockets) socket.destroy();
    },
    restore(): void {
      up = true;
    },
    async stop(): Promise<void> {
      this.cut();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}
