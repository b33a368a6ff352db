// `npm run bench -- ingest [--quick]`: the stream engine, Kafka → ATP visible in Redis, against the
// raw consume rate of the same topic by the same client in the same run (the floor).
//
//   (a) floor: a consumer group reads the N produced events through the engine's own consumer
//       (NativeConsumer), doing nothing with them
//   (b) sustained end-to-end events/s, Kafka → applied in Redis       target >= 60 % of (a)
//   (c) freshness p50/p99 per tier at half of (b), after a 5 s warm-up target p99 < 100 ms
//   (d) overload at 150 % of (b): hot-tier freshness p99              target < 250 ms
//       while cold lags, then the backlog drains (time to drain reported)
//
// Own redis-server (port 16391, like the store benchmark), own topics (bench.ingest.<run>.*).
// Every load loop is bounded in count and in time. Freshness is measured per event: applied time
// minus asOf (set when the event is produced), by the tier the velocity tracker gives its SKU.

import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { Registry } from 'prom-client';
import { ensureTopics, kafkaClient, NativeConsumer, type KafkaClient } from '../connectors/kafka.js';
import { VelocityTracker, type VelocityTier } from '../engine/core/velocity.js';
import { RedisStore } from '../engine/store/redis-store.js';
import type { InventoryStore } from '../engine/store/types.js';
import { encodeStockEvent } from '../engine/stream/codec.js';
import type { SpillOptions } from '../engine/stream/compact-lane.js';
import { StreamEngine } from '../engine/stream/engine.js';
import { semiSpaceMb } from '../engine/stream/young-generation.js';
import { projectPath } from '../config/paths.js';
import { eventAt, hotSkus, locations, sku, skus, warmSkus } from './ingest-producer.js';
import { startBenchRedis } from './bench-redis.js';
import { CpuMeter, cpuRows, type MeteredProcess } from './cpu.js';
import { percentile, printTable, progress, writeResults, type Row } from './report.js';

const port = 16_391;
const partitions = 6;

export async function produceAll(kafka: KafkaClient, topic: string, count: number, run: string, maxMs: number): Promise<void> {
  const producer = kafka.producer({ 'linger.ms': 10, 'batch.num.messages': 10_000 } as never);
  await producer.connect();
  const t0 = Date.now();
  const asOf = Date.now();
  for (let i = 0; i < count && Date.now() - t0 < maxMs; i += 10_000) {
    const messages = [];
    for (let n = i; n < Math.min(count, i + 10_000); n++) {
      const e = eventAt(n, asOf, run);
      messages.push({ key: e.sku, value: encodeStockEvent(e) });
    }
    await producer.send({ topic, messages });
  }
  await producer.disconnect();
}

/**
 * Reads `count` messages with a fresh group through the engine's own consumer (NativeConsumer,
 * same client, same settings), doing nothing with them; messages/s from first to last.
 */
