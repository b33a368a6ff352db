// Live stock over WebSocket: a client subscribes, stock changes through the stream (in-process in
// the embedded default; Kafka → engine → inventory.changes → gateway with real services), and the
// client receives the new ATP. Also: limits, and a client that stops reading gets coalesced values
// rather than an unbounded queue.

import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Registry } from 'prom-client';
import WebSocket from 'ws';
import { kafkaClient, ensureTopics } from '../../connectors/kafka.js';
import { VelocityTracker } from '../../engine/core/velocity.js';
import { sampleNetwork } from '../../engine/network/sample.js';
import { MemoryStore } from '../../engine/store/memory-store.js';
import { RedisStore } from '../../engine/store/redis-store.js';
import { encodeStockEvent } from '../../engine/stream/codec.js';
import { StreamEngine } from '../../engine/stream/engine.js';
import { InProcessStream } from '../../engine/stream/in-process.js';
import { ApiKeys, scopes } from '../../gateway/auth.js';
import { KafkaFeeds, LocalFeeds } from '../../gateway/feeds.js';
import { liveSubscriptionsMax } from '../../gateway/live.js';
import { NetworkState } from '../../gateway/network-state.js';
import { startGateway, type RunningGateway } from '../../gateway/server.js';
import { GatewayService } from '../../gateway/service.js';
import { kafkaBrokers, redisUrl, requireService } from '../support/services.js';

const key = 'live-key-0123456789abc';
const kafkaUp = await requireService('kafka');
const redisUp = await requireService('redis');

interface Update {
  channel: string;
  sku: string;
  atp: number;
}

/** A WebSocket client that records every update and can wait for a condition. */
class LiveClient {
  readonly messages: { type: string; updates?: Update[]; detail?: string }[] = [];
  readonly latest = new Map<string, number>();
  private waiters: (() => void)[] = [];

  constructor(readonly ws: WebSocket) {
    ws.on('message', (data) => {
      const message = JSON.parse(data.toString()) as { type: string; updates?: Update[] };
      this.messages.push(message);
      for (const u of message.updates ?? []) this.latest.set(u.sku, u.atp);
      for (const w of this.waiters) w();
    });
  }

