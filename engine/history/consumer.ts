// The history consumer: its own consumer group on inventory.stock, inventory.changes and
// inventory.reservations, writing every message to ClickHouse through a HistoryWriter and
// committing a partition's offsets only once everything before them is inserted.
//
// Kafka is the buffer. Batches are handed to the writer without waiting for their insert (so
// inserts are large: many fetches per insert); but while the writer's queue for the table is
// above its pause mark, a batch waits for room before it is handed over, so the consumer stops
// fetching. Bound: a table holds at most the pause mark plus the batches that passed the wait
// together (partitionsConsumedConcurrently × fetchBatchMax messages; reservations: a row per
// line). A wait can last as long as ClickHouse is down: max.poll.interval.ms is raised to an hour
// so the group does not evict a consumer that is only waiting (past it, it is evicted and rejoins;
// the replay check below absorbs the re-read). Pausing partitions instead was tried: the client
// did not deliver the paused partitions' messages again after resume.
// ClickHouse down or slow: inserts retry with
// backoff, this group's lag grows, the engine's group is untouched; when ClickHouse answers, the
// backlog drains. Nothing is committed that is not stored, so nothing is lost.
//
// No duplicates after a crash: between an insert and its offset commit the process can die, and
// the next owner of the partition reads those messages again. Every row carries its Kafka
// (partition, offset), and the tables have a projection sorted by them. The first time this process
// sees a partition, it asks ClickHouse for the highest offset already stored in the window the
// writer could have had uncommitted ([first offset, first + queue bound)); until it has passed that
// offset it asks, for each batch, which of the batch's offsets are stored, and skips exactly
// those. The check is exact (not "everything up to the max"), so an insert that stored only some
// month partitions of a batch loses nothing either. The stored rows' insert batches are inserted
// again whole, with their own tokens, so that views a crash cut off in the middle of an insert get
// them (writer.repairBatch). Within one process, messages read again after
// a rebalance are skipped by the offsets already handed to the writer.
//
// Assumed: one table per topic and a topic is never recreated under the same name while its
// history is kept (new offsets inside the window would be taken as stored); after a rebalance
// between two live consumers, an insert of the old owner still in flight when the new owner
// checks can be written twice (the session timeout, 10 s by default, makes that rare); two
// processes repairing the same batch at the same moment can both land on a non-replicated table
// (one process repairs a batch once; a replicated table's dedup log is atomic).

import type { ClickHouseClient } from '@clickhouse/client';
import { fetchQueueBackoffMs, type Consumer, type KafkaClient } from '../../connectors/kafka.js';
import type { StockEvent } from '../core/types.js';
import { decodeStockEvent } from '../stream/codec.js';
import { decodeAtpChange, decodeReservationTransition, type AtpChange, type ReservationTransition } from '../stream/wire.js';
import type { HistoryMetrics } from './metrics.js';
import type { HistorySource, HistoryTable, HistoryWriter } from './writer.js';
import { settlesWithin } from '../wait.js';

/** Messages handed to one eachBatch call. */
const fetchBatchMax = 5_000;
/** Offsets are committed at most this often (coalesced per partition). */
const commitIntervalMs = 250;
const progressEveryMs = 10_000;
/** A batch may wait this long for room in the writer (ClickHouse down) before the group evicts the consumer. */
const maxPollIntervalMs = 3_600_000;
/** How long stop() waits for the writer to store what it holds (ClickHouse may be down). */
const stopFlushTimeoutMs = 15_000;

export interface HistoryTopics {
  stock: string;
  changes: string;
  reservations: string;
}

export interface HistoryConsumerOptions {
  kafka: KafkaClient;
  topics: HistoryTopics;
  groupId: string;
  writer: HistoryWriter;
  /** The client the writer writes with: replayed offsets are checked against it. */
  client: ClickHouseClient;
  database: string;
  sessionTimeoutMs?: number;
  log?: (message: string) => void;
}

