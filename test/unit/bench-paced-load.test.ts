// The availability benchmark's open-loop client (benchmarks/paced-load.ts) against a node:http
// server whose answers it controls: what it sends, what it times, and what it counts.

import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { pacedLoad } from '../../benchmarks/paced-load.js';

let server: Server | undefined;

async function serve(handler: (req: IncomingMessage, body: string, res: ServerResponse) => void): Promise<number> {
  server = createServer((req, res) => {
    let body = '';
    req.on('data', (chunk: Buffer) => (body += chunk.toString()));
    req.on('end', () => handler(req, body, res));
  });
  await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve));
  return (server.address() as AddressInfo).port;
}

afterEach(async () => {
  if (!server) return;
  server.closeAllConnections();
  await new Promise((resolve) => server!.close(resolve));
  server = undefined;
});

const base = { path: '/v1/availability', headers: { 'content-type': 'application/json', authorization: 'Bearer k' }, warmupSec: 0.2 };

describe('paced load (open loop, raw sockets)', () => {
  it('sends each body whole with its headers, at the rate asked, and times every answer', async () => {
    const seen: string[] = [];
    const port = await serve((req, body, res) => {
      seen.push(`${req.method} ${req.url} ${req.headers.authorization} ${req.headers['content-type']} ${body}`);
      res.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}');
    });
    const result = await pacedLoad({ port, ...base, bodies: ['{"a":1}', '{"b":"é"}'], rate: 500, durationSec: 0.6, connections: 4, trace: true });
    // 100 warm-up requests then 300 recorded, every one answered once.
    expect(seen).toHaveLength(400);
    expect(new Set(seen)).toEqual(new Set(['POST /v1/availability Bearer k application/json {"a":1}', 'POST /v1/availability Bearer k application/json {"b":"é"}']));
    expect(result).toMatchObject({ non2xx: 0, errors: 0, unanswered: 0 });
    expect(result.trace!.latencyMs).toHaveLength(300);
    expect(result.requestsPerSec).toBeGreaterThan(500 * 0.8);
    expect(result.requestsPerSec).toBeLessThan(500 * 1.1);
    expect(result.latencyMs.p50).toBeGreaterThan(0);
    expect(result.latencyMs.p50).toBeLessThanOrEqual(result.latencyMs.p99);
    expect(result.latencyMs.p99).toBeLessThanOrEqual(result.latencyMs.max);
    // The schedule: one request every 2 ms from the start of the recorded part.
    expect(result.trace!.at[0]).toBe(0);
    expect(Math.max(...result.trace!.at)).toBeCloseTo(299 * 2, 6);
  });

  it('counts the time a request waits for a free connection (no coordinated omission)', async () => {
    // One connection, answers after 20 ms, 100 requests a second: the server can answer 50, so
    // the queue grows for the whole run and the late requests wait hundreds of ms.
    const port = await serve((_req, _body, res) => setTimeout(() => res.writeHead(200).end('x'), 20));
    const result = await pacedLoad({ port, ...base, bodies: ['{}'], rate: 100, durationSec: 0.5, connections: 1, warmupSec: 0 });
    expect(result.errors).toBe(0);
    expect(result.latencyMs.p50).toBeGreaterThanOrEqual(20);
    expect(result.latencyMs.max).toBeGreaterThan(400);
  });

  it("tells the client's own stall (its lateness) from a slow server (waits only)", async () => {
    const port = await serve((_req, _body, res) => setTimeout(() => res.writeHead(200).end('x'), 20));
    // A slow server with connections to spare: latencies ~20 ms, the client on time.
    const slow = await pacedLoad({ port, ...base, bodies: ['{}'], rate: 200, durationSec: 0.5, connections: 16 });
    expect(slow.latencyMs.p50).toBeGreaterThanOrEqual(20);
    expect(slow.sendLateMsMax).toBeLessThan(15);
    // The client's event loop blocked for 80 ms during the recorded part.
    const stall = setTimeout(() => {
      const until = performance.now() + 80;
      while (performance.now() < until);
    }, 400);
    const stalled = await pacedLoad({ port, ...base, bodies: ['{}'], rate: 200, durationSec: 0.5, connections: 16 });
    clearTimeout(stall);
    expect(stalled.sendLateMsMax).toBeGreaterThanOrEqual(70);
  });

  it('counts non-2xx answers, and reads answers split over many packets', async () => {
    let n = 0;
    const port = await serve((_req, _body, res) => {
      n += 1;
      const body = 'y'.repeat(200_000);
      if (n % 4 === 0) res.writeHead(503, { 'content-length': body.length }).end(body);
      else res.writeHead(200, { 'content-length': body.length }).end(body);
    });
    const result = await pacedLoad({ port, ...base, bodies: ['{}'], rate: 200, durationSec: 0.5, connections: 2, warmupSec: 0 });
    expect(result.errors).toBe(0);
    expect(result.non2xx).toBe(25);
  });

  it('counts a request whose connection breaks as an error, and goes on on a new connection', async () => {
    let n = 0;
    const port = await serve((req, _body, res) => {
      n += 1;
      if (n % 10 === 0) req.socket.destroy();
      else res.writeHead(200).end('z');
    });
    const result = await pacedLoad({ port, ...base, bodies: ['{}'], rate: 200, durationSec: 0.5, connections: 2, warmupSec: 0 });
    expect(result.errors).toBe(10);
    expect(result.unanswered).toBe(0);
    expect(result.non2xx).toBe(0);
  });

  it('ends with every request unanswered counted as an error when nothing listens', async () => {
    const port = await serve(() => undefined);
    await new Promise((resolve) => server!.close(resolve));
    server = undefined;
    const result = await pacedLoad({ port, ...base, bodies: ['{}'], rate: 100, durationSec: 0.1, connections: 2, warmupSec: 0, graceSec: 0.3 });
    expect(result.errors).toBe(10);
    expect(result.requestsPerSec).toBe(0);
  });
});
