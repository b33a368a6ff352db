// The engine's priority lanes against the real Kafka and Redis: hot SKUs' events overtake a cold
// backlog while no committed offset ever passes an event not yet applied; partitions pause at the
// lane bound and resume with nothing lost; the change feed carries channel ATP; reservation
// transitions feed velocity.

import { randomUUID } from 'node:crypto';
import { Registry } from 'prom-client';
import { afterAll, describe, expect, it } from 'vitest';
import { ensureTopics, kafkaClient, type KafkaClient } from '../../connectors/kafka.js';
import type { Channel, Location, StockEvent } from '../../engine/core/types.js';
import { VelocityTracker } from '../../engine/core/velocity.js';
import { RedisStore } from '../../engine/store/redis-store.js';
import type { InventoryStore } from '../../engine/store/types.js';
import { encodeStockEvent } from '../../engine/stream/codec.js';
import { StreamEngine } from '../../engine/stream/engine.js';
import { decodeAtpChange, encodeReservationTransition, type AtpChange } from '../../engine/stream/wire.js';
import { ReferenceModel } from '../support/reference-model.js';
import { kafkaBrokers, redisUrl, requireService } from '../support/services.js';

const kafkaUp = await requireService('kafka');
const redisUp = await requireService('redis');
const cleanups: (() => Promise<void>)[] = [];
afterAll(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup().catch(() => undefined);
});

/** Redis db of these tests (engine.test.ts uses 9/10, the gateway's 11-12). */
const db = 13;
const T0 = Date.now() - 3_600_000;

async function topicsFor(kafka: KafkaClient, partitions: number) {
  const run = randomUUID().slice(0, 8);
  const topics = { stock: `it.lanes.stock.${run}`, changes: `it.lanes.changes.${run}`, dlq: `it.lanes.dlq.${run}`, reservations: `it.lanes.res.${run}` };
  const admin = kafka.admin();
  await admin.connect();
  await ensureTopics(admin, Object.values(topics).map((topic) => ({ topic, partitions, replication: 1 })));
  await admin.disconnect();
  return { run, topics };
}

async function produce(kafka: KafkaClient, topic: string, messages: { key: string; value: Buffer }[]): Promise<void> {
  const producer = kafka.producer({ 'linger.ms': 5 } as never);
  await producer.connect();
  for (let i = 0; i < messages.length; i += 5_000) await producer.send({ topic, messages: messages.slice(i, i + 5_000) });
  await producer.disconnect();
}

/** A store that records what it applied, in order, and can be slowed down (to build a backlog). */
function recordingStore(inner: InventoryStore, delayMs: number) {
  const applied: StockEvent[] = [];
  const store: InventoryStore = Object.create(inner) as InventoryStore;
  store.applyEvents = async (events, nowMs) => {
    if (delayMs > 0) await new Promise((r) => setTimeout(r, delayMs));
    const results = await inner.applyEvents(events, nowMs);
    applied.push(...events);
    return results;
  };
  return { store, applied };
}