interface PartitionState {
  topic: string;
  partition: number;
  /** Highest offset handed to the writer by this process (-1: none). */
  enqueuedThrough: bigint;
  /** Stored offsets may exist up to here (from the first check); undefined: no more checks. */
  fenceThrough: bigint | undefined;
  /** Next offset to commit (everything before it is stored), and the last one committed. */
  committable: bigint;
  committed: bigint;
  highWatermark: bigint;
  /** Resolves when everything handed to the writer so far is settled, in offset order. */
  chain: Promise<void>;
  /** A write was refused: no more commits for this partition until the next start (replayed then). */
  held: boolean;
  /** The first-sight check against ClickHouse is done. */
  checked: boolean;
}

export class HistoryConsumer {
  readonly counters = { messages: 0, rows: 0, undecodable: 0, skippedReplayed: 0, committed: 0 };
  private consumer: Consumer | undefined;
  private readonly partitions = new Map<string, PartitionState>();
  /** Batches completed by this process, or being completed (a batch spans partitions: repaired once). */
  private readonly repairs = new Map<string, Promise<void>>();
  private readonly metrics: HistoryMetrics;
  private commitTimer: NodeJS.Timeout | undefined;
  private stopping = false;
  private lastProgressMs = 0;
  private committing: Promise<void> = Promise.resolve();

  constructor(private readonly options: HistoryConsumerOptions) {
    this.metrics = options.writer.metrics;
  }

  private tableOf(topic: string): HistoryTable {
    const { topics } = this.options;
    if (topic === topics.stock) return 'stock_events';
    if (topic === topics.changes) return 'atp_changes';
    if (topic === topics.reservations) return 'reservation_transitions';
    throw new Error(`history consumer: message from unexpected topic ${topic}`);
  }

  async start(): Promise<void> {
    const { kafka, topics, groupId } = this.options;
    this.consumer = kafka.consumer({
      kafkaJS: { groupId, fromBeginning: true, autoCommit: false, sessionTimeout: this.options.sessionTimeoutMs ?? 10_000 },
      'js.consumer.max.batch.size': fetchBatchMax,
      'max.poll.interval.ms': maxPollIntervalMs,
      'fetch.queue.backoff.ms': fetchQueueBackoffMs,
    } as never);
    await this.consumer.connect();
    await this.consumer.subscribe({ topics: [topics.stock, topics.changes, topics.reservations] });
    this.commitTimer = setInterval(() => {
      this.committing = this.committing.then(() => this.commit()).catch(() => undefined);
    }, commitIntervalMs);
    this.commitTimer.unref();
    await this.consumer.run({
      eachBatchAutoResolve: false,
      partitionsConsumedConcurrently: 3,
      eachBatch: async ({ batch, resolveOffset }) => {
        if (batch.messages.length === 0) return;
        await this.handle(batch.topic, batch.partition, batch.messages, BigInt(batch.highWatermark));
        resolveOffset(batch.messages[batch.messages.length - 1]!.offset);
      },
    });
  }

  private state(topic: string, partition: number, firstOffset: bigint): PartitionState {
    const key = `${topic}\u0000${partition}`;
    let s = this.partitions.get(key);
    if (!s) {
      s = { topic, partition, enqueuedThrough: -1n, fenceThrough: undefined, committable: firstOffset, committed: firstOffset, highWatermark: firstOffset, chain: Promise.resolve(), held: false, checked: false };
      this.partitions.set(key, s);
    }
    return s;
  }

