import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { type AddressInfo, createServer as createNetServer, type Socket } from 'node:net';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { OutboundClient, OutboundError, type OutboundErrorCode } from './outbound-client.ts';

interface Received {
  method: string;
  url: string;
  headers: IncomingMessage['headers'];
  body: string;
}

interface TestServer {
  server: Server;
  origin: string;
  port: number;
  received: Received[];
  connections: number;
}

/** A real listener on 127.0.0.1 that records every connection and request it sees. */
async function startServer(
  handle: (request: Received, response: ServerResponse) => void,
): Promise<TestServer> {
  const state = { received: [] as Received[], connections: 0 };
  const server = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      const received = {
        method: request.method ?? '',
        url: request.url ?? '',
        headers: request.headers,
        body: Buffer.concat(chunks).toString('utf8'),
      };
      state.received.push(received);
      handle(received, response);
    });
  });
  server.on('connection', () => {
    state.connections += 1;
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    server,
    port,
    origin: `http://127.0.0.1:${port}`,
    get received() {
      return state.received;
    },
    get connections() {
      return state.connections;
    },
  };
}

async function stopServer(test: TestServer): Promise<void> {
  test.server.closeAllConnections();
  await new Promise<void>((resolve) => test.server.close(() => resolve()));
}

function failure(code: OutboundErrorCode) {
  return { name: 'OutboundError', code };
}

/** 'response' when the call got one, otherwise the OutboundError code it failed with. */
async function outcomeOf(promise: Promise<unknown>): Promise<string> {
  const error = await promise.then(
    () => null,
    (reason: unknown) => reason,
  );
  if (error === null) return 'response';
  expect(error).toBeInstanceOf(OutboundError);
  return (error as OutboundError).code;
}

const BIG = 'x'.repeat(10_000);

function route(request: Received, response: ServerResponse): void {
  switch (request.url) {
    case '/hang':
      return; // never answers
    case '/stall-body':
      response.writeHead(200, { 'content-type': 'text/plain' });
      response.write('partial');
      return; // the body never ends
    case '/redirect':
      response.writeHead(302, { location: '/target' });
      response.end('moved');
      return;
    case '/big':
      response.writeHead(200, { 'content-type': 'text/plain' });
      response.end(BIG);
      return;
    default:
      response.writeHead(201, { 'content-type': 'application/json', 'set-cookie': ['a=1', 'b=2'] });
      response.end(JSON.stringify({ method: request.method, url: request.url }));
  }
}

