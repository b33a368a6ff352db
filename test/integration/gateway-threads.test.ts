// Gateway threads (gateway/threads.ts). `instock gateway` with GATEWAY_THREADS=2 against real
// Redis: both threads serve one port, taking its connections in turn, /metrics sums them whichever thread answers the scrape, a
// reservation placed through one thread is the same through the other, a retry takes nothing
// twice, SIGTERM stops every thread. `instock start` on its embedded default with
// GATEWAY_THREADS=2: two threads serve from the main thread's in-memory store (stock events sent
// through any thread are read through every other and pushed to live subscribers on both, holds are taken once, errors keep their
// status), and a thread count out of range is refused with a clear error.

import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { projectPath } from '../../config/paths.js';
import { sampleNetwork, sampleSku, sampleStockEvents } from '../../engine/network/sample.js';
import { RedisStore } from '../../engine/store/redis-store.js';
import { redisUrl, requireService } from '../support/services.js';

const redisUp = await requireService('redis');
/** Redis db of this file (engine tests 9/10/13, gateway 11/12, processes 13). */
const url = `${redisUrl}/14`;
const key = 'threads-key-0123456789abcdef';
const children: ChildProcess[] = [];
afterAll(() => {
  for (const child of children) if (child.exitCode === null) child.kill('SIGKILL');
});

function gateway(env: Record<string, string>, command: 'gateway' | 'start' = 'gateway'): { child: ChildProcess; ready: Promise<number>; exited: Promise<{ code: number | null; output: string }> } {
  const child = spawn(process.execPath, [projectPath('bin', 'instock.js'), command], {
    env: { ...process.env, GATEWAY_PORT: '0', GATEWAY_API_KEYS: `t:${key}:availability:read+reservations:write+admin`, KAFKA_BROKERS: '', REDIS_CLUSTER_NODES: '', CLICKHOUSE_URL: '', SAMPLE_SKUS: '0', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(child);
  let output = '';
  let onReady: (port: number) => void = () => {};
  const ready = new Promise<number>((resolve) => (onReady = resolve));
  const collect = (chunk: Buffer) => {
    output += chunk.toString();
    const match = /ready in \d+ ms on http:\/\/[^:]+:(\d+) .*, 2 gateway threads/.exec(output);
    if (match) onReady(Number(match[1]));
  };
  child.stdout!.on('data', collect);
  child.stderr!.on('data', collect);
  const exited = new Promise<{ code: number | null; output: string }>((resolve) => child.once('exit', (code) => resolve({ code, output })));
  return { child, ready, exited };
}

/** One request on a connection of its own (connections, not requests, are handed to the threads in turn). */
function call(port: number, method: string, path: string, body?: unknown): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const req = request({ host: '127.0.0.1', port, method, path, agent: false, headers: { authorization: `Bearer ${key}`, ...(payload ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) } : {}) } }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (text += c));
      res.on('end', () => resolve({ status: res.statusCode!, text }));
    });
    req.on('error', reject);
    req.end(payload);
  });
}

/** A live-stock subscriber: the latest ATP pushed for each SKU. */
async function subscribe(port: number, channel: string, skus: string[]): Promise<{ latest: Map<string, number>; close: () => void }> {
  const ws = new WebSocket(`ws://127.0.0.1:${port}/v1/live?key=${key}`);
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  const latest = new Map<string, number>();
  const subscribed = new Promise<void>((resolve) =>
    ws.on('message', (data) => {
      const message = JSON.parse(data.toString()) as { type: string; updates?: { sku: string; atp: number }[] };
      for (const u of message.updates ?? []) latest.set(u.sku, u.atp);
      if (message.type === 'subscribed') resolve();
    }),
  );
  ws.send(JSON.stringify({ type: 'subscribe', channel, skus }));
  await subscribed;
  return { latest, close: () => ws.close() };
}

async function until(what: string, condition: () => boolean): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** The value of one series in an exposition text (0 when absent). */
function series(text: string, name: string): number {
  const line = text.split('\n').find((l) => l.startsWith(`${name} `));
  return line ? Number(line.slice(name.length + 1)) : 0;
}

