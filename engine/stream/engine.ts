// The stream engine (first slice): a consumer group on inventory.stock that decodes and validates
// each batch, sends bad events to the DLQ with their reason and original bytes, applies the good
// ones to the store in batches, publishes the changed positions to inventory.changes, and only
// then commits the batch's offsets. Apply is idempotent (the store drops duplicates and stale
// events), so a crash anywhere replays at most the uncommitted batch and double-counts nothing.
//
// Not built yet (see README): worker-thread decoding, hot/warm/cold priority lanes, metrics.

import { Packr } from 'msgpackr';
import type { Consumer, KafkaClient, Producer } from '../../connectors/kafka.js';
import type { InventoryStore } from '../store/types.js';
import { decodeStockEvent, type DecodeRejection } from './codec.js';
import { EngineMetrics } from './metrics.js';
import type { StockEvent } from '../core/types.js';

/** Events per store call: bounds one Redis script's run time. */
const applyChunkMax = 1_000;
/** Messages handed to one eachBatch call. */
const fetchBatchMax = 2_000;

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
  /** When given, events for unknown locations go to the DLQ. */
  locationExists?: (id: string) => boolean;
  log?: (message: string) => void;
}

export interface EngineCounters {
  consumed: number;
  applied: number;
  duplicate: number;
  stale: number;
  rejected: Partial<Record<DecodeRejection, number>>;
}

export class StreamEngine {
  readonly counters: EngineCounters = { consumed: 0, applied: 0, duplicate: 0, stale: 0, rejected: {} };
  readonly metrics = new EngineMetrics();
  private consumer: Consumer | undefined;
  private producer: Producer | undefined;

  constructor(private readonly options: EngineOptions) {}

  async start(): Promise<void> {
    const { kafka, topics, groupId } = this.options;
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

  private async handle(partition: number, messages: { key: Buffer | null; value: Buffer | null; offset: string }[]): Promise<void> {
    const nowMs = Date.now();
    const good: StockEvent[] = [];
    const dead: { key: Buffer | null; value: Buffer | null; headers: Record<string, string> }[] = [];
    for (const message of messages) {
      const decoded = decodeStockEvent(message.value, { locationExists: this.options.locationExists, nowMs });
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
    }
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
    this.options.log?.(`engine stopped: ${JSON.stringify(this.counters)}`);
  }
}
