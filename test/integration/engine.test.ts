// The stream engine against the real Kafka and Redis: a generated stream with duplicates, late
// snapshots and out-of-order deltas ends in exactly the on-hand the reference model computes, and
// malformed events land in the DLQ with their reason while the events around them are applied.

import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { projectPath } from '../../config/paths.js';
import { afterAll, describe, expect, it } from 'vitest';
import { ensureTopics, kafkaClient } from '../../connectors/kafka.js';
import type { StockEvent } from '../../engine/core/types.js';
import { loadNetworkFile } from '../../engine/network/config.js';
import { RedisStore } from '../../engine/store/redis-store.js';
import { encodeStockEvent } from '../../engine/stream/codec.js';
import { decodeAtpChange, type AtpChange } from '../../engine/stream/wire.js';
import { StreamEngine } from '../../engine/stream/engine.js';
import { ReferenceModel } from '../support/reference-model.js';
import { kafkaBrokers, redisUrl, requireService } from '../support/services.js';

const kafkaUp = await requireService('kafka');
const redisUp = await requireService('redis');
const cleanups: (() => Promise<void>)[] = [];
afterAll(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup().catch(() => undefined);
});

const T0 = Date.now() - 7_200_000;

/**
 * The sample network plus the generated stream's locations (loc-0 … loc-3): the engine dead-letters
 * events for locations its network does not have, as `instock engine` does with NETWORK_FILE.
 */
const networkDir = mkdtempSync(join(tmpdir(), 'instock-engine-test-'));
cleanups.push(async () => rmSync(networkDir, { recursive: true, force: true }));
const networkFile = join(networkDir, 'network.json');
{
  const sample = JSON.parse(readFileSync(projectPath('config', 'network.sample.json'), 'utf8')) as { locations: { id: string }[] };
  const template = sample.locations[0]!;
  sample.locations.push(...[0, 1, 2, 3].map((i) => ({ ...template, id: `loc-${i}`, name: `Test location ${i}` })));
  writeFileSync(networkFile, JSON.stringify(sample));
}
const network = loadNetworkFile(networkFile);

/** A deterministic pseudo-random generator, so a failure can be replayed. */
function random(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s ^ (s >>> 15), 0x2c1b3c6d) + 0x6d2b79f5) >>> 0;
    return s / 2 ** 32;
  };
}

function generate(count: number, seed: number): { events: StockEvent[]; wire: { key: string; value: Buffer }[] } {
  const next = random(seed);
  const events: StockEvent[] = [];
  // Source time advances with the stream, but each event may be up to 5 s early or late: late
  // snapshots and out-of-order deltas on the same position are common.
  const asOfNear = (i: number) => T0 + i * 10 + Math.floor((next() - 0.5) * 10_000);
  const wire: { key: string; value: Buffer }[] = [];
  for (let i = 0; i < count; i++) {
    const duplicate = events.length > 0 && next() < 0.05;
    const event: StockEvent = duplicate
      ? events[Math.floor(next() * events.length)]!
      : next() < 0.3
        ? { type: 'snapshot', eventId: `e${seed}-${i}`, sku: `sku-${Math.floor(next() * 300)}`, location: `loc-${Math.floor(next() * 4)}`, qty: Math.floor(next() * 200), asOf: asOfNear(i) }
        : { type: 'delta', eventId: `e${seed}-${i}`, sku: `sku-${Math.floor(next() * 300)}`, location: `loc-${Math.floor(next() * 4)}`, qty: Math.floor(next() * 7) - 3 || 1, asOf: asOfNear(i) };
    events.push(event);
    // Both wire formats: msgpack (the default) and JSON.
    wire.push({ key: event.sku, value: i % 2 === 0 ? encodeStockEvent(event) : Buffer.from(JSON.stringify(event)) });
  }
  return { events, wire };
}

const malformed: { value: Buffer; reason: string }[] = [
  { value: Buffer.from([0xc1, 0x00, 0xff]), reason: 'not_decodable' },
  { value: Buffer.from('{"type":"delta"'), reason: 'not_decodable' },
  { value: Buffer.from(JSON.stringify({ type: 'delta', eventId: 'm1', location: 'loc-1', qty: 1, asOf: T0 })), reason: 'missing_field' },
  { value: Buffer.from(JSON.stringify({ type: 'delta', eventId: 'm2', sku: 'sku-1', location: 'loc-1', qty: 'two', asOf: T0 })), reason: 'wrong_type' },
  { value: encodeStockEvent({ type: 'snapshot', eventId: 'm3', sku: 'sku-1', location: 'loc-1', qty: -5, asOf: T0 }), reason: 'negative_snapshot' },
  { value: encodeStockEvent({ type: 'delta', eventId: 'm4', sku: 'sku-1', location: 'loc-1', qty: 0, asOf: T0 }), reason: 'zero_delta' },
  { value: encodeStockEvent({ type: 'delta', eventId: 'm5', sku: 'sku-1', location: 'loc-9', qty: 1, asOf: T0 }), reason: 'unknown_location' },
];