  static async open(port: number, query = `?key=${key}`): Promise<LiveClient> {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/v1/live${query}`);
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
      ws.once('unexpected-response', (_req, res) => reject(new Error(`upgrade refused: ${res.statusCode}`)));
    });
    return new LiveClient(ws);
  }

  send(message: unknown): void {
    this.ws.send(JSON.stringify(message));
  }

  async until(what: string, condition: () => boolean, timeoutMs = 15_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!condition()) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; got ${JSON.stringify(this.messages.slice(-5))}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, 100);
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
      this.waiters = [];
    }
  }

  close(): void {
    this.ws.close();
  }
}

describe('live stock on the embedded default', () => {
  const network = sampleNetwork();
  const web = network.channels[0]!.id;
  const dc = network.locations.find((l) => l.type === 'dc' && network.channels[0]!.locations.includes(l.id))!;
  const store = new MemoryStore();
  let stream: InProcessStream;
  let gateway: RunningGateway;
  let service: GatewayService;

  beforeAll(async () => {
    const state = new NetworkState(network);
    const feeds = new LocalFeeds();
    stream = new InProcessStream({ store, network: () => state.current(), velocity: new VelocityTracker() });
    stream.onChanges((changes) => feeds.changes(changes));
    feeds.onChanges((changes) => gateway?.live?.onChanges(changes));
    await stream.submit([{ type: 'snapshot', eventId: 'l-0', sku: 'L-1', location: dc.id, qty: 100, asOf: Date.now() - 10_000 }]);
    service = new GatewayService(store, state, feeds);
    gateway = await startGateway({ host: '127.0.0.1', port: 0, registry: new Registry(), service, keys: new ApiKeys([{ name: 'live', secret: key, scopes }]), log: () => {} });
  });

  afterAll(async () => {
    gateway?.close();
    await stream?.close();
    await store.close();
  });

  it('pushes the current ATP on subscribe, then every change from the stream and from holds', async () => {
    const client = await LiveClient.open(gateway.port);
    try {
      client.send({ type: 'subscribe', channel: web, skus: ['L-1'] });
      await client.until('the initial ATP', () => client.latest.has('L-1'));
      const initial = client.latest.get('L-1')!;
      expect(initial).toBeGreaterThan(0);
      await stream.submit([{ type: 'delta', eventId: 'l-1', sku: 'L-1', location: dc.id, qty: -40, asOf: Date.now() }]);
      await client.until('the stream change', () => client.latest.get('L-1') !== initial);
      const afterDelta = client.latest.get('L-1')!;
      expect(afterDelta).toBeLessThan(initial);
      const hold = await fetch(`http://127.0.0.1:${gateway.port}/v1/reservations`, {
        method: 'POST',
        headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
        body: JSON.stringify({ reservationId: 'live-h1', channel: web, lines: [{ sku: 'L-1', location: dc.id, qty: 5 }] }),
      });
      expect(hold.status).toBe(201);
      await client.until('the hold change', () => client.latest.get('L-1') === afterDelta - 5);
    } finally {
      client.close();
    }
  });

  it('refuses a connection without a valid key, and subscriptions past the limit', async () => {
    await expect(LiveClient.open(gateway.port, '')).rejects.toThrow(/401/);
    await expect(LiveClient.open(gateway.port, '?key=wrong-key-0123456789')).rejects.toThrow(/401/);
    const client = await LiveClient.open(gateway.port);
    try {
      client.send({ type: 'subscribe', channel: web, skus: Array.from({ length: liveSubscriptionsMax + 1 }, (_, i) => `X-${i}`) });
      await client.until('an error', () => client.messages.some((m) => m.type === 'error'));
      expect(client.messages.find((m) => m.type === 'error')!.detail).toContain(`at most ${liveSubscriptionsMax}`);
      client.send({ type: 'subscribe', channel: 'nope', skus: ['L-1'] });
      await client.until('a second error', () => client.messages.filter((m) => m.type === 'error').length === 2);
      client.send('not json');
      await client.until('a third error', () => client.messages.filter((m) => m.type === 'error').length === 3);
    } finally {
      client.close();
    }
  });

  it('charges every message to the key rate limit: a re-subscribe loop cannot read the store without bound', async () => {
    // 2 requests/s, a 2-second burst: 4 tokens, the upgrade takes one.
    const limited = await startGateway({ host: '127.0.0.1', port: 0, registry: new Registry(), service, keys: new ApiKeys([{ name: 'live', secret: key, scopes }]), rateLimitRps: 2, log: () => {} });
    const client = await LiveClient.open(limited.port);
    try {
      for (let i = 0; i < 10; i++) client.send({ type: 'subscribe', channel: web, skus: ['L-1'] });
      const answered = () => client.messages.filter((m) => m.type === 'subscribed' || m.type === 'error').length;
      await client.until('an answer to each message', () => answered() === 10);
      const refused = client.messages.filter((m) => m.type === 'error');
      expect(refused.length).toBeGreaterThanOrEqual(6);
      expect(refused[0]!.detail).toContain('over its rate limit');
      expect(client.messages.filter((m) => m.type === 'subscribed').length).toBeLessThanOrEqual(4);
      const metrics = await (await fetch(`http://127.0.0.1:${limited.port}/metrics`)).text();
      expect(metrics).toMatch(/instock_gateway_rate_limited_total\{key="live"\} ([6-9]|10)\b/);
    } finally {
      client.close();
      await limited.close();
    }
  });

  it('coalesces bursts of changes: a client gets the latest values, not every change', async () => {
    const client = await LiveClient.open(gateway.port);
    try {
      const skus = Array.from({ length: 10 }, (_, i) => `C-${i}`);
      await stream.submit(skus.map((sku, i) => ({ type: 'snapshot', eventId: `c-s-${i}`, sku, location: dc.id, qty: 1000, asOf: Date.now() - 5_000 })));
      client.send({ type: 'subscribe', channel: web, skus });
      await client.until('initial values', () => skus.every((s) => client.latest.has(s)));
      const before = client.messages.length;
      // 2,000 changes (200 per SKU) in 20 batches.
      for (let b = 0; b < 20; b++) {
        await stream.submit(skus.flatMap((sku) => Array.from({ length: 10 }, (_, k) => ({ type: 'delta', eventId: `c-d-${sku}-${b}-${k}`, sku, location: dc.id, qty: -1, asOf: Date.now() - 1000 + b }))));
      }
      expect((await store.positions('C-0', Date.now()))[0]!.onHand).toBe(800);
      const want = await service.channelAtps(web, skus, Date.now());
      await client.until('final values', () => skus.every((s) => client.latest.get(s) === want.get(s)));
      await new Promise((r) => setTimeout(r, 300));
      const received = client.messages.slice(before).reduce((n, m) => n + (m.updates?.length ?? 0), 0);
      expect(received).toBeLessThan(2_000 / 4);
    } finally {
      client.close();
    }
  });
});

