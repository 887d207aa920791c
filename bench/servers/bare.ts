/** Stage (a): the floor. A bare Fastify route, no logger, no plugins. */
import Fastify from 'fastify';
import { announceReady, exitOnSignal, failStartup, portOf, ROUTE_PATH } from './shared.ts';

async function main(): Promise<void> {
  const app = Fastify({ logger: false });
  app.get(ROUTE_PATH, async () => ({ hello: 'world' }));
  await app.listen({ host: '127.0.0.1', port: 0 });
  exitOnSignal(() => app.close());
  announceReady(portOf(app.server.address()));
}

main().catch(failStartup);