describe.skipIf(!redisUp)('instock gateway with GATEWAY_THREADS=2 (real Redis)', () => {
  it('serves one port from both threads, sums their metrics, shares reservations, and stops on SIGTERM', async () => {
    const raw = new Redis(url);
    await raw.flushdb();
    raw.disconnect();
    const store = RedisStore.connect({ url });
    await store.applyEvents(sampleStockEvents(sampleNetwork(), { skus: 20, asOfMs: Date.UTC(2026, 0, 1) }));
    await store.close();

    const running = gateway({ REDIS_URL: url, GATEWAY_THREADS: '2' });
    const port = await Promise.race([running.ready, running.exited.then(({ output }) => Promise.reject(new Error(`gateway exited:\n${output}`)))]);

    const basket = { channel: 'web', lines: [1, 2, 3].map((i) => ({ sku: sampleSku(i), qty: 1 })), destination: { lat: 48.8566, lon: 2.3522 }, pickup: { near: { lat: 48.8566, lon: 2.3522 }, radiusKm: 50 } };
    const answers = [];
    for (let wave = 0; wave < 6; wave++) answers.push(...(await Promise.all(Array.from({ length: 10 }, () => call(port, 'POST', '/v1/availability', basket)))));
    expect(answers.map((a) => a.status)).toEqual(Array(60).fill(200));
    expect((JSON.parse(answers[0]!.text) as { options: unknown[] }).options.length).toBeGreaterThan(0);

    // Every scrape, whichever thread takes it, gives the sum over both threads.
    for (let scrape = 0; scrape < 4; scrape++) {
      const { status, text } = await call(port, 'GET', '/metrics');
      expect(status).toBe(200);
      expect(series(text, 'instock_gateway_requests_total{route="/v1/availability",method="POST",status="200"}')).toBe(60);
      const byThread = [series(text, 'instock_gateway_thread_requests_total{thread="0"}'), series(text, 'instock_gateway_thread_requests_total{thread="1"}')];
      expect(byThread[0]! + byThread[1]!).toBe(60);
      // 60 connections, handed to the threads in turn: 30 each. (When each thread listened on the
      // port itself, the kernel's hash of the connections' addresses split them unevenly.)
      expect(byThread).toEqual([30, 30]);
      // Process-wide series once (from the main thread), not summed over threads.
      expect(text.match(/^process_cpu_seconds_total /gm)).toHaveLength(1);
    }

    // A hold placed through one connection is the same reservation through the others, and a
    // retry (on whichever thread) takes nothing twice.
    const positions = JSON.parse((await call(port, 'GET', `/v1/positions/${sampleSku(1)}`)).text) as { positions: { location: string; onHand: number; reserved: number }[] };
    const dc = positions.positions.filter((p) => p.location.startsWith('DC')).sort((a, b) => b.onHand - a.onHand)[0]!;
    const hold = { reservationId: 'threads-r1', channel: 'web', lines: [{ sku: sampleSku(1), location: dc.location, qty: 2 }] };
    const holds = await Promise.all(Array.from({ length: 8 }, () => call(port, 'POST', '/v1/reservations', hold)));
    for (const h of holds) expect(JSON.parse(h.text)).toMatchObject({ id: 'threads-r1', state: 'held' });
    for (let read = 0; read < 4; read++) {
      expect(JSON.parse((await call(port, 'GET', '/v1/reservations/threads-r1')).text)).toMatchObject({ id: 'threads-r1', state: 'held' });
      const after = JSON.parse((await call(port, 'GET', `/v1/positions/${sampleSku(1)}`)).text) as { positions: { location: string; reserved: number }[] };
      expect(after.positions.find((p) => p.location === dc.location)!.reserved).toBe(dc.reserved + 2);
    }

    running.child.kill('SIGTERM');
    const { code, output } = await running.exited;
    expect(code).toBe(0);
    expect(output).toContain('instock: stopping');
  }, 60_000);

  it('refuses a thread count out of range, saying what is accepted', async () => {
    for (const threads of ['0', '65', 'two']) {
      const refused = await gateway({ REDIS_URL: url, GATEWAY_THREADS: threads }).exited;
      expect(refused.code).not.toBe(0);
      expect(refused.output).toContain(`GATEWAY_THREADS`);
      expect(refused.output).toContain('an integer between 1 and 64');
    }
  }, 60_000);
});