describe('OutboundClient with private networks allowed', () => {
  let server: TestServer;
  let client: OutboundClient;

  beforeAll(async () => {
    server = await startServer(route);
  });
  afterAll(async () => {
    await stopServer(server);
  });
  beforeEach(() => {
    client = new OutboundClient({ timeoutMs: 5_000, allowPrivateNetworks: true });
  });
  afterEach(async () => {
    await client.close();
  });

  it('sends a GET and returns status, flattened headers and body', async () => {
    const response = await client.request({
      url: `${server.origin}/things?x=1`,
      headers: { 'X-Probe': 'one' },
    });
    expect(response.status).toBe(201);
    expect(response.headers['content-type']).toBe('application/json');
    expect(response.headers['set-cookie']).toBe('a=1, b=2');
    expect(JSON.parse(response.body)).toEqual({ method: 'GET', url: '/things?x=1' });
    expect(response.truncated).toBe(false);
    expect(response.durationMs).toBeGreaterThanOrEqual(0);
    const received = server.received.at(-1);
    expect(received?.headers['x-probe']).toBe('one');
    expect(received?.headers['user-agent']).toMatch(/^bastion\/\d+\.\d+\.\d+/);
  });

  it('sends a POST with its body and headers', async () => {
    const payload = JSON.stringify({ text: 'héllo' });
    const response = await client.request({
      method: 'POST',
      url: `${server.origin}/hook`,
      headers: { 'Content-Type': 'application/json', 'User-Agent': 'custom-agent' },
      body: payload,
    });
    expect(response.status).toBe(201);
    const received = server.received.at(-1);
    expect(received).toMatchObject({ method: 'POST', url: '/hook', body: payload });
    expect(received?.headers['content-type']).toBe('application/json');
    expect(received?.headers['content-length']).toBe(String(Buffer.byteLength(payload)));
    // The request's own User-Agent replaces the default rather than being sent twice.
    expect(received?.headers['user-agent']).toBe('custom-agent');
  });

  it('sends the configured User-Agent and returns an empty body for HEAD', async () => {
    const custom = new OutboundClient({ timeoutMs: 5_000, allowPrivateNetworks: true, userAgent: 'probe/1' });
    try {
      const response = await custom.request({ method: 'HEAD', url: `${server.origin}/head` });
      expect(response).toMatchObject({ status: 201, body: '', truncated: false });
      expect(server.received.at(-1)?.headers['user-agent']).toBe('probe/1');
    } finally {
      await custom.close();
    }
  });

  it('reaches the local server by name too', async () => {
    const response = await client.request({ url: `http://localhost:${server.port}/by-name` });
    expect(response.status).toBe(201);
  });

  it('returns a redirect as is, without following it', async () => {
    const before = server.received.length;
    const response = await client.request({ url: `${server.origin}/redirect` });
    expect(response).toMatchObject({ status: 302, body: 'moved' });
    expect(response.headers.location).toBe('/target');
    expect(server.received.slice(before).map((request) => request.url)).toEqual(['/redirect']);
  });

  it('cuts the body at maxResponseBytes and says so', async () => {
    const small = new OutboundClient({
      timeoutMs: 5_000,
      allowPrivateNetworks: true,
      maxResponseBytes: 1000,
    });
    const exact = new OutboundClient({
      timeoutMs: 5_000,
      allowPrivateNetworks: true,
      maxResponseBytes: BIG.length,
    });
    try {
      const cut = await small.request({ url: `${server.origin}/big` });
      expect(cut).toMatchObject({ status: 200, truncated: true });
      expect(cut.body).toBe(BIG.slice(0, 1000));
      const whole = await exact.request({ url: `${server.origin}/big` });
      expect(whole).toMatchObject({ status: 200, truncated: false, body: BIG });
      // The client stays usable after discarding a body.
      expect((await small.request({ url: `${server.origin}/after` })).status).toBe(201);
    } finally {
      await small.close();
      await exact.close();
    }
  });

  it('times out against a server that never answers (default and per-call timeouts)', async () => {
    const quick = new OutboundClient({ timeoutMs: 200, allowPrivateNetworks: true });
    try {
      await expect(quick.request({ url: `${server.origin}/hang` })).rejects.toMatchObject(failure('timeout'));
    } finally {
      await quick.close();
    }
    await expect(client.request({ url: `${server.origin}/hang`, timeoutMs: 200 })).rejects.toMatchObject(
      failure('timeout'),
    );
  });

  it('times out while still connecting (a TLS handshake that never completes)', {
    timeout: 5_000,
  }, async () => {
    // undici only honours an abort once connected; the client's default (longer than this test may run)
    // shows the per-call timeout cuts the connect phase short too.
    const patient = new OutboundClient({ timeoutMs: 60_000, allowPrivateNetworks: true });
    const sockets: Socket[] = [];
    const silent = createNetServer((socket) => sockets.push(socket)); // never answers the ClientHello
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const { port } = silent.address() as AddressInfo;
    try {
      await expect(
        patient.request({ url: `https://127.0.0.1:${port}/`, timeoutMs: 200 }),
      ).rejects.toMatchObject(failure('timeout'));
    } finally {
      for (const socket of sockets) socket.destroy(); // ends the pending handshake, so close() can finish
      await new Promise<void>((resolve) => silent.close(() => resolve()));
      await patient.close();
    }
  });

  it('times out when the body stalls after the headers', async () => {
    await expect(
      client.request({ url: `${server.origin}/stall-body`, timeoutMs: 200 }),
    ).rejects.toMatchObject(failure('timeout'));
  });

  it('rejects with the caller’s reason when the caller aborts', async () => {
    const controller = new AbortController();
    const reason = new Error('stopped by caller');
    const pending = client.request({ url: `${server.origin}/hang`, signal: controller.signal });
    setTimeout(() => controller.abort(reason), 50);
    await expect(pending).rejects.toBe(reason);
  });

  it('reports a refused connection as connection_failed', async () => {
    const closed = await startServer(route);
    const { port } = closed;
    await stopServer(closed);
    const error = await client
      .request({ url: `http://127.0.0.1:${port}/` })
      .catch((reason: unknown) => reason);
    expect(error).toMatchObject({ ...failure('connection_failed'), transient: true });
  });

  it('reports a header undici refuses as invalid_request', async () => {
    await expect(
      client.request({ url: `${server.origin}/`, headers: { 'x-bad': 'one\r\ninjected: two' } }),
    ).rejects.toMatchObject(failure('invalid_request'));
  });

  it('still refuses credentials in the URL', async () => {
    const before = server.connections;
    await expect(
      client.request({ url: `http://user:secret@127.0.0.1:${server.port}/` }),
    ).rejects.toMatchObject(failure('invalid_url'));
    expect(server.connections).toBe(before);
  });
});

