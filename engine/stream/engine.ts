// The stream engine (first slice): a consumer group on inventory.stock that decodes and validates
// each batch, sends bad events to the DLQ with their reason and original bytes, applies the good
// ones to the store in batches, publishes the changed positions to inventory.changes, and only
// then commits the batch's offsets. Apply is idempotent (the store drops duplicates and stale
// events), so a crash anywhere replays at most the uncommitted batch and double-counts nothing.
//
// Large batches are decoded and validated in a piscina worker pool (the values handed over as one
// transferred buffer); small ones inline, where a thread hop would cost more than it saves.
// Not built yet (see README): hot/warm/cold priority lanes.

import { Packr } from 'msgpackr';
import { Piscina } from 'piscina';
import { projectPath } from '../../config/paths.js';
import type { Consumer, KafkaClient, Producer } from '../../connectors/kafka.js';
import type { InventoryStore } from '../store/types.js';
import { decodeStockEvent, type DecodeRejection, type Decoded } from './codec.js';
import type { DecodeTask } from './decode-worker.js';
import { EngineMetrics } from './metrics.js';
import type { StockEvent } from '../core/types.js';

/** Events per store call: bounds one Redis script's run time. */
const applyChunkMax = 1_000;
/** Messages handed to one eachBatch call. */
const fetchBatchMax = 2_000;
/** From this many messages a batch is decoded in the worker pool. */
const workerBatchMin = 256;
/** Decode tasks waiting for a worker: at the bound, run() waits (the consumer stops fetching). */
const decodeQueueMax = 16;

const changePackr = new Packr({ useRecords: false });

export interface EngineTopics {
  stock: string;
  changes: string;
  dlq: string;
}

export interface EngineOptions {
  kafka: KafkaClient;
  topics: EngineTopics;
  groupId: string;
  /** How soon a dead engine's partitions move to a live one (librdkafka session.timeout.ms). */
  sessionTimeoutMs?: number;
  store: InventoryStore;
  /** When given, events for locations not in this list go to the DLQ. */
  locations?: string[];
  /** Worker threads decoding large batches (0: decode on the main thread). */
  decodeThreads?: number;
  log?: (message: string) => void;
}

export interface EngineCounters {
  consumed: number;
  applied: number;
  duplicate: number;
  stale: number;
  rejected: Partial<Record<DecodeRejection, number>>;
  /** Batches decoded in the worker pool rather than inline. */
  workerBatches: number;
}

export class StreamEngine {
  readonly counters: EngineCounters = { consumed: 0, applied: 0, duplicate: 0, stale: 0, rejected: {}, workerBatches: 0 };
  readonly metrics = new EngineMetrics();
  private consumer: Consumer | undefined;
  private producer: Producer | undefined;
  private decoder: Piscina<DecodeTask, Decoded[]> | undefined;

  constructor(private readonly options: EngineOptions) {}

  async start(): Promise<void> {
    const { kafka, topics, groupId } = this.options;
    const threads = this.options.decodeThreads ?? 1;
    if (threads > 0) {
      // The worker is the compiled file: npm run build (and npm test) write dist/.
      this.decoder = new Piscina({ filename: projectPath('dist', 'engine', 'stream', 'decode-worker.js'), minThreads: threads, maxThreads: threads, maxQueue: decodeQueueMax });
    }
    this.producer = kafka.producer({ kafkaJS: { acks: -1, idempotent: true }, 'linger.ms': 5 } as never);
    await this.producer.connect();
    this.consumer = kafka.consumer({
      kafkaJS: { groupId, fromBeginning: true, autoCommit: false, sessionTimeout: this.options.sessionTimeoutMs ?? 10_000 },
      'js.consumer.max.batch.size': fetchBatchMax,
    } as never);
    await this.consumer.connect();
    await this.consumer.subscribe({ topics: [topics.stock] });
    await this.consumer.run({
      eachBatchAutoResolve: false,
      partitionsConsumedConcurrently: 3,
      eachBatch: async ({ batch, resolveOffset }) => {
        if (batch.messages.length === 0) return;
        this.metrics.batchSize.observe(batch.messages.length);
        this.metrics.lag.set({ partition: String(batch.partition) }, Number(batch.offsetLag()));
        try {
          await this.handle(batch.partition, batch.messages);
        } catch (error) {
          // The batch is not committed: the consumer delivers it again (apply is idempotent).
          this.options.log?.(`batch of ${batch.messages.length} on partition ${batch.partition} failed, will be retried: ${error instanceof Error ? error.message : String(error)}`);
          throw error;
        }
        const last = batch.messages[batch.messages.length - 1]!.offset;
        // Without resolving, the client would fetch the batch again from its first offset.
        resolveOffset(last);
        // Committed only after every event of the batch is applied (or dead-lettered): a crash
        // before this line replays the batch, which the idempotent apply absorbs.
        await this.consumer!.commitOffsets([{ topic: topics.stock, partition: batch.partition, offset: String(BigInt(last) + 1n) }]);
      },
    });
  }