  /** First sight of a partition: the highest offset ClickHouse may already hold from a previous run. */
  private async fence(s: PartitionState, table: HistoryTable, firstOffset: bigint): Promise<void> {
    const window = BigInt(this.options.writer.queueRowsMax + this.options.writer.batchRowsMax);
    const result = await this.options.client.query({
      query: `SELECT count() AS n, max(src_offset) AS m FROM ${this.options.database}.${table} WHERE src_partition = {p:UInt16} AND src_offset >= {a:UInt64} AND src_offset < {b:UInt64}`,
      query_params: { p: s.partition, a: firstOffset.toString(), b: (firstOffset + window).toString() },
      format: 'JSONEachRow',
    });
    const [row] = await result.json<{ n: string | number; m: string | number }>();
    s.fenceThrough = row && Number(row.n) > 0 ? BigInt(row.m) : undefined;
    if (s.fenceThrough === undefined || table === 'availability_samples') return;
    this.options.log?.(`history: ${s.topic}[${s.partition}] from offset ${firstOffset}: offsets up to ${s.fenceThrough} may already be stored (a previous run's uncommitted inserts); skipping those found`);
    // The previous run may have died inside one of those inserts, after the table's part and
    // before a view's: each batch found is inserted again whole with its token (writer.repairBatch).
    const batches = await this.options.client.query({
      query: `SELECT DISTINCT insert_batch AS b FROM ${this.options.database}.${table} WHERE src_partition = {p:UInt16} AND src_offset >= {a:UInt64} AND src_offset <= {z:UInt64} AND insert_batch != ''`,
      query_params: { p: s.partition, a: firstOffset.toString(), z: s.fenceThrough.toString() },
      format: 'JSONEachRow',
    });
    for (const { b } of await batches.json<{ b: string }>()) {
      // Partitions are checked concurrently and a batch spans several: one repair per batch, the
      // others wait for it (two concurrent inserts with one token can both land on a
      // non-replicated table).
      let repair = this.repairs.get(b);
      if (!repair) {
        repair = this.options.writer.repairBatch(table, b).then((rows) => {
          this.options.log?.(`history: batch ${b} (${rows} rows of ${table}) inserted again with its token, so that views which missed it in the crash get it`);
        });
        this.repairs.set(b, repair);
        // A failed repair is retried by the next check (retrying() runs fence again).
        repair.catch(() => this.repairs.delete(b));
      }
      await repair;
    }
  }

  private async storedOffsets(s: PartitionState, table: HistoryTable, from: bigint, through: bigint): Promise<Set<string>> {
    const result = await this.options.client.query({
      query: `SELECT DISTINCT src_offset AS o FROM ${this.options.database}.${table} WHERE src_partition = {p:UInt16} AND src_offset >= {a:UInt64} AND src_offset <= {b:UInt64}`,
      query_params: { p: s.partition, a: from.toString(), b: through.toString() },
      format: 'JSONEachRow',
    });
    return new Set((await result.json<{ o: string | number }>()).map((r) => String(r.o)));
  }

  private async handle(topic: string, partition: number, messages: { value: Buffer | null; offset: string; timestamp: string }[], highWatermark: bigint): Promise<void> {
    const table = this.tableOf(topic);
    const firstOffset = BigInt(messages[0]!.offset);
    const lastOffset = BigInt(messages[messages.length - 1]!.offset);
    const s = this.state(topic, partition, firstOffset);
    s.highWatermark = highWatermark;
    if (!s.checked) {
      await this.retrying(() => this.fence(s, table, firstOffset));
      s.checked = true;
    }

    let stored: Set<string> | undefined;
    if (s.fenceThrough !== undefined) {
      const through = s.fenceThrough < lastOffset ? s.fenceThrough : lastOffset;
      if (firstOffset <= through) stored = await this.retrying(() => this.storedOffsets(s, table, firstOffset, through));
      if (lastOffset >= s.fenceThrough) s.fenceThrough = undefined;
    }

    await this.options.writer.room(table);
    const receivedAtMs = Date.now();
    const stock: (StockEvent & HistorySource)[] = [];
    const changes: (AtpChange & HistorySource)[] = [];
    const transitions: (ReservationTransition & HistorySource)[] = [];
    let skipped = 0;
    for (const m of messages) {
      const offset = BigInt(m.offset);
      if (offset <= s.enqueuedThrough || stored?.has(m.offset)) {
        skipped += 1;
        continue;
      }
      // The decoded objects are this loop's own: the source is set on them (no copy per record).
      let record: HistorySource | undefined;
      if (table === 'stock_events') {
        // Rejected events are the DLQ's (with their reason); history keeps valid events.
        const decoded = decodeStockEvent(m.value);
        if (decoded.ok) stock.push((record = decoded.event as StockEvent & HistorySource));
      } else if (table === 'atp_changes') {
        const change = decodeAtpChange(m.value);
        if (change) changes.push((record = change as AtpChange & HistorySource));
      } else {
        const transition = decodeReservationTransition(m.value);
        if (transition) transitions.push((record = transition as ReservationTransition & HistorySource));
      }
      if (!record) {
        this.countUndecodable(topic);
        continue;
      }
      record.srcPartition = partition;
      record.srcOffset = Number(offset);
      record.receivedAtMs = receivedAtMs;
    }
    if (skipped > 0) {
      this.counters.skippedReplayed += skipped;
      this.metrics.skippedDuplicates.inc({ topic }, skipped);
    }
    const { writer } = this.options;
    const accept = { pastQueueBound: true };
    const written = table === 'stock_events' ? writer.stockEvents(stock, accept) : table === 'atp_changes' ? writer.atpChanges(changes, accept) : writer.reservationTransitions(transitions, accept);
    if (lastOffset > s.enqueuedThrough) s.enqueuedThrough = lastOffset;
    this.counters.messages += messages.length;
    this.counters.rows += stock.length + changes.length + transitions.reduce((n, t) => n + t.lines.length, 0);
    const previous = s.chain;
    // Offsets become committable in order: only when this batch and every earlier one are stored.
    s.chain = (async () => {
      const ok = await written;
      await previous;
      if (!ok) {
        if (!this.stopping && !s.held) this.options.log?.(`history: ${topic}[${partition}] rows refused by the writer (queue full or closed): commits held, offsets from ${s.committable} will be read again at the next start`);
        s.held = true;
      }
      if (!s.held && lastOffset + 1n > s.committable) s.committable = lastOffset + 1n;
    })();
    this.metrics.lag.set({ topic, partition: String(partition) }, Number(highWatermark - s.committed));
    const nowMs = Date.now();
    if (nowMs - this.lastProgressMs >= progressEveryMs) {
      this.lastProgressMs = nowMs;
      this.options.log?.(`history: ${this.counters.messages} messages read, ${this.counters.committed} committed, ${this.counters.skippedReplayed} replayed skipped`);
    }
  }

