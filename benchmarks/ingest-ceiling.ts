// `npm run bench -- ingest-ceiling [--quick]`: what the least work any stream engine must do reaches
// on this machine, against the ingest benchmark's floor, in the same run on the same topic. It
// measures the ceiling of the ingest target (b), not Instock's engine (`bench ingest` does that).
//
//   (a) floor: a fresh group reads the N events through NativeConsumer, doing nothing (as in `bench ingest`)
//   (s1) skeleton: read, decode and validate each event (decodeStockEvent), write each one to Redis
//        blindly (one Lua call per chunk, one HSET of a 38-byte value per event: no read, no
//        idempotency, no snapshot order, no expiry), commit offsets
//   (s2) s1 plus the change feed as DESIGN.md has it: one message per changed position on a
//        changes topic, key = sku (BatchProducer, encodeAtpChange, as the engine), offsets
//        committed once a chunk's changes are acknowledged
//   (s3) s2 with the store's own apply (RedisStore.applyEvents: snapshots ordered, deltas deduped by
//        eventId, holds expired) in place of the blind write, a change per applied event: the
//        engine's work without its lanes, tickets, worker pool and metrics
//
// A correct engine does all of s2 and more: the store must read a position to order snapshots,
// dedupe deltas by eventId and keep reservations (engine/store/lua/applyEvents.lua; s3 measures
// it). s2's rate is
// therefore above what any design that keeps the wire formats can sustain here, and its CPU per
// event, all processes added, bounds any design's rate to (cores / CPU per event) even with every
// core busy on nothing else. Own redis-server on 16394, own topics (bench.ceiling.<run>.*).

import { randomUUID } from 'node:crypto';
import { availableParallelism } from 'node:os';
import type { Redis } from 'ioredis';
import { BatchProducer, ensureTopics, type Admin, kafkaClient, NativeConsumer, type ConsumedMessage, type KafkaClient } from '../connectors/kafka.js';
import type { StockEvent } from '../engine/core/types.js';
import { RedisStore } from '../engine/store/redis-store.js';
import { decodeStockEvent } from '../engine/stream/codec.js';
import { encodeAtpChange } from '../engine/stream/wire.js';
import { startBenchRedis } from './bench-redis.js';
import { CpuMeter, cpuRows, measuredCpuSeconds, type CpuUsage, type MeteredProcess } from './cpu.js';
import { consumeFloor, produceAll } from './ingest.js';
import { locations, skus } from './ingest-producer.js';
import { printTable, progress, writeResults, type Row } from './report.js';

const port = 16_394;
const partitions = 6;
/** Chunks written to Redis at once, and chunks whose changes travel at once: the engine's applyConcurrency and publishesMax. */
const writesInFlightMax = 3;
const publishesInFlightMax = 8;
/** Offsets are committed at most this often (the engine commits its watermark on a timer too). */
const commitEveryMs = 100;

/**
 * The blind write: "sku|location|qty|asOf\n" per event, one HSET each of a position value in the
 * store's 38-byte layout (engine/store/lua/includes/position.lua), with nothing read first.
 */
const blindWriteLua = `
local n = 0
for sku, loc, qty, asOf in string.gmatch(ARGV[3], '([^|\\n]+)|([^|\\n]+)|(-?%d+)|(-?%d+)\\n') do
  n = n + 1
  redis.call('HSET', ARGV[1] .. ':p:{' .. sku .. '}', loc, struct.pack('<Bi6i5i6I4i6i4Bi5', 3, tonumber(qty), 0, 0, 0, tonumber(asOf), 0, 0, 1))
end
if n ~= tonumber(ARGV[2]) then error('blind write: ' .. n .. ' events parsed of ' .. ARGV[2] .. ' sent') end
return n`;

type Skeleton = 'write' | 'write+changes' | 'apply+changes';

/**
 * Reads `count` events with a fresh group and does the skeleton's work on each partition batch;
 * events/s from the first batch done to the last.
 */