describe('live stock for a client that stops reading', () => {
  it('stops writing past the buffered-amount bound, keeps only the latest values, and catches up when the client reads again', async () => {
    const network = sampleNetwork();
    const web = network.channels[0]!.id;
    const dc = network.locations.find((l) => l.type === 'dc' && network.channels[0]!.locations.includes(l.id))!;
    const store = new MemoryStore();
    const state = new NetworkState(network);
    const feeds = new LocalFeeds();
    const stream = new InProcessStream({ store, network: () => state.current(), velocity: new VelocityTracker() });
    const sink: { gateway?: RunningGateway } = {};
    stream.onChanges((changes) => feeds.changes(changes));
    feeds.onChanges((changes) => sink.gateway?.live?.onChanges(changes));
    const service = new GatewayService(store, state, feeds);
    const gateway = await startGateway({ host: '127.0.0.1', port: 0, registry: new Registry(), service, keys: new ApiKeys([{ name: 'live', secret: key, scopes }]), log: () => {} });
    sink.gateway = gateway;
    const skus = Array.from({ length: liveSubscriptionsMax }, (_, i) => `SLOW-${String(i).padStart(4, '0')}`);
    const client = await LiveClient.open(gateway.port);
    try {
      await stream.submit(skus.map((sku, i) => ({ type: 'snapshot', eventId: `slow-s-${i}`, sku, location: dc.id, qty: 10_000, asOf: Date.now() - 60_000 })));
      client.send({ type: 'subscribe', channel: web, skus });
      await client.until('initial values', () => skus.every((s) => client.latest.has(s)));
      // The client stops reading: its socket buffer fills, then the server's.
      (client.ws as unknown as { _socket: { pause(): void; resume(): void } })._socket.pause();
      const before = client.messages.length;
      // Enough data to fill the kernel buffers of both ends (loopback send buffers autotune up to 4 MB).
      const rounds = 160;
      for (let r = 0; r < rounds; r++) {
        await stream.submit(skus.map((sku, i) => ({ type: 'delta', eventId: `slow-d-${r}-${i}`, sku, location: dc.id, qty: -1, asOf: Date.now() - 30_000 + r })));
        // Let a live tick run between rounds: each would send every SKU again to a reading client.
        await new Promise((resolve) => setTimeout(resolve, 60));
      }
      const metrics = await (await fetch(`http://127.0.0.1:${gateway.port}/metrics`)).text();
      const coalesced = Number(/instock_gateway_ws_coalesced_total\{reason="coalesced"\} (\d+)/.exec(metrics)?.[1] ?? 0);
      // Updates were replaced in the client's pending map instead of queued: memory stayed bounded.
      expect(coalesced).toBeGreaterThan(liveSubscriptionsMax);
      (client.ws as unknown as { _socket: { resume(): void } })._socket.resume();
      const want = await service.channelAtps(web, skus, Date.now());
      await client.until('the latest values after catching up', () => skus.every((s) => client.latest.get(s) === want.get(s)), 30_000);
      const updatesAfterPause = client.messages.slice(before).reduce((n, m) => n + (m.updates?.length ?? 0), 0);
      // Far fewer updates than rounds x SKUs reached the client: the slow client got the latest values only.
      expect(updatesAfterPause).toBeLessThan((rounds * skus.length) / 2);
    } finally {
      client.close();
      gateway.close();
      await stream.close();
      await store.close();
    }
  }, 120_000);
});

describe.skipIf(!kafkaUp || !redisUp)('live stock through Kafka', () => {
  it('a stock event produced to Kafka reaches a subscribed WebSocket client through the engine and the change feed', async () => {
    const suffix = randomUUID().slice(0, 8);
    const topics = { stock: `live-stock-${suffix}`, changes: `live-changes-${suffix}`, dlq: `live-dlq-${suffix}`, reservations: `live-res-${suffix}` };
    const kafka = kafkaClient(kafkaBrokers, 'live-test');
    const admin = kafka.admin();
    await admin.connect();
    await ensureTopics(admin, Object.values(topics).map((topic) => ({ topic, partitions: 2, replication: 1 })));
    await admin.disconnect();
    const network = sampleNetwork();
    const web = network.channels[0]!.id;
    const dc = network.locations.find((l) => l.type === 'dc' && network.channels[0]!.locations.includes(l.id))!;
    const store = RedisStore.connect({ url: `${redisUrl}/12` });
    const state = new NetworkState(network);
    const engine = new StreamEngine({ kafka, topics, groupId: `live-engine-${suffix}`, store, network: () => state.current(), velocity: new VelocityTracker(), registry: new Registry() } as ConstructorParameters<typeof StreamEngine>[0]);
    const feeds = new KafkaFeeds(kafka, { changes: topics.changes, reservations: topics.reservations }, () => {});
    let gateway: RunningGateway | undefined;
    const producer = kafka.producer();
    try {
      await feeds.start((changes) => gateway?.live?.onChanges(changes));
      await engine.start();
      gateway = await startGateway({ host: '127.0.0.1', port: 0, registry: new Registry(), service: new GatewayService(store, state, feeds), keys: new ApiKeys([{ name: 'live', secret: key, scopes }]), log: () => {} });
      const sku = `K-${suffix}`;
      const client = await LiveClient.open(gateway.port);
      client.send({ type: 'subscribe', channel: web, skus: [sku] });
      await client.until('the initial (zero) ATP', () => client.latest.get(sku) === 0);
      await producer.connect();
      await producer.send({ topic: topics.stock, messages: [{ key: sku, value: encodeStockEvent({ type: 'snapshot', eventId: `k-${suffix}`, sku, location: dc.id, qty: 60, asOf: Date.now() }) }] });
      await client.until('the ATP from Kafka', () => (client.latest.get(sku) ?? 0) > 0, 30_000);
      client.close();
    } finally {
      await producer.disconnect().catch(() => {});
      gateway?.close();
      await engine.stop();
      await feeds.stop();
      await store.close();
    }
  }, 90_000);
});