  private countUndecodable(topic: string): void {
    this.counters.undecodable += 1;
    this.metrics.undecodable.inc({ topic });
  }

  /** ClickHouse checks retry with backoff like inserts: a down ClickHouse pauses this partition, never drops. */
  private async retrying<T>(fn: () => Promise<T>): Promise<T> {
    let delayMs = 100;
    for (;;) {
      try {
        return await fn();
      } catch (error) {
        if (this.stopping) throw error;
        this.options.log?.(`history: ClickHouse check failed, retrying in ${delayMs} ms: ${error instanceof Error ? error.message.split('\n')[0] : String(error)}`);
        await new Promise((resolve) => setTimeout(resolve, delayMs));
        delayMs = Math.min(10_000, delayMs * 2);
      }
    }
  }

  private async commit(): Promise<void> {
    if (!this.consumer) return;
    const offsets = [...this.partitions.values()].filter((s) => s.committable > s.committed);
    if (offsets.length === 0) return;
    const targets = offsets.map((s) => ({ s, offset: s.committable }));
    try {
      await this.consumer.commitOffsets(targets.map(({ s, offset }) => ({ topic: s.topic, partition: s.partition, offset: offset.toString() })));
      for (const { s, offset } of targets) {
        this.counters.committed += Number(offset - s.committed);
        s.committed = offset;
        this.metrics.lag.set({ topic: s.topic, partition: String(s.partition) }, Number(s.highWatermark > offset ? s.highWatermark - offset : 0n));
      }
    } catch (error) {
      // Not fatal: the next commit carries the same offsets (a rebalance makes this partition's
      // next owner read them again, and the replay check skips what is stored).
      this.options.log?.(`history: offset commit failed: ${error instanceof Error ? error.message : String(error)}`);
    }
  }

  /** Stops fetching, lets the writer store what it holds (bounded wait), commits, leaves the group. */
  async stop(): Promise<void> {
    this.stopping = true;
    await settlesWithin(this.options.writer.flush(), stopFlushTimeoutMs);
    await settlesWithin(Promise.all([...this.partitions.values()].map((s) => s.chain)), 1_000);
    clearInterval(this.commitTimer);
    await this.committing;
    await this.commit();
    await this.consumer?.disconnect();
    this.options.log?.(`history consumer stopped: ${JSON.stringify(this.counters)}`);
  }
}