describe.skipIf(!kafkaUp || !redisUp)('stream engine on real Kafka and Redis', () => {
  it('applies a stream with duplicates, late and out-of-order events exactly, and dead-letters malformed ones', async () => {
    const run = randomUUID().slice(0, 8);
    const topics = { stock: `it.stock.${run}`, changes: `it.changes.${run}`, dlq: `it.dlq.${run}` };
    const kafka = kafkaClient(kafkaBrokers, 'instock-engine-test');
    const admin = kafka.admin();
    await admin.connect();
    await ensureTopics(admin, Object.values(topics).map((topic) => ({ topic, partitions: 3, replication: 1 })));
    await admin.disconnect();

    const { events, wire } = generate(Number(process.env.ENGINE_TEST_EVENTS ?? 200_000), 7);
    // Malformed events are spread through the stream, between valid ones.
    const messages = [...wire];
    malformed.forEach((m, i) => messages.splice(Math.floor(((i + 1) * wire.length) / (malformed.length + 1)), 0, { key: `sku-${i}`, value: m.value }));
    const producer = kafka.producer({ 'linger.ms': 5 } as never);
    await producer.connect();
    for (let i = 0; i < messages.length; i += 5_000) await producer.send({ topic: topics.stock, messages: messages.slice(i, i + 5_000) });
    await producer.disconnect();

    const store = RedisStore.connect({ url: redisUrl }, { keyPrefix: `eng${run}` });
    const engine = new StreamEngine({ kafka, topics, groupId: `engine-${run}`, store, network: () => network, log: (m) => console.log(m) });
    cleanups.push(() => store.close(), () => engine.stop());
    await engine.start();
    const deadline = Date.now() + 90_000;
    // Taken from Kafka is not applied: events wait in the lanes. Wait for every event's outcome.
    const settled = () => engine.counters.applied + engine.counters.duplicate + engine.counters.stale;
    while (settled() < wire.length && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));
    // At least once each: past the cold lane's bound the engine sheds and reads again later.
    expect(engine.counters.consumed).toBeGreaterThanOrEqual(messages.length);

    const model = new ReferenceModel();
    events.forEach((e) => model.apply(e));
    const skus = [...new Set(events.map((e) => e.sku))];
    for (const sku of skus) {
      const got = (await store.positions(sku, Date.now())).map((p) => [p.location, p.onHand]);
      const want = model.positions(sku, Date.now()).map((p) => [p.location, p.onHand]);
      expect(got, sku).toEqual(want);
    }
    // Large batches went through the decode worker pool.
    expect(engine.counters.workerBatches).toBeGreaterThan(0);
    // The metrics say the same as the counters.
    const metrics = await engine.metrics.registry.metrics();
    expect(metrics).toContain(`instock_engine_events_consumed_total ${engine.counters.consumed}`);
    expect(metrics).toContain(`instock_engine_events_applied_total{outcome="applied"} ${engine.counters.applied}`);
    expect(metrics).toContain('instock_engine_events_rejected_total{reason="not_decodable"} 2');
    expect(metrics).toContain('instock_engine_events_rejected_total{reason="unknown_location"} 1');
    expect(metrics).toMatch(/instock_engine_freshness_seconds_count\{tier="cold"\} \d+/);
    const rejected = Object.values(engine.counters.rejected).reduce((n, c) => n + (c ?? 0), 0);
    expect(rejected).toBe(malformed.length);
    expect(engine.counters.applied + engine.counters.duplicate + engine.counters.stale).toBe(wire.length);

    // The DLQ holds each malformed event with its reason and its original bytes.
    const dlq = kafka.consumer({ kafkaJS: { groupId: `dlq-${run}`, fromBeginning: true } });
    cleanups.push(() => dlq.disconnect());
    await dlq.connect();
    await dlq.subscribe({ topics: [topics.dlq] });
    const dead: { reason: string; value: string }[] = [];
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`DLQ gave ${dead.length}/${malformed.length}`)), 30_000);
      void dlq.run({
        eachMessage: async ({ message }) => {
          dead.push({ reason: String(message.headers?.reason), value: message.value!.toString('hex') });
          if (dead.length === malformed.length) {
            clearTimeout(timer);
            resolve();
          }
        },
      });
    });
    expect(dead.map((d) => d.reason).sort()).toEqual(malformed.map((m) => m.reason).sort());
    expect(new Set(dead.map((d) => d.value))).toEqual(new Set(malformed.map((m) => m.value.toString('hex'))));
  }, 180_000);
});