export async function consumeFloor(kafka: KafkaClient, topic: string, count: number, maxMs: number): Promise<number> {
  let seen = 0;
  let t0 = 0;
  let t1 = 0;
  const consumer = await NativeConsumer.connect(kafka, {
    groupId: `bench-floor-${randomUUID().slice(0, 8)}`,
    topic,
    sessionTimeoutMs: 10_000,
    maxMessages: 2_000,
    onBatch: async (_partition, messages) => {
      if (t0 === 0) t0 = performance.now();
      seen += messages.length;
      t1 = performance.now();
    },
    onRevoke: async () => undefined,
    log: (m) => progress(m),
  });
  consumer.start();
  const deadline = Date.now() + maxMs;
  while (seen < count && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  await consumer.disconnect();
  return seen / ((t1 - t0) / 1000);
}

/**
 * Wraps a store: per applied event, freshness (now − asOf) by tier, and a count. Recording, only
 * events with asOf from recordFromMs on count (a warm-up before it is not measured); the hot tier's
 * freshness is also kept per second of asOf, for the timeline.
 */
function measuringStore(inner: InventoryStore, velocity: VelocityTracker) {
  const freshness: Record<VelocityTier, number[]> = { hot: [], warm: [], cold: [] };
  let hotBySecond: number[][] = [];
  const state = { applied: 0, recording: false, recordFromMs: 0, firstMs: 0, lastMs: 0 };
  const store: InventoryStore = Object.create(inner) as InventoryStore;
  store.applyEvents = async (events, nowMs) => {
    const results = await inner.applyEvents(events, nowMs);
    const t = Date.now();
    if (state.firstMs === 0) state.firstMs = performance.now();
    state.lastMs = performance.now();
    // Distinct events processed: a duplicate is an event read again after a rewind.
    for (const r of results) if (r.outcome !== 'duplicate') state.applied += 1;
    // First applications only: a duplicate (an event read again after a rewind) is not news.
    if (state.recording) {
      results.forEach((r, k) => {
        const event = events[k]!;
        if (r.outcome !== 'applied' || event.asOf < state.recordFromMs) return;
        const tier = velocity.tier(event.sku, t);
        freshness[tier].push(t - event.asOf);
        if (tier === 'hot') (hotBySecond[Math.floor((event.asOf - state.recordFromMs) / 1000)] ??= []).push(t - event.asOf);
      });
    }
    return results;
  };
  return {
    store,
    state,
    reset() {
      for (const tier of ['hot', 'warm', 'cold'] as const) freshness[tier] = [];
      hotBySecond = [];
    },
    /** Hot freshness p99 per second of asOf since recordFromMs (ms; null: no hot event that second). */
    hotTimeline(): (number | null)[] {
      return Array.from(hotBySecond, (values) => (values && values.length > 0 ? percentile([...values].sort((a, b) => a - b), 0.99) : null));
    },
    summary() {
      return Object.fromEntries((['hot', 'warm', 'cold'] as const).map((tier) => {
        const sorted = [...freshness[tier]].sort((a, b) => a - b);
        return [tier, { count: sorted.length, p50: percentile(sorted, 0.5), p99: percentile(sorted, 0.99) }];
      })) as Record<VelocityTier, { count: number; p50: number; p99: number }>;
    },
  };
}

/**
 * Produces at `perSec` for `seconds` (asOf = send time) from a child process, so the load
 * generator does not share the engine's event loop; returns the events produced.
 */
async function produceAtRate(brokers: string[], topic: string, perSec: number, seconds: number, run: string, from: number): Promise<{ produced: number; cpuSeconds: number }> {
  const child = spawn(process.execPath, [projectPath('dist', 'benchmarks', 'ingest-producer.js'), JSON.stringify({ brokers, topic, perSec, seconds, run, from })], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
  if (code !== 0) throw new Error(`ingest producer exited with ${code}`);
  return JSON.parse(out) as { produced: number; cpuSeconds: number };
}

/** coldLaneMax, coldSpill, undecodedColdLag: the engine's cold lane as configured (ENGINE_COLD_LANE_*, ENGINE_SPILL_DIR, ENGINE_UNDECODED_COLD_LAG), as `instock engine` runs it. */
export async function benchIngest(args: { quick: boolean; dataDir: string; kafkaBrokers: string[]; coldLaneMax: number; coldSpill: SpillOptions; undecodedColdLag: number; brokerProcesses?: MeteredProcess[] }): Promise<Row[]> {
  const quick = args.quick;
  // The engines run in this process: its young generation is theirs (engine/stream/young-generation.ts).
  const semiSpace = semiSpaceMb();
  const count = quick ? 100_000 : 600_000;
  const halfLoadSeconds = quick ? 5 : 20;
  // The second engine's consumer and decode worker, and the load generator, start cold: their
  // first seconds are a start-up, not the half load's steady state.
  const warmupSeconds = quick ? 3 : 5;
  const overloadSeconds = quick ? 8 : 60;
  const drainMaxMs = quick ? 30_000 : 180_000;
  const run = randomUUID().slice(0, 8);
  const server = await startBenchRedis(args.dataDir, 'bench-ingest-redis', port);
  const url = server.url;
  const kafka = kafkaClient(args.kafkaBrokers, 'instock-bench-ingest');
  const admin = kafka.admin();
  const topics = { stock: `bench.ingest.${run}.stock`, changes: `bench.ingest.${run}.changes`, dlq: `bench.ingest.${run}.dlq` };
  const live = { stock: `bench.ingest.${run}.live`, changes: topics.changes, dlq: topics.dlq };
  try {
    await admin.connect();
    await ensureTopics(admin, [...Object.values(topics), live.stock].map((topic) => ({ topic, partitions, replication: 1 })));
    const velocity = new VelocityTracker();
    const now = Date.now();
    for (let i = 0; i < skus; i++) velocity.record(sku(i), 'web', i < hotSkus ? 100 : i < warmSkus ? 10 : 0.001, now);
    const tiers = velocity.retier(now);
    progress(`velocity tiers: ${JSON.stringify(tiers)}`);

    progress(`producing ${count.toLocaleString()} events to ${topics.stock}`);
    await produceAll(kafka, topics.stock, count, run, 120_000);

    // CPU by process per phase: this process (the floor's consumer, then the engine), redis-server, the broker.
    const brokers = args.brokerProcesses ?? [{ name: 'Kafka broker', pid: undefined }];
    const engineProcess = { name: 'engine process (all threads)', pid: process.pid };
    const engineMain = { name: 'engine main thread', pid: process.pid, tid: process.pid };
    const redisProcess = { name: 'redis-server', pid: server.pid };
    const engineSide = [engineProcess, engineMain, redisProcess, ...brokers];
    progress('(a) floor: raw consume rate of the topic');
    const floorCpu = new CpuMeter([{ name: 'consumer process', pid: process.pid }, { name: 'consumer main thread', pid: process.pid, tid: process.pid }, ...brokers]);
    const floorPerSec = await consumeFloor(kafka, topics.stock, count, 120_000);
    const floorUsage = floorCpu.stop();

    progress('(b) engine: Kafka → applied in Redis');
    const redis = RedisStore.connect({ url }, { keyPrefix: `bi${run}` });
    const m = measuringStore(redis, velocity);
    // The engines' own log lines (a rebalance, a retried store call or send) go to the progress output.
    const log = (line: string) => progress(`engine: ${line}`);
    const engine = new StreamEngine({ kafka, topics, groupId: `bench-engine-${run}`, store: m.store, velocity, registry: new Registry(), decodeThreads: 1, laneEventsMax: { cold: args.coldLaneMax }, coldSpill: args.coldSpill, undecodedColdLag: args.undecodedColdLag, log });
    await engine.start();
    const deadline = Date.now() + 180_000;
    // CPU over the same window as the rate, from the first apply (not the group join) to the last.
    let sustainedCpu: CpuMeter | undefined;
    let appliedAtMeter = 0;
    while (m.state.applied < count && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 20));
      if (!sustainedCpu && m.state.applied > 0) {
        sustainedCpu = new CpuMeter(engineSide);
        appliedAtMeter = m.state.applied;
      }
    }
    const sustainedUsage = (sustainedCpu ?? new CpuMeter(engineSide)).stop();
    const sustainedEvents = m.state.applied - appliedAtMeter;
    const sustainedPerSec = m.state.applied / ((m.state.lastMs - m.state.firstMs) / 1000);
    await engine.stop();

    // (c) and (d) on a second topic, produced live while a second engine group reads it.
    const m2 = measuringStore(redis, velocity);
    const engine2 = new StreamEngine({ kafka, topics: live, groupId: `bench-live-${run}`, store: m2.store, velocity, registry: new Registry(), decodeThreads: 1, laneEventsMax: { cold: args.coldLaneMax }, coldSpill: args.coldSpill, undecodedColdLag: args.undecodedColdLag, log });
    await engine2.start();
    await new Promise((r) => setTimeout(r, 3_000)); // join the group before measuring
    const halfRate = Math.floor(sustainedPerSec / 2);
    progress(`(c) half load: ${halfRate.toLocaleString()} events/s for ${warmupSeconds} s of warm-up (not measured), then ${halfLoadSeconds} s`);
    m2.state.recording = true;
    m2.state.recordFromMs = Date.now() + warmupSeconds * 1000;
    const halfCpu = new CpuMeter(engineSide);
    const halfLoad = await produceAtRate(args.kafkaBrokers, live.stock, halfRate, warmupSeconds + halfLoadSeconds, run, 10_000_000);
    let produced = halfLoad.produced;
    await waitForApplied(m2.state, produced, 30_000);
    const halfUsage = halfCpu.stop();
    halfUsage.seconds['load generator'] = halfLoad.cpuSeconds;
    const half = m2.summary();
    const halfTimeline = m2.hotTimeline();
    progress(`(c) hot freshness p99 per second: ${halfTimeline.map((v) => v ?? '-').join(' ')} ms`);
    m2.reset();
    m2.state.recordFromMs = Date.now();
    const overRate = Math.floor(sustainedPerSec * 1.5);
    progress(`(d) overload: ${overRate.toLocaleString()} events/s for ${overloadSeconds} s`);
    const appliedBefore = m2.state.applied;
    const overCpu = new CpuMeter(engineSide);
    const overLoad = await produceAtRate(args.kafkaBrokers, live.stock, overRate, overloadSeconds, run, 20_000_000);
    const overProduced = overLoad.produced;
    const backlogAtEnd = Math.max(0, appliedBefore + overProduced - m2.state.applied);
    const tDrain = Date.now();
    produced += overProduced;
    await waitForApplied(m2.state, appliedBefore + overProduced, drainMaxMs);
    const drainMs = Date.now() - tDrain;
    const drained = m2.state.applied >= appliedBefore + overProduced;
    const overUsage = overCpu.stop();
    overUsage.seconds['load generator'] = overLoad.cpuSeconds;
    // Every event produced during the overload, including those applied while draining: a hot
    // event stuck behind a paused partition counts with its full wait.
    const over = m2.summary();
    const overTimeline = m2.hotTimeline();
    progress(`(d) hot freshness p99 per second of the overload: ${overTimeline.map((v) => v ?? '-').join(' ')} ms`);
    const pauses = engine2.counters.pauses;
    // What the live engine did besides applying (pauses, sheds and rewinds, events handed back at a
    // rebalance), in the results; its stop prints them too.
    const liveCounters = { ...engine2.counters };
    await engine2.stop();
    await redis.close();

    const rows: Row[] = [
      { metric: '(a) raw consume, same client (floor)', value: floorPerSec, unit: 'events/s' },
      { metric: '(b) sustained Kafka → visible in Redis', value: sustainedPerSec, unit: 'events/s', floor: floorPerSec, ratio: sustainedPerSec / floorPerSec, target: '>= 60 % of floor', pass: sustainedPerSec >= 0.6 * floorPerSec },
    ];
    for (const tier of ['hot', 'warm', 'cold'] as const) {
      rows.push({ metric: `(c) half load ${tier} freshness p50`, value: half[tier].p50, unit: `ms (n=${half[tier].count})` });
      rows.push({ metric: `(c) half load ${tier} freshness p99`, value: half[tier].p99, unit: 'ms', target: '< 100 ms', pass: half[tier].p99 < 100 });
    }
    rows.push({ metric: '(d) 150 % overload hot freshness p99', value: over.hot.p99, unit: `ms (n=${over.hot.count})`, target: '< 250 ms', pass: over.hot.p99 < 250 });
    rows.push({ metric: '(d) 150 % overload warm freshness p99', value: over.warm.p99, unit: `ms (n=${over.warm.count})` });
    rows.push({ metric: '(d) 150 % overload cold freshness p99', value: over.cold.p99, unit: `ms (n=${over.cold.count})`, target: 'lags' });
    rows.push({ metric: '(d) backlog when the overload stopped', value: backlogAtEnd, unit: 'events' });
    rows.push({ metric: '(d) backlog drained in', value: drainMs, unit: 'ms', target: 'drains', pass: drained });
    rows.push({ metric: '(d) partition pauses at the lane bound', value: pauses, unit: 'pauses' });
    rows.push(...cpuRows('(a)', floorUsage, count, 'event'), ...cpuRows('(b)', sustainedUsage, sustainedEvents, 'event'), ...cpuRows('(c)', halfUsage, halfLoad.produced, 'event'), ...cpuRows('(d) overload + drain', overUsage, overProduced, 'event'));
    printTable(`ingest benchmark${quick ? ' (--quick)' : ''}: ${count.toLocaleString()} events, ${partitions} partitions, ${skus.toLocaleString()} SKUs × ${locations} locations, redis-server on ${port}, node semi-space ${semiSpace === undefined ? 'default' : `${semiSpace} MB`}`, rows);
    const cpu = { floor: floorUsage, sustained: sustainedUsage, half: halfUsage, overload: overUsage };
    const file = writeResults('ingest', { quick, semiSpaceMb: semiSpace ?? null, count, partitions, skus, locations, tiers, rows, floorPerSec, sustainedPerSec, halfRate, overRate, warmupSeconds, produced, half, over, halfTimeline, overTimeline, liveCounters, cpu });
    process.stdout.write(`results: ${file}\n`);
    return rows;
  } finally {
    await admin.deleteTopics({ topics: [...Object.values(topics), live.stock], timeout: 10_000 }).catch(() => undefined);
    await admin.disconnect().catch(() => undefined);
    await server.stop();
  }
}

async function waitForApplied(state: { applied: number }, target: number, maxMs: number): Promise<void> {
  const deadline = Date.now() + maxMs;
  while (state.applied < target && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
}