  private async decode(messages: { value: Buffer | null }[], nowMs: number): Promise<Decoded[]> {
    const locations = this.options.locations ?? [];
    if (!this.decoder || messages.length < workerBatchMin) {
      const known = locations.length > 0 ? new Set(locations) : undefined;
      return messages.map((m) => decodeStockEvent(m.value, { locationExists: known ? (id) => known.has(id) : undefined, nowMs }));
    }
    const lengths = messages.map((m) => (m.value ? m.value.length : -1));
    const buffer = new ArrayBuffer(lengths.reduce((n, l) => n + Math.max(0, l), 0));
    const view = new Uint8Array(buffer);
    let at = 0;
    for (const m of messages) {
      if (!m.value) continue;
      view.set(m.value, at);
      at += m.value.length;
    }
    this.counters.workerBatches += 1;
    return this.decoder.run({ buffer, lengths, locations, nowMs }, { transferList: [buffer] });
  }

  private async handle(partition: number, messages: { key: Buffer | null; value: Buffer | null; offset: string }[]): Promise<void> {
    const nowMs = Date.now();
    const good: StockEvent[] = [];
    const dead: { key: Buffer | null; value: Buffer | null; headers: Record<string, string> }[] = [];
    const decodedAll = await this.decode(messages, nowMs);
    messages.forEach((message, i) => {
      const decoded = decodedAll[i]!;
      if (decoded.ok) good.push(decoded.event);
      else {
        this.counters.rejected[decoded.reason] = (this.counters.rejected[decoded.reason] ?? 0) + 1;
        this.metrics.rejected.inc({ reason: decoded.reason });
        dead.push({
          key: message.key,
          value: message.value,
          headers: { reason: decoded.reason, detail: decoded.detail, 'source.topic': this.options.topics.stock, 'source.partition': String(partition), 'source.offset': message.offset },
        });
      }
    });
    this.counters.consumed += messages.length;
    this.metrics.consumed.inc(messages.length);
    const changes: { key: string; value: Buffer }[] = [];
    const stopTimer = this.metrics.applySeconds.startTimer();
    for (let i = 0; i < good.length; i += applyChunkMax) {
      const chunk = good.slice(i, i + applyChunkMax);
      const results = await this.options.store.applyEvents(chunk, nowMs);
      const visibleAtMs = Date.now();
      results.forEach((result, k) => {
        this.counters[result.outcome] += 1;
        this.metrics.outcomes.inc({ outcome: result.outcome });
        if (result.outcome !== 'applied') return;
        this.metrics.freshnessSeconds.observe(Math.max(0, visibleAtMs - chunk[k]!.asOf) / 1000);
        const p = result.position;
        changes.push({ key: p.sku, value: changePackr.pack({ sku: p.sku, location: p.location, onHand: p.onHand, reserved: p.reserved, visibleAtMs }) });
      });
    }
    stopTimer();
    const sends = [];
    if (dead.length > 0) sends.push(this.producer!.send({ topic: this.options.topics.dlq, messages: dead }));
    if (changes.length > 0) sends.push(this.producer!.send({ topic: this.options.topics.changes, messages: changes }));
    await Promise.all(sends);
  }

  /** Graceful stop: the batch in hand is applied and committed, then the clients leave. */
  async stop(): Promise<void> {
    await this.consumer?.disconnect();
    await this.producer?.disconnect();
    await this.decoder?.destroy();
    this.options.log?.(`engine stopped: ${JSON.stringify(this.counters)}`);
  }
}