describe('OutboundClient with private networks refused (the default)', () => {
  let server: TestServer;
  let client: OutboundClient;

  beforeAll(async () => {
    server = await startServer(route);
  });
  afterAll(async () => {
    await stopServer(server);
  });
  beforeEach(() => {
    client = new OutboundClient({ timeoutMs: 2_000, allowPrivateNetworks: false });
  });
  afterEach(async () => {
    await client.close();
  });

  const blocked = (port: number) => [
    `http://127.0.0.1:${port}/`,
    `http://localhost:${port}/`,
    `http://LOCALHOST:${port}/`,
    `http://2130706433:${port}/`,
    `http://0177.0.0.1:${port}/`,
    `http://0x7f.0.0.1:${port}/`,
    `http://0x7f000001:${port}/`,
    `http://127.1:${port}/`,
    `http://127.0.0.1.:${port}/`,
    `http://[::ffff:127.0.0.1]:${port}/`,
    `http://[::ffff:7f00:1]:${port}/`,
    `http://[0:0:0:0:0:ffff:7f00:1]:${port}/`,
    `http://[::127.0.0.1]:${port}/`,
    `http://[::1]:${port}/`,
    `http://[::]:${port}/`,
    `http://0.0.0.0:${port}/`,
    `http://0:${port}/`,
    'http://169.254.169.254/latest/meta-data/',
    'http://[::ffff:169.254.169.254]/latest/meta-data/',
    'http://[fd00:ec2::254]/latest/meta-data/',
    'http://10.0.0.1/',
    'http://172.16.5.4/',
    'http://192.168.1.1/',
    'http://100.64.0.1/',
    'http://224.0.0.1/',
    'http://255.255.255.255/',
    'http://[fe80::1]/',
    'http://[fc00::1]/',
    'http://[ff02::1]/',
    'https://[64:ff9b::7f00:1]/', // NAT64 form of 127.0.0.1
    'https://[64:ff9b::a9fe:a9fe]/', // NAT64 form of 169.254.169.254
    'https://[2002:c0a8:101::]/', // 6to4 form of 192.168.1.1
  ];

  it('refuses every private, loopback, link-local and reserved destination before connecting', async () => {
    const urls = blocked(server.port);
    for (const url of urls) {
      await expect(client.request({ url }), url).rejects.toMatchObject(failure('blocked_destination'));
    }
    expect(server.connections).toBe(0);
    expect(server.received).toEqual([]);
  });

  it('marks blocked destinations as not transient and does not echo the path', async () => {
    const error = await client
      .request({ url: `http://localhost:${server.port}/hooks/secret-token` })
      .catch((reason: unknown) => reason);
    expect(error).toMatchObject({ ...failure('blocked_destination'), transient: false });
    expect((error as Error).message).not.toContain('secret-token');
    expect(server.connections).toBe(0);
  });

  it('lets public addresses through (documentation ranges, which route nowhere)', async () => {
    const quick = new OutboundClient({ timeoutMs: 200, allowPrivateNetworks: false });
    try {
      for (const url of [
        'http://192.0.2.1:9/',
        'http://[::ffff:198.51.100.7]:9/',
        'http://[64:ff9b::cb00:7101]:9/',
      ]) {
        // Whatever the network here does with them (nothing, refuse, an egress proxy), they pass the guard.
        const outcome = await outcomeOf(quick.request({ url }));
        expect(['response', 'timeout', 'connection_failed'], url).toContain(outcome);
      }
    } finally {
      await quick.close();
    }
  });

  it('refuses URLs that are not plain http(s) without credentials', async () => {
    const invalid = [
      'ftp://example.com/file',
      'javascript:alert(1)',
      'file:///etc/passwd',
      'data:text/plain,hello',
      'http://user:pass@example.com/',
      'https://user@example.com/',
      'https://:pass@example.com/',
      'not a url',
      '',
      'http://',
      'http://[::1/',
      '/relative/path',
    ];
    for (const url of invalid) {
      await expect(client.request({ url }), url).rejects.toMatchObject(failure('invalid_url'));
    }
  });
});

describe('OutboundClient options', () => {
  it('refuses unusable options at construction', () => {
    expect(() => new OutboundClient({ timeoutMs: 0, allowPrivateNetworks: false })).toThrow(TypeError);
    expect(() => new OutboundClient({ timeoutMs: Number.NaN, allowPrivateNetworks: false })).toThrow(
      TypeError,
    );
    expect(
      () => new OutboundClient({ timeoutMs: 1000, allowPrivateNetworks: false, maxResponseBytes: -1 }),
    ).toThrow(TypeError);
    expect(
      () => new OutboundClient({ timeoutMs: 1000, allowPrivateNetworks: false, maxResponseBytes: 1.5 }),
    ).toThrow(TypeError);
  });
});