/**
 * A stream on fresh topics, a Redis database of its own and `instock engine` processes on it.
 * `changesTopic: false`: the change feed's topic is made only by createChangesTopic(), so until
 * then the engines apply events but cannot publish their changes.
 */
async function processHarness(seed: number, db: number, options: { count?: number; changesTopic?: boolean } = {}) {
  const run = randomUUID().slice(0, 8);
  const topics = { stock: `it.proc.stock.${run}`, changes: `it.proc.changes.${run}`, dlq: `it.proc.dlq.${run}` };
  const kafka = kafkaClient(kafkaBrokers, 'instock-process-test');
  const admin = kafka.admin();
  await admin.connect();
  cleanups.push(() => admin.disconnect());
  const made = options.changesTopic === false ? [topics.stock, topics.dlq] : Object.values(topics);
  await ensureTopics(admin, made.map((topic) => ({ topic, partitions: 3, replication: 1 })));
  const { events, wire } = generate(options.count ?? Number(process.env.ENGINE_TEST_EVENTS ?? 200_000), seed);
  const producer = kafka.producer({ 'linger.ms': 5 } as never);
  await producer.connect();
  for (let i = 0; i < wire.length; i += 5_000) await producer.send({ topic: topics.stock, messages: wire.slice(i, i + 5_000) });
  await producer.disconnect();

  // The engine processes use the default key prefix: give them a database of their own.
  const url = `${redisUrl}/${db}`;
  const redis = new Redis(url);
  cleanups.push(async () => redis.disconnect());
  await redis.flushdb();
  const groupId = `proc-${run}`;
  const env = {
    ...process.env,
    KAFKA_BROKERS: kafkaBrokers.join(','),
    KAFKA_TOPIC_STOCK: topics.stock,
    KAFKA_TOPIC_CHANGES: topics.changes,
    KAFKA_TOPIC_DLQ: topics.dlq,
    KAFKA_GROUP_ID: groupId,
    KAFKA_SESSION_TIMEOUT_MS: '6000',
    REDIS_URL: url,
    REDIS_CLUSTER_NODES: '',
    NETWORK_FILE: networkFile,
  };
  const children: ChildProcess[] = [];
  cleanups.push(async () => children.forEach((c) => c.kill('SIGKILL')));
  const ends = await admin.fetchTopicOffsets(topics.stock);
  const total = ends.reduce((n, e) => n + Number(e.high), 0);
  const model = new ReferenceModel();
  events.forEach((e) => model.apply(e));
  const skus = [...new Set(events.map((e) => e.sku))];
  return {
    total,
    createChangesTopic: () => ensureTopics(admin, [{ topic: topics.changes, partitions: 3, replication: 1 }]),
    /** Every event is applied in Redis (the on-hand of every position is the model's). */
    async waitForStore(timeoutMs: number): Promise<boolean> {
      const deadline = Date.now() + timeoutMs;
      const matches = async () => {
        const reader = RedisStore.connect({ url });
        try {
          for (const sku of skus) {
            const got = (await reader.positions(sku, Date.now())).map((p) => `${p.location}:${p.onHand}`).join();
            if (got !== model.positions(sku, Date.now()).map((p) => `${p.location}:${p.onHand}`).join()) return false;
          }
          return true;
        } finally {
          await reader.close();
        }
      };
      while (!(await matches())) {
        if (Date.now() > deadline) return false;
        await new Promise((r) => setTimeout(r, 250));
      }
      return true;
    },
    startEngine(): ChildProcess {
      // Each process a free metrics port: two engines run side by side.
      const child = spawn(process.execPath, [projectPath('bin', 'instock.js'), 'engine'], { env: { ...env, ENGINE_METRICS_PORT: '0' }, stdio: ['ignore', 'ignore', 'inherit'] });
      children.push(child);
      return child;
    },
    async committedTotal(): Promise<number> {
      const committed = (await admin.fetchOffsets({ groupId, topics: [topics.stock] }))[0]?.partitions ?? [];
      return committed.reduce((n, c) => n + Math.max(0, Number(c.offset)), 0);
    },
    async waitForProgress(timeoutMs: number): Promise<void> {
      const before = await this.committedTotal();
      const deadline = Date.now() + timeoutMs;
      while ((await this.committedTotal()) <= before && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    },
    async waitForEnd(timeoutMs: number): Promise<number> {
      const deadline = Date.now() + timeoutMs;
      while ((await this.committedTotal()) < total && Date.now() < deadline) await new Promise((r) => setTimeout(r, 250));
      return this.committedTotal();
    },
    async expectExact(): Promise<void> {
      const store = RedisStore.connect({ url });
      cleanups.push(() => store.close());
      // The change feed ends where the store does: for every position, the change of highest
      // version carries the store's state. A chunk applied and then killed before its changes
      // reached Kafka would leave the feed behind for positions not changed again.
      const latest = await latestChanges(kafka, topics.changes);
      let behind = 0;
      for (const sku of skus) {
        const positions = await store.positions(sku, Date.now());
        expect(positions.map((p) => [p.location, p.onHand]), sku).toEqual(model.positions(sku, Date.now()).map((p) => [p.location, p.onHand]));
        for (const p of positions) {
          const change = latest.get(`${sku}|${p.location}`);
          if (change?.version !== p.version || change.onHand !== p.onHand || change.reserved !== p.reserved) behind += 1;
        }
      }
      expect(behind, 'positions whose latest change in the feed is not their state in the store').toBe(0);
    },
  };
}

/** Every change on the topic, the one of highest version per position (`sku|location`). */
async function latestChanges(kafka: ReturnType<typeof kafkaClient>, topic: string): Promise<Map<string, AtpChange>> {
  const admin = kafka.admin();
  await admin.connect();
  const ends = await admin.fetchTopicOffsets(topic);
  await admin.disconnect();
  const total = ends.reduce((n, e) => n + Number(e.high), 0);
  const latest = new Map<string, AtpChange>();
  const consumer = kafka.consumer({ kafkaJS: { groupId: `changes-${randomUUID()}`, fromBeginning: true } });
  await consumer.connect();
  try {
    await consumer.subscribe({ topics: [topic] });
    let read = 0;
    await new Promise<void>((resolve, reject) => {
      if (total === 0) {
        resolve();
        return;
      }
      const timer = setTimeout(() => reject(new Error(`the change feed gave ${read}/${total} messages in 60 s`)), 60_000);
      void consumer.run({
        eachMessage: async ({ message }) => {
          const change = decodeAtpChange(message.value);
          if (!change) throw new Error(`a change feed message does not decode: ${message.value?.toString('hex')}`);
          const key = `${change.sku}|${change.location}`;
          if ((latest.get(key)?.version ?? -1) < change.version) latest.set(key, change);
          if (++read === total) {
            clearTimeout(timer);
            resolve();
          }
        },
      });
    });
  } finally {
    await consumer.disconnect();
  }
  return latest;
}

const exited = (child: ChildProcess) => new Promise<number | null>((r) => (child.exitCode !== null ? r(child.exitCode) : child.once('exit', (code) => r(code))));

describe.skipIf(!kafkaUp || !redisUp)('stream engine processes', () => {
  it('ends in the exact on-hand after five SIGKILLs at random moments, and stops cleanly on SIGTERM', async () => {
    const h = await processHarness(11, 9);
    const next = random(3);
    for (let kill = 0; kill < 5; kill++) {
      const child = h.startEngine();
      // Kill once the engine has committed progress since it started, at a random moment after.
      await h.waitForProgress(60_000);
      await new Promise((r) => setTimeout(r, Math.floor(next() * 100)));
      child.kill('SIGKILL');
      await exited(child);
    }
    // Every kill landed mid-stream: work was still left for the last engine.
    expect(await h.committedTotal()).toBeLessThan(h.total);
    const last = h.startEngine();
    expect(await h.waitForEnd(120_000)).toBe(h.total);
    last.kill('SIGTERM');
    expect(await exited(last)).toBe(0);
    await h.expectExact();
  }, 300_000);

  it('an engine killed after applying events but before their changes reached Kafka: the next one publishes them', async () => {
    const h = await processHarness(17, 11, { count: 3_000, changesTopic: false });
    const first = h.startEngine();
    // No changes topic: the store takes every event, the change feed none, so nothing is committed.
    expect(await h.waitForStore(60_000)).toBe(true);
    expect(await h.committedTotal()).toBe(0);
    first.kill('SIGKILL');
    await exited(first);
    await h.createChangesTopic();
    // Everything comes again as duplicates: the changes the first engine made are published now.
    const next = h.startEngine();
    expect(await h.waitForEnd(120_000)).toBe(h.total);
    next.kill('SIGTERM');
    expect(await exited(next)).toBe(0);
    await h.expectExact();
  }, 300_000);

  it('two engines share the group; when one is SIGKILLed the other takes its partitions and the result is exact', async () => {
    const h = await processHarness(13, 10);
    const survivor = h.startEngine();
    const victim = h.startEngine();
    await h.waitForProgress(60_000);
    await h.waitForProgress(60_000);
    victim.kill('SIGKILL');
    await exited(victim);
    expect(await h.committedTotal()).toBeLessThan(h.total);
    expect(await h.waitForEnd(120_000)).toBe(h.total);
    survivor.kill('SIGTERM');
    expect(await exited(survivor)).toBe(0);
    await h.expectExact();
  }, 300_000);
});