async function waitFor(what: string, condition: () => boolean | Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function expectExact(store: InventoryStore, events: StockEvent[]): Promise<void> {
  const model = new ReferenceModel();
  events.forEach((e) => model.apply(e));
  for (const sku of [...new Set(events.map((e) => e.sku))]) {
    const got = (await store.positions(sku, Date.now())).map((p) => [p.location, p.onHand]);
    expect(got, sku).toEqual(model.positions(sku, Date.now()).map((p) => [p.location, p.onHand]));
  }
}

/** `count` events on one partition's worth of SKUs: every 10th on one of 7 hot SKUs, the rest on 700 cold ones. */
function hotEveryTenth(count: number): StockEvent[] {
  return Array.from({ length: count }, (_, i) =>
    i % 10 === 0
      ? { type: 'delta', eventId: `h${i}`, sku: `HOT-${i % 7}`, location: `loc-${i % 3}`, qty: -1, asOf: T0 + i }
      : i % 4 === 1
        ? { type: 'snapshot', eventId: `c${i}`, sku: `cold-${i % 700}`, location: `loc-${i % 3}`, qty: 50 + (i % 17), asOf: T0 + i }
        : { type: 'delta', eventId: `c${i}`, sku: `cold-${i % 700}`, location: `loc-${i % 3}`, qty: (i % 5) - 2 || 1, asOf: T0 + i },
  );
}

/** Velocity that tiers hotEveryTenth's SKUs: HOT-* hot, cold-* cold. */
function hotAndColdVelocity(): VelocityTracker {
  const velocity = new VelocityTracker();
  const now = Date.now();
  for (let i = 0; i < 700; i++) velocity.record(`cold-${i}`, 'web', 0.01, now);
  for (let k = 0; k < 7; k++) velocity.record(`HOT-${k}`, 'web', 1_000, now);
  velocity.retier(now);
  return velocity;
}

describe.skipIf(!kafkaUp || !redisUp)('stream engine lanes on real Kafka and Redis', () => {
  it('hot events overtake a cold backlog, and the committed offset never passes an unapplied event', async () => {
    const kafka = kafkaClient(kafkaBrokers, 'instock-lanes-test');
    const { run, topics } = await topicsFor(kafka, 1);
    // One partition: offset i is event i. 30,000 cold events, then 5,000 on hot SKUs (more than a
    // fetched batch: at least one batch is all hot, and its ticket settles before older cold ones),
    // then 3,000 cold.
    const cold = (from: number, count: number): StockEvent[] =>
      Array.from({ length: count }, (_, k) => {
        const i = from + k;
        return i % 4 === 0
          ? { type: 'snapshot', eventId: `c${i}`, sku: `cold-${i % 500}`, location: `loc-${i % 3}`, qty: 50 + (i % 17), asOf: T0 + i }
          : { type: 'delta', eventId: `c${i}`, sku: `cold-${i % 500}`, location: `loc-${i % 3}`, qty: (i % 5) - 2 || 1, asOf: T0 + i };
      });
    const hot: StockEvent[] = Array.from({ length: 5_000 }, (_, k) => ({ type: 'delta', eventId: `h${k}`, sku: `HOT-${k % 5}`, location: `loc-${k % 3}`, qty: -1, asOf: T0 + 40_000 + k }));
    const events = [...cold(0, 30_000), ...hot, ...cold(35_000, 3_000)];
    const hotFirstOffset = 30_000;
    await produce(kafka, topics.stock, events.map((e) => ({ key: e.sku, value: encodeStockEvent(e) })));

    const velocity = new VelocityTracker();
    const now = Date.now();
    for (let i = 0; i < 500; i++) velocity.record(`cold-${i}`, 'web', 0.01, now);
    for (let k = 0; k < 5; k++) velocity.record(`HOT-${k}`, 'web', 1_000, now);
    velocity.retier(now);
    expect(velocity.tier('HOT-4', now)).toBe('hot');

    const redis = RedisStore.connect({ url: `${redisUrl}/${db}` }, { keyPrefix: `lanes${run}` });
    cleanups.push(() => redis.close());
    // 25 ms per chunk of 1,000: the backlog builds while Kafka delivers far faster.
    const { store, applied } = recordingStore(redis, 25);
    const engine = new StreamEngine({ kafka, topics, groupId: `lanes-${run}`, store, velocity, registry: new Registry() });
    cleanups.push(() => engine.stop());

    // The watermark rule, checked at every commit seen: every offset below it was applied.
    const offsetOf = new Map(events.map((e, i) => [e.eventId, i]));
    const isApplied = new Uint8Array(events.length);
    let appliedSeen = 0;
    let lowestUnapplied = 0;
    let commitsChecked = 0;
    const violations: string[] = [];
    let unappliedColdWhenHotApplied = -1;
    const check = () => {
      for (; appliedSeen < applied.length; appliedSeen++) {
        const e = applied[appliedSeen]!;
        const offset = offsetOf.get(e.eventId)!;
        if (e.sku.startsWith('HOT-') && unappliedColdWhenHotApplied < 0) unappliedColdWhenHotApplied = hotFirstOffset - lowestUnappliedAt();
        isApplied[offset] = 1;
      }
      for (; commitsChecked < engine.commits.length; commitsChecked++) {
        const committed = Number(engine.commits[commitsChecked]!.offset);
        if (committed > lowestUnappliedAt()) violations.push(`committed ${committed} while offset ${lowestUnappliedAt()} was not applied`);
      }
    };
    const lowestUnappliedAt = () => {
      while (lowestUnapplied < events.length && isApplied[lowestUnapplied]) lowestUnapplied++;
      return lowestUnapplied;
    };
    await engine.start();
    const checker = setInterval(check, 1);
    try {
      await waitFor('every event applied and committed', () => applied.length >= events.length && engine.commits.at(-1)?.offset === BigInt(events.length), 120_000);
    } finally {
      clearInterval(checker);
    }
    check();
    expect(violations, 'a commit passed an event not yet applied').toEqual([]);
    expect(commitsChecked).toBeGreaterThan(3);
    // When the first hot event was applied, thousands of cold events before it in the partition were still waiting.
    expect(unappliedColdWhenHotApplied).toBeGreaterThan(5_000);
    // Every hot event was applied before the cold backlog ahead of it in the partition was done.
    const lastHot = applied.findLastIndex((e) => e.sku.startsWith('HOT-'));
    const lastColdBefore = applied.findLastIndex((e) => offsetOf.get(e.eventId)! < hotFirstOffset);
    expect(lastHot).toBeLessThan(lastColdBefore);
    expect(engine.pipeline.taken.hot).toBe(hot.length);
    const metrics = await engine.metrics.registry.metrics();
    expect(metrics).toContain(`instock_engine_freshness_seconds_count{tier="hot"} ${hot.length}`);
    await expectExact(redis, events);
  }, 180_000);

  it('reads first: while a partition has a backlog left to read, only hot and warm events are applied; cold ones wait until reading has caught up', async () => {
    const kafka = kafkaClient(kafkaBrokers, 'instock-lanes-test');
    const { run, topics } = await topicsFor(kafka, 1);
    // One partition, 40,000 events, every 10th on a hot SKU: far more than the engine holds back
    // for (1,000 left to read), so reading is behind until near the end.
    const events = hotEveryTenth(40_000);
    await produce(kafka, topics.stock, events.map((e) => ({ key: e.sku, value: encodeStockEvent(e) })));
    const velocity = hotAndColdVelocity();
    const redis = RedisStore.connect({ url: `${redisUrl}/${db}` }, { keyPrefix: `first${run}` });
    cleanups.push(() => redis.close());
    // No delay: the store keeps up; only reading order decides what is applied first.
    const { store, applied } = recordingStore(redis, 0);
    // Every event decoded when read (undecoded cold off): the next test covers the default.
    const engine = new StreamEngine({ kafka, topics, groupId: `first-${run}`, store, velocity, registry: new Registry(), undecodedColdLag: 0 });
    cleanups.push(() => engine.stop());
    let heldSeen = false;
    const watch = setInterval(() => void engine.metrics.registry.getSingleMetricAsString('instock_engine_cold_held').then((m) => (heldSeen ||= / 1$/m.test(m))), 5);
    await engine.start();
    try {
      await waitFor('every event applied and committed', () => applied.length >= events.length && engine.commits.at(-1)?.offset === BigInt(events.length), 120_000);
    } finally {
      clearInterval(watch);
    }
    const hotCount = events.filter((e) => e.sku.startsWith('HOT-')).length;
    const firstCold = applied.findIndex((e) => e.sku.startsWith('cold-'));
    const hotBeforeFirstCold = applied.slice(0, firstCold).filter((e) => e.sku.startsWith('HOT-')).length;
    // All but the hot events in the last stretch read (at most ~1,000 left to read, plus a batch) came before any cold one.
    expect(hotBeforeFirstCold, `hot events applied before the first cold one, of ${hotCount}`).toBeGreaterThan(hotCount - 400);
    expect(heldSeen).toBe(true);
    expect(engine.counters.undecodedCold).toBe(0);
    await expectExact(redis, events);
  }, 180_000);

  it('keeps cold events undecoded while reading is behind, decodes them when their turn comes, and dead-letters the bad ones among them with their bytes', async () => {
    const kafka = kafkaClient(kafkaBrokers, 'instock-lanes-test');
    const { run, topics } = await topicsFor(kafka, 1);
    // One partition, 30,000 events, every 10th on a hot SKU; among the cold ones, 30 bad messages
    // keyed by cold SKUs: 10 not decodable, 10 negative snapshots, 10 with an unknown location.
    const events = hotEveryTenth(30_000);
    const bad = Array.from({ length: 30 }, (_, k) => {
      const sku = `cold-${(k * 23) % 700}`;
      const value =
        k % 3 === 0
          ? Buffer.from(`\xc1 not msgpack ${k}`, 'latin1')
          : encodeStockEvent({ type: 'snapshot', eventId: `bad${k}`, sku, location: k % 3 === 1 ? 'loc-0' : 'nowhere', qty: k % 3 === 1 ? -5 : 5, asOf: T0 + k });
      return { key: sku, value, reason: k % 3 === 0 ? 'not_decodable' : k % 3 === 1 ? 'negative_snapshot' : 'unknown_location' };
    });
    const messages = events.map((e) => ({ key: e.sku, value: encodeStockEvent(e) }));
    // Spread over offsets 5,000 to 16,600: reading is still far behind when they are read.
    bad.forEach((b, k) => messages.splice(5_000 + k * 400, 0, { key: b.key, value: b.value }));
    await produce(kafka, topics.stock, messages);
    const velocity = hotAndColdVelocity();
    const redis = RedisStore.connect({ url: `${redisUrl}/${db}` }, { keyPrefix: `undecoded${run}` });
    cleanups.push(() => redis.close());
    const { store, applied } = recordingStore(redis, 0);
    const engine = new StreamEngine({ kafka, topics, groupId: `undecoded-${run}`, store, velocity, registry: new Registry(), locations: ['loc-0', 'loc-1', 'loc-2'], undecodedColdLag: 5_000 });
    cleanups.push(() => engine.stop());
    await engine.start();
    await waitFor('every message applied or dead-lettered, and committed', () => applied.length >= events.length && engine.commits.at(-1)?.offset === BigInt(messages.length), 120_000);

    // Most cold events waited as bytes: the partition was more than 5,000 behind for all but its
    // last 5,000 messages (and a first batch read before its lag was known).
    const coldCount = events.filter((e) => e.sku.startsWith('cold-')).length;
    expect(engine.counters.undecodedCold).toBeGreaterThan(coldCount * 0.6);
    // The bad ones were among them, and each was counted once by its reason.
    expect(engine.counters.rejected).toEqual({ not_decodable: 10, negative_snapshot: 10, unknown_location: 10 });
    const metrics = await engine.metrics.registry.metrics();
    expect(metrics).toContain(`instock_engine_cold_undecoded_total ${engine.counters.undecodedCold}`);
    expect(metrics).toContain('instock_engine_events_rejected_total{reason="negative_snapshot"} 10');
    // Each is in the DLQ with its reason, its original bytes and where it came from.
    const dlq = kafka.consumer({ kafkaJS: { groupId: `dlq-${run}`, fromBeginning: true } });
    cleanups.push(() => dlq.disconnect());
    await dlq.connect();
    await dlq.subscribe({ topics: [topics.dlq] });
    const dead: { key: string; value: string; reason: string; offset: string }[] = [];
    void dlq.run({
      eachMessage: async ({ message }) => {
        dead.push({ key: String(message.key), value: message.value!.toString('hex'), reason: String(message.headers?.reason), offset: String(message.headers?.['source.offset']) });
      },
    });
    await waitFor('the DLQ holds the 30 bad messages', () => dead.length >= bad.length, 30_000);
    const offsetOf = (b: (typeof bad)[number]) => String(messages.findIndex((m) => m.value === b.value));
    expect(dead.map((d) => `${d.key} ${d.reason} ${d.offset} ${d.value}`).sort()).toEqual(bad.map((b) => `${b.key} ${b.reason} ${offsetOf(b)} ${b.value.toString('hex')}`).sort());
    // Hot events still went first, and the ATP is exact.
    const firstCold = applied.findIndex((e) => e.sku.startsWith('cold-'));
    expect(applied.slice(0, firstCold).filter((e) => e.sku.startsWith('HOT-')).length).toBeGreaterThan(3_000 - 400);
    await expectExact(redis, events);
  }, 180_000);

  it('pauses partitions at the lane bound and resumes them; nothing is lost or applied twice', async () => {
    const kafka = kafkaClient(kafkaBrokers, 'instock-lanes-test');
    const { run, topics } = await topicsFor(kafka, 3);
    const events: StockEvent[] = Array.from({ length: 60_000 }, (_, i) =>
      i % 5 === 0
        ? { type: 'snapshot', eventId: `p${i}`, sku: `sku-${i % 700}`, location: `loc-${i % 4}`, qty: i % 90, asOf: T0 + i }
        : { type: 'delta', eventId: `p${i}`, sku: `sku-${i % 700}`, location: `loc-${i % 4}`, qty: (i % 7) - 3 || 2, asOf: T0 + i },
    );
    await produce(kafka, topics.stock, events.map((e) => ({ key: e.sku, value: encodeStockEvent(e) })));
    const redis = RedisStore.connect({ url: `${redisUrl}/${db}` }, { keyPrefix: `pause${run}` });
    cleanups.push(() => redis.close());
    // 20 ms per chunk of 1,000: applying stays under the reading rate, so the lane reaches its
    // bound (the shed test below needed the same margin on a fast Redis).
    const { store, applied } = recordingStore(redis, 20);
    const coldMax = 3_000;
    const engine = new StreamEngine({ kafka, topics, groupId: `pause-${run}`, store, laneEventsMax: { cold: coldMax }, coldOverflow: 'pause', registry: new Registry() });
    cleanups.push(() => engine.stop());
    let depthMax = 0;
    let pausedSeen = 0;
    const sampler = setInterval(() => {
      depthMax = Math.max(depthMax, engine.pipeline.depth('cold'));
      pausedSeen = Math.max(pausedSeen, engine.counters.pauses - engine.counters.resumes);
    }, 1);
    await engine.start();
    try {
      await waitFor('every event applied and committed', () => {
        const committed = new Map(engine.commits.map((c) => [c.partition, c.offset]));
        return engine.counters.applied + engine.counters.duplicate + engine.counters.stale >= events.length && [...committed.values()].reduce((n, o) => n + Number(o), 0) === events.length;
      }, 120_000);
    } finally {
      clearInterval(sampler);
    }
    expect(engine.counters.pauses).toBeGreaterThan(0);
    expect(engine.counters.resumes).toBe(engine.counters.pauses);
    expect(pausedSeen).toBeGreaterThan(0);
    // Past the bound by at most the messages in hand when it was reached: the consume call being
    // taken and the next one, 2,000 messages each.
    expect(depthMax).toBeLessThanOrEqual(coldMax + 2 * 2_000);
    // Each event taken from Kafka once (a pause seeks to the next offset: no re-delivery), applied once.
    expect(engine.counters.consumed).toBe(events.length);
    expect(applied.length).toBe(events.length);
    expect(engine.counters.duplicate).toBe(0);
    const metrics = await engine.metrics.registry.metrics();
    expect(metrics).toContain('instock_engine_paused_partitions 0');
    await expectExact(redis, events);
  }, 180_000);

  it('sheds cold events at the cold bound while hot ones keep flowing, rewinds, and ends exact with no commit past an unapplied event', async () => {
    const kafka = kafkaClient(kafkaBrokers, 'instock-lanes-test');
    const { run, topics } = await topicsFor(kafka, 3);
    // SKU i lives in partition i % 3; 1 in 5 events is on one of 10 hot SKUs.
    const skuOf = (i: number) => (i % 5 === 0 ? `HOT-${i % 10}` : `C-${i % 900}`);
    const partitionOf = (sku: string) => Number(sku.split('-')[1]) % 3;
    const events: StockEvent[] = Array.from({ length: 60_000 }, (_, i) =>
      i % 7 === 0
        ? { type: 'snapshot', eventId: `s${i}`, sku: skuOf(i), location: `loc-${i % 4}`, qty: 40 + (i % 60), asOf: T0 + i }
        : { type: 'delta', eventId: `s${i}`, sku: skuOf(i), location: `loc-${i % 4}`, qty: (i % 7) - 3 || 2, asOf: T0 + i },
    );
    const byPartition: StockEvent[][] = [[], [], []];
    for (const e of events) byPartition[partitionOf(e.sku)]!.push(e);
    const producer = kafka.producer({ 'linger.ms': 5 } as never);
    await producer.connect();
    for (let p = 0; p < 3; p++) {
      const list = byPartition[p]!;
      for (let i = 0; i < list.length; i += 5_000) await producer.send({ topic: topics.stock, messages: list.slice(i, i + 5_000).map((e) => ({ key: e.sku, value: encodeStockEvent(e), partition: p })) });
    }
    await producer.disconnect();

    const velocity = new VelocityTracker();
    const now = Date.now();
    for (let i = 0; i < 900; i++) velocity.record(`C-${i}`, 'web', 0.01, now);
    for (let k = 0; k < 10; k++) velocity.record(`HOT-${k}`, 'web', 1_000, now);
    velocity.retier(now);
    const redis = RedisStore.connect({ url: `${redisUrl}/${db}` }, { keyPrefix: `shed${run}` });
    cleanups.push(() => redis.close());
    // 80 ms per chunk of 1,000, three in flight: at most ~37,500 events/s applied, well under the
    // reading rate, so the cold lane reaches its bound and stays there. (With 10 ms, a CI run whose
    // Redis kept up with reading never shed; with 40 ms, a run beside the other test files read so
    // slowly that hot events overtook nothing: mean rank ratio 1.007.)
    const { store, applied } = recordingStore(redis, 80);
    const coldMax = 2_000;
    const engine = new StreamEngine({ kafka, topics, groupId: `shed-${run}`, store, velocity, laneEventsMax: { cold: coldMax }, registry: new Registry() });
    cleanups.push(() => engine.stop());

    // The watermark rule per partition, at every commit seen.
    const where = new Map<string, { p: number; offset: number }>();
    byPartition.forEach((list, p) => list.forEach((e, offset) => where.set(e.eventId, { p, offset })));
    const isApplied = byPartition.map((list) => new Uint8Array(list.length));
    const lowest = [0, 0, 0];
    const lowestUnapplied = (p: number) => {
      while (lowest[p]! < byPartition[p]!.length && isApplied[p]![lowest[p]!]) lowest[p]! += 1;
      return lowest[p]!;
    };
    const violations: string[] = [];
    let appliedSeen = 0;
    let commitsChecked = 0;
    let depthMax = 0;
    const check = () => {
      depthMax = Math.max(depthMax, engine.pipeline.depth('cold'));
      for (; appliedSeen < applied.length; appliedSeen++) {
        const at = where.get(applied[appliedSeen]!.eventId)!;
        isApplied[at.p]![at.offset] = 1;
      }
      for (; commitsChecked < engine.commits.length; commitsChecked++) {
        const c = engine.commits[commitsChecked]!;
        if (Number(c.offset) > lowestUnapplied(c.partition)) violations.push(`partition ${c.partition}: committed ${c.offset} while ${lowestUnapplied(c.partition)} was not applied`);
      }
    };
    await engine.start();
    const checker = setInterval(check, 1);
    try {
      await waitFor('every event applied and committed', () => {
        const committed = new Map(engine.commits.map((c) => [c.partition, Number(c.offset)]));
        return [0, 1, 2].every((p) => committed.get(p) === byPartition[p]!.length);
      }, 150_000);
    } finally {
      clearInterval(checker);
    }
    check();
    expect(violations).toEqual([]);
    expect(engine.counters.sheds).toBeGreaterThan(0);
    expect(engine.counters.rewinds).toBe(engine.counters.sheds);
    expect(engine.counters.shedEvents).toBeGreaterThan(0);
    // A shedding partition pauses past its read-ahead bound and resumes: every pause ended.
    expect(engine.counters.resumes).toBe(engine.counters.pauses);
    // Bounded: past the cold bound by at most the batches in hand when it was reached.
    expect(depthMax).toBeLessThanOrEqual(coldMax + 3 * 2_000);
    // Hot events did not wait for the cold backlog: on average a hot event was first applied
    // earlier than a cold one. In stream order, as without lanes, the two mean ranks would be equal
    // (hot events are spread evenly, 1 in 5). How much earlier depends on how many cold events the
    // sheds skipped, which depends on the machine's speed: 0.43 to 0.60 in most runs here, up to
    // 0.85-0.89 in runs with few sheds (24 Nov 2026, with and without undecoded cold: the bound of
    // 0.75 failed one run in three, likely CI's one failure). 0.95 still fails when hot events do
    // not overtake at all.
    const firstApplied = new Map<string, number>();
    applied.forEach((e, i) => firstApplied.has(e.eventId) || firstApplied.set(e.eventId, i));
    const meanRank = (hot: boolean) => {
      const ranks = events.filter((e) => e.sku.startsWith('HOT-') === hot).map((e) => firstApplied.get(e.eventId)!);
      return ranks.reduce((a, b) => a + b, 0) / ranks.length;
    };
    expect(meanRank(true) / meanRank(false)).toBeLessThan(0.95);
    // Every SKU's events were first applied in the order they were delivered.
    const outOfOrder: string[] = [];
    for (const list of byPartition) {
      const lastRank = new Map<string, number>();
      for (const e of list) {
        const rank = firstApplied.get(e.eventId)!;
        if (rank < (lastRank.get(e.sku) ?? -1)) outOfOrder.push(`${e.sku} ${e.eventId}`);
        lastRank.set(e.sku, rank);
      }
    }
    expect(outOfOrder.slice(0, 10)).toEqual([]);
    await expectExact(redis, events);
  }, 200_000);

  it('publishes channel ATP in the change feed and reads reservations into velocity', async () => {
    const kafka = kafkaClient(kafkaBrokers, 'instock-lanes-test');
    const { run, topics } = await topicsFor(kafka, 2);
    const loc = (id: string, type: Location['type']): Location => ({ id, type, lat: 48.8, lon: 2.3, capabilities: { ship: true, pickup: true, shipFromStore: false }, processingMinutes: 30, cutoffLocal: '17:00', status: 'active' });
    const channels: Channel[] = [
      { id: 'web', locations: ['dc-1', 'store-1'], bufferByLocationType: { store: { units: 3, percent: 0 } }, minThreshold: 0 },
      { id: 'app', locations: ['dc-1'], bufferByLocationType: { dc: { units: 0, percent: 20 } }, minThreshold: 0 },
    ];
    let network = { locations: [loc('dc-1', 'dc'), loc('store-1', 'store')], channels };
    const redis = RedisStore.connect({ url: `${redisUrl}/${db}` }, { keyPrefix: `feed${run}` });
    cleanups.push(() => redis.close());
    const velocity = new VelocityTracker();
    const engine = new StreamEngine({ kafka, topics, groupId: `feed-${run}`, store: redis, network: () => network, velocity, registry: new Registry() });
    cleanups.push(() => engine.stop());
    await engine.start();

    const changes: AtpChange[] = [];
    const feed = kafka.consumer({ kafkaJS: { groupId: `feed-reader-${run}`, fromBeginning: true } });
    cleanups.push(() => feed.disconnect());
    await feed.connect();
    await feed.subscribe({ topics: [topics.changes] });
    await feed.run({ eachMessage: async ({ message }) => void changes.push(decodeAtpChange(message.value)!) });

    await produce(kafka, topics.stock, [
      { type: 'snapshot', eventId: 'f1', sku: 'F', location: 'dc-1', qty: 50, asOf: T0 },
      { type: 'snapshot', eventId: 'f2', sku: 'F', location: 'store-1', qty: 10, asOf: T0 },
    ].map((e) => ({ key: e.sku, value: encodeStockEvent(e as StockEvent) })));
    await waitFor('two changes', () => changes.length >= 2, 60_000);
    const byLocation = new Map(changes.map((c) => [c.location, c]));
    expect(byLocation.get('dc-1')).toMatchObject({ sku: 'F', onHand: 50, reserved: 0, atp: { web: 50, app: 40 }, asOfMs: T0 });
    expect(byLocation.get('store-1')).toMatchObject({ sku: 'F', onHand: 10, atp: { web: 7, app: 0 } });
    // A configuration reload (store-1 paused) shows in the next change.
    network = { ...network, locations: [loc('dc-1', 'dc'), { ...loc('store-1', 'store'), status: 'paused' }] };
    await produce(kafka, topics.stock, [{ key: 'F', value: encodeStockEvent({ type: 'delta', eventId: 'f3', sku: 'F', location: 'store-1', qty: 2, asOf: T0 + 1 }) }]);
    await waitFor('the third change', () => changes.length >= 3, 60_000);
    expect(changes[2]).toMatchObject({ location: 'store-1', onHand: 12, atp: { web: 0, app: 0 } });
    // Each change carries its position's version: the later change of store-1 has the higher one.
    expect(changes[2]!.version).toBeGreaterThan(byLocation.get('store-1')!.version);

    // Reservations: a hold counts, its confirm does not count again; a confirm never seen held counts.
    const transitions = [
      { reservationId: 'r1', channel: 'web', transition: 'held' as const, lines: [{ sku: 'F', location: 'dc-1', qty: 4 }], atMs: Date.now() },
      { reservationId: 'r1', channel: 'web', transition: 'confirmed' as const, lines: [{ sku: 'F', location: 'dc-1', qty: 4 }], atMs: Date.now() },
      { reservationId: 'r2', channel: 'app', transition: 'confirmed' as const, lines: [{ sku: 'G', location: 'dc-1', qty: 2 }], atMs: Date.now() },
    ];
    // The reservations consumer starts at the latest offset: wait until it has joined.
    await new Promise((r) => setTimeout(r, 3_000));
    await produce(kafka, topics.reservations, [...transitions.map((t) => ({ key: t.reservationId, value: encodeReservationTransition(t) })), { key: 'bad', value: Buffer.from('nope') }]);
    await waitFor('velocity of F and G', () => velocity.rate('F', Date.now()) > 0 && velocity.rate('G', Date.now()) > 0, 60_000);
    // Units per minute right after: ~units × ln2 / half-life; F got 4 units (not 8), G 2.
    expect(velocity.rate('F', Date.now()) / velocity.rate('G', Date.now())).toBeCloseTo(2, 1);
    await waitFor('the invalid transition counted', async () => (await engine.metrics.registry.metrics()).includes('instock_engine_reservation_transitions_total{transition="invalid"} 1'), 10_000);
  }, 180_000);

  it('reports consumer lag only for the partitions it owns: after a rebalance the old owner drops the moved ones', async () => {
    const kafka = kafkaClient(kafkaBrokers, 'instock-lanes-test');
    const { run, topics } = await topicsFor(kafka, 3);
    const batch = (from: number) =>
      Array.from({ length: 3_000 }, (_, i): StockEvent => ({ type: 'snapshot', eventId: `lag-${from + i}`, sku: `LAG-${i % 300}`, location: `loc-${i % 3}`, qty: i % 40, asOf: T0 + from + i }));
    await produce(kafka, topics.stock, batch(0).map((e) => ({ key: e.sku, value: encodeStockEvent(e) })));
    const store = RedisStore.connect({ url: `${redisUrl}/${db}` }, { keyPrefix: `lag${run}` });
    cleanups.push(() => store.close());
    const lagPartitions = async (engine: StreamEngine) => {
      const metric = (await engine.metrics.registry.getSingleMetric('instock_engine_consumer_lag')!.get()).values;
      return metric.map((v) => String(v.labels.partition)).sort();
    };
    const engineA = new StreamEngine({ kafka, topics, groupId: `lag-${run}`, store, sessionTimeoutMs: 6_000, registry: new Registry() });
    cleanups.push(() => engineA.stop());
    await engineA.start();
    await waitFor('A reads every partition', async () => (await lagPartitions(engineA)).length === 3, 60_000);
    const engineB = new StreamEngine({ kafka, topics, groupId: `lag-${run}`, store, sessionTimeoutMs: 6_000, registry: new Registry() });
    cleanups.push(() => engineB.stop());
    await engineB.start();
    // New events on every partition, so that B gets batches of the partitions it took.
    let next = 3_000;
    await waitFor(
      'the partitions split between A and B',
      async () => {
        await produce(kafka, topics.stock, batch(next).map((e) => ({ key: e.sku, value: encodeStockEvent(e) })));
        next += 3_000;
        const [a, b] = [await lagPartitions(engineA), await lagPartitions(engineB)];
        return b.length > 0 && a.length + b.length === 3;
      },
      60_000,
    );
    const [a, b] = [await lagPartitions(engineA), await lagPartitions(engineB)];
    expect([...a, ...b].sort()).toEqual(['0', '1', '2']);
  }, 120_000);
});