describe('instock start (embedded default) with GATEWAY_THREADS=2', () => {
  it('serves from two threads on the main thread\'s in-memory store: events, reads, holds and errors agree on every thread', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'instock-threads-'));
    const running = gateway({ REDIS_URL: '', GATEWAY_THREADS: '2', SAMPLE_SKUS: '20', INSTOCK_DATA_DIR: dataDir }, 'start');
    const port = await Promise.race([running.ready, running.exited.then(({ output }) => Promise.reject(new Error(`instock start exited:\n${output}`)))]);
    const sku = sampleSku(3);
    const network = sampleNetwork();

    // Stock sent through whichever thread takes the connection is what every connection reads.
    const atpOf = async () => {
      const answers = await Promise.all(Array.from({ length: 12 }, () => call(port, 'POST', '/v1/availability/skus', { channel: 'web', skus: [sku] })));
      return answers.map((a) => {
        expect(a.status).toBe(200);
        return (JSON.parse(a.text) as { items: { atp: number }[] }).items[0]!.atp;
      });
    };
    // Two live subscribers, one on each thread (connections are handed out in turn).
    const live = [await subscribe(port, 'web', [sku]), await subscribe(port, 'web', [sku])];
    const zero = network.locations.map((l, i) => ({ type: 'snapshot', eventId: `z-${i}`, sku, location: l.id, qty: 0, asOf: Date.UTC(2026, 5, 1) }));
    expect((await call(port, 'POST', '/v1/events', { events: zero })).status).toBe(200);
    expect(await atpOf()).toEqual(Array(12).fill(0));
    const dc = network.locations.find((l) => l.id.startsWith('DC'))!.id;
    expect((await call(port, 'POST', '/v1/events', { events: [{ type: 'snapshot', eventId: 'z-dc', sku, location: dc, qty: 40, asOf: Date.UTC(2026, 5, 2) }] })).status).toBe(200);
    const stocked = await atpOf();
    expect(stocked[0]).toBeGreaterThan(0);
    expect(new Set(stocked).size).toBe(1);
    // The change reached both threads' subscribers over WebSocket.
    for (const subscriber of live) await until('the live change', () => subscriber.latest.get(sku) === stocked[0]);
    for (const subscriber of live) subscriber.close();

    // A hold sent 8 times at once over separate connections is taken once; every thread reads it.
    const hold = { reservationId: 'embedded-r1', channel: 'web', lines: [{ sku, location: dc, qty: 5 }] };
    const holds = await Promise.all(Array.from({ length: 8 }, () => call(port, 'POST', '/v1/reservations', hold)));
    for (const h of holds) expect(JSON.parse(h.text)).toMatchObject({ id: 'embedded-r1', state: 'held' });
    expect(await atpOf()).toEqual(Array(12).fill(stocked[0]! - 5));
    const positions = JSON.parse((await call(port, 'GET', `/v1/positions/${sku}`)).text) as { positions: { location: string; onHand: number; reserved: number }[] };
    expect(positions.positions.find((p) => p.location === dc)).toMatchObject({ onHand: 40, reserved: 5 });

    // The store's errors keep their status through a thread.
    for (let k = 0; k < 4; k++) {
      const missing = await call(port, 'POST', '/v1/reservations/nobody/confirm');
      expect(missing.status).toBe(404);
      expect(JSON.parse(missing.text)).toMatchObject({ code: 'unknown_reservation' });
    }

    // Both threads served (the main thread keeps the store and serves none).
    const { text } = await call(port, 'GET', '/metrics');
    const byThread = [series(text, 'instock_gateway_thread_requests_total{thread="1"}'), series(text, 'instock_gateway_thread_requests_total{thread="2"}')];
    expect(Math.min(...byThread)).toBeGreaterThan(0);
    expect(series(text, 'instock_gateway_thread_requests_total{thread="0"}')).toBe(0);

    running.child.kill('SIGTERM');
    const { code, output } = await running.exited;
    expect(code).toBe(0);
    expect(output).toContain('instock: stopping');
    rmSync(dataDir, { recursive: true, force: true });
  }, 90_000);

  it('limits a key\'s rate for the process, not for each thread', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'instock-threads-'));
    const running = gateway({ REDIS_URL: '', GATEWAY_THREADS: '2', GATEWAY_RATE_LIMIT_RPS: '5', INSTOCK_DATA_DIR: dataDir }, 'start');
    const port = await Promise.race([running.ready, running.exited.then(({ output }) => Promise.reject(new Error(`instock start exited:\n${output}`)))]);
    // 40 requests over separate connections (both threads take some): a burst of 2 s worth (10)
    // and 5 more a second pass; buckets of each thread's own would let through twice the burst.
    const t0 = Date.now();
    const answers = await Promise.all(Array.from({ length: 40 }, () => call(port, 'GET', '/v1/positions/NO-SUCH-SKU')));
    const elapsedSec = (Date.now() - t0) / 1000;
    const passed = answers.filter((a) => a.status !== 429).length;
    expect(answers.filter((a) => a.status === 429).length + passed).toBe(40);
    expect(passed).toBeGreaterThanOrEqual(10);
    expect(passed).toBeLessThanOrEqual(10 + Math.ceil(5 * elapsedSec));
    const { text } = await call(port, 'GET', '/metrics');
    expect(Math.min(series(text, 'instock_gateway_thread_requests_total{thread="1"}'), series(text, 'instock_gateway_thread_requests_total{thread="2"}'))).toBeGreaterThan(0);
    // Connections kept alive (fetch's pool) when it stops: a thread ending with uWS sockets open
    // aborted the process (SIGABRT, libuv's loop closed with open handles) before they were closed.
    for (let k = 0; k < 4; k++) await fetch(`http://127.0.0.1:${port}/health`);
    running.child.kill('SIGTERM');
    const exited = await running.exited;
    expect(exited.output).not.toContain('open handles');
    expect(exited.code).toBe(0);
    rmSync(dataDir, { recursive: true, force: true });
  }, 60_000);
});
