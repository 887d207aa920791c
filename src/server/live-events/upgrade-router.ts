import { createServer, type IncomingMessage, type Server, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { FastifyInstance } from 'fastify';

/**
 * Once a server has an 'upgrade' listener, Node hands it every request carrying an `Upgrade`
 * header, on a socket no HTTP server manages any more; @fastify/websocket's listener would route
 * them all and leave the sockets of non-WebSocket routes open. This sends upgrades of `path` to
 * the returned stand-in server (it never listens; give it to @fastify/websocket as `server`) and
 * serves every other upgrade request as the plain HTTP request it also is (a server may ignore
 * `Upgrade`, e.g. curl's `h2c`), closing the connection after the response or after `idleMs`.
 */
export function routeUpgrades(app: FastifyInstance, path: string, idleMs: number): Server {
  const upgrades = createServer();
  const withQuery = `${path}?`;
  app.server.on('upgrade', (request: IncomingMessage, duplex: Duplex, head: Buffer) => {
    const url = request.url ?? '';
    if (url === path || url.startsWith(withQuery)) {
      upgrades.emit('upgrade', request, duplex, head);
      return;
    }
    // An http(s) server's upgrade stream is its net.Socket (or TLSSocket).
    const socket = duplex as Socket;
    socket.on('error', () => socket.destroy());
    socket.setTimeout(idleMs, () => socket.destroy());
    const response = new ServerResponse(request);
    response.shouldKeepAlive = false;
    response.assignSocket(socket);
    response.on('finish', () => socket.end());
    app.routing(request, response);
  });
  return upgrades;
}