async function runSkeleton(kafka: KafkaClient, redis: Redis, store: RedisStore | undefined, producer: BatchProducer, topics: { stock: string; changes: string }, prefix: string, mode: Skeleton, count: number, maxMs: number): Promise<{ perSec: number; changes: number }> {
  let done = 0;
  let changesSent = 0;
  let firstMs = 0;
  let lastMs = 0;
  let lastCommitMs = 0;
  const commitAt = new Map<number, number>();
  const writing: Promise<void>[] = [];
  const publishing = new Set<Promise<void>>();
  let failure: unknown;

  const fail = (error: unknown) => {
    failure ??= error;
  };
  /** The chunk decoded and written (blindly, or by the store's apply); resolves with its changes once Redis has them. */
  const write = async (messages: ConsumedMessage[]): Promise<{ key: string; value: Buffer }[]> => {
    const events: StockEvent[] = [];
    for (const message of messages) {
      const decoded = decodeStockEvent(message.value);
      if (decoded.ok) events.push(decoded.event);
    }
    const changes: { key: string; value: Buffer }[] = [];
    if (mode === 'apply+changes') {
      // The store's own apply (ordered snapshots, deduped deltas, expiries), and the engine's change per applied event.
      const results = await store!.applyEvents(events, Date.now());
      const visibleAtMs = Date.now();
      results.forEach((r, k) => {
        if (r.outcome !== 'applied') return;
        const p = r.position;
        changes.push({ key: p.sku, value: encodeAtpChange({ sku: p.sku, location: p.location, onHand: p.onHand, reserved: p.reserved, version: p.version, atp: {}, visibleAtMs, asOfMs: events[k]!.asOf }) });
      });
      return changes;
    }
    let lines = '';
    const visibleAtMs = Date.now();
    for (const e of events) {
      lines += `${e.sku}|${e.location}|${e.qty}|${e.asOf}\n`;
      if (mode === 'write+changes') changes.push({ key: e.sku, value: encodeAtpChange({ sku: e.sku, location: e.location, onHand: e.qty, reserved: 0, version: 1, atp: {}, visibleAtMs, asOfMs: e.asOf }) });
    }
    await redis.eval(blindWriteLua, 0, prefix, events.length, lines);
    return changes;
  };
  /** After the write: the changes published (not holding a write slot, as in the engine), then the offset committed. */
  const finish = async (partition: number, messages: ConsumedMessage[], changes: { key: string; value: Buffer }[]): Promise<void> => {
    if (changes.length > 0) await producer.send(topics.changes, changes);
    changesSent += changes.length;
    commitAt.set(partition, messages[messages.length - 1]!.offset + 1);
    if (firstMs === 0) firstMs = performance.now();
    done += messages.length;
    lastMs = performance.now();
    if (performance.now() - lastCommitMs >= commitEveryMs) {
      lastCommitMs = performance.now();
      const offsets = [...commitAt].map(([p, offset]) => ({ partition: p, offset }));
      commitAt.clear();
      await consumer.commit(offsets);
    }
  };

  // finish() uses it only once batches arrive, after start().
  const consumer: NativeConsumer = await NativeConsumer.connect(kafka, {
    groupId: `bench-ceiling-${mode}-${randomUUID().slice(0, 8)}`,
    topic: topics.stock,
    sessionTimeoutMs: 10_000,
    maxMessages: 2_000,
    onBatch: async (partition, messages) => {
      const w = write(messages).then((changes) => {
        const f: Promise<void> = finish(partition, messages, changes)
          .catch(fail)
          .finally(() => publishing.delete(f));
        publishing.add(f);
      }, fail);
      writing.push(w);
      // Chunks overlap as in the engine: the consumer reads on while earlier ones are in Redis or on their way to Kafka.
      while (writing.length > writesInFlightMax) await writing.shift();
      while (publishing.size > publishesInFlightMax) await Promise.race(publishing);
    },
    onRevoke: async () => undefined,
    log: (m) => progress(m),
  });
  consumer.start();
  const deadline = Date.now() + maxMs;
  while (done < count && failure === undefined && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  await Promise.all(writing);
  await Promise.all(publishing);
  await consumer.disconnect();
  if (failure !== undefined) throw failure instanceof Error ? failure : new Error(String(failure));
  if (done < count) throw new Error(`ceiling ${mode}: ${done} of ${count} events done in ${maxMs} ms`);
  return { perSec: done / ((lastMs - firstMs) / 1000), changes: changesSent };
}

/** Messages in a topic, all partitions: the sum of their high watermarks (nothing is deleted in a benchmark's topic). */
async function messagesIn(admin: Admin, topic: string): Promise<number> {
  const ends = await admin.fetchTopicOffsets(topic);
  return ends.reduce((n, p) => n + Number(p.high), 0);
}

export async function benchIngestCeiling(args: { quick: boolean; dataDir: string; kafkaBrokers: string[]; brokerProcesses?: MeteredProcess[] }): Promise<Row[]> {
  const count = args.quick ? 100_000 : 600_000;
  const rounds = args.quick ? 1 : 2;
  const maxMs = 180_000;
  const run = randomUUID().slice(0, 8);
  const server = await startBenchRedis(args.dataDir, 'bench-ceiling-redis', port);
  const { url, client: redis } = server;
  const kafka = kafkaClient(args.kafkaBrokers, 'instock-bench-ceiling');
  const admin = kafka.admin();
  const topics = { stock: `bench.ceiling.${run}.stock`, changes: `bench.ceiling.${run}.changes` };
  let producer: BatchProducer | undefined;
  try {
    await admin.connect();
    await ensureTopics(admin, Object.values(topics).map((topic) => ({ topic, partitions, replication: 1 })));
    producer = await BatchProducer.connect(kafka);
    progress(`producing ${count.toLocaleString()} events to ${topics.stock}`);
    await produceAll(kafka, topics.stock, count, run, 120_000);

    const brokers = args.brokerProcesses ?? [{ name: 'Kafka broker', pid: undefined }];
    const metered = [{ name: 'node process (all threads)', pid: process.pid }, { name: 'node main thread', pid: process.pid, tid: process.pid }, { name: 'redis-server', pid: server.pid }, ...brokers];
    // Rounds interleave the three, so that a slow minute of the shared machine is not one phase's alone.
    const phases = ['floor', 'write', 'write+changes', 'apply+changes'] as const;
    const rates: Record<'floor' | Skeleton, number[]> = { floor: [], write: [], 'write+changes': [], 'apply+changes': [] };
    const changed: number[] = [];
    const usage: Partial<Record<'floor' | Skeleton, CpuUsage>> = {};
    for (let round = 1; round <= rounds; round++) {
      for (const phase of phases) {
        progress(`round ${round}/${rounds}: ${phase}`);
        const meter = new CpuMeter(metered);
        const changesBefore = await messagesIn(admin, topics.changes);
        const prefix = `bc${run}${round}`;
        let done: { perSec: number; changes: number };
        if (phase === 'floor') done = { perSec: await consumeFloor(kafka, topics.stock, count, maxMs), changes: 0 };
        else {
          // Each round's store starts empty (a store that had the events would find them all duplicates).
          const store = phase === 'apply+changes' ? RedisStore.connect({ url }, { keyPrefix: `${prefix}s` }) : undefined;
          done = await runSkeleton(kafka, redis, store, producer, topics, prefix, phase, count, maxMs).finally(() => store?.close());
        }
        const perSec = done.perSec;
        const used = meter.stop();
        // The skeleton is measured only if it did its work: every event's change is in the topic.
        const changesPublished = (await messagesIn(admin, topics.changes)) - changesBefore;
        const changesExpected = phase === 'floor' || phase === 'write' ? 0 : phase === 'write+changes' ? count : done.changes;
        if (changesPublished !== changesExpected || (phase === 'apply+changes' && done.changes === 0)) throw new Error(`ceiling ${phase}: ${changesPublished} changes in ${topics.changes}, expected ${changesExpected}`);
        rates[phase].push(perSec);
        if (phase === 'apply+changes') changed.push(done.changes);
        // The last round's CPU is reported (the first one's includes the group's first join and the JIT's warm-up).
        usage[phase] = used;
        progress(`round ${round}/${rounds}: ${phase} ${Math.round(perSec).toLocaleString()} events/s`);
      }
    }
    const best = (values: number[]) => Math.max(...values);
    const floor = best(rates.floor);
    const cores = availableParallelism();
    const rows: Row[] = [{ metric: '(a) raw consume, same client (floor), best round', value: floor, unit: 'events/s' }];
    const labels: Record<Skeleton, string> = { write: '(s1) decode + blind write + commit', 'write+changes': '(s2) s1 + change feed', 'apply+changes': "(s3) s2 with the store's apply" };
    for (const phase of ['write', 'write+changes', 'apply+changes'] as const) {
      const label = labels[phase];
      const rate = best(rates[phase]);
      rows.push({ metric: `${label}, best round`, value: rate, unit: 'events/s', floor, ratio: rate / floor, target: 'ingest (b): >= 60 % of floor', pass: rate >= 0.6 * floor });
      // Whole phases are metered (join to end), so their CPU per event is a little above the steady state's.
      const bound = cores / (measuredCpuSeconds(usage[phase]!) / count);
      rows.push({ metric: `${label}, every core on it alone`, value: bound, unit: `events/s (${cores} cores / CPU per event)`, floor, ratio: bound / floor });
    }
    rows.push(...cpuRows('(a)', usage.floor!, count, 'event'), ...cpuRows('(s1)', usage.write!, count, 'event'), ...cpuRows('(s2)', usage['write+changes']!, count, 'event'), ...cpuRows('(s3)', usage['apply+changes']!, count, 'event'));
    rows.push({ metric: '(s3) changes published (events applied, not stale)', value: changed[changed.length - 1]!, unit: `of ${count.toLocaleString()} events` });
    printTable(`ingest ceiling${args.quick ? ' (--quick)' : ''}: ${count.toLocaleString()} events, ${partitions} partitions, ${skus.toLocaleString()} SKUs × ${locations} locations, ${rounds} round(s), redis-server on ${port}`, rows);
    const file = writeResults('ingest-ceiling', { quick: args.quick, count, partitions, rounds, rates, changed, rows, cpu: usage });
    process.stdout.write(`results: ${file}\n`);
    return rows;
  } finally {
    await producer?.disconnect().catch(() => undefined);
    await admin.deleteTopics({ topics: Object.values(topics), timeout: 10_000 }).catch(() => undefined);
    await admin.disconnect().catch(() => undefined);
    await server.stop();
  }
}
