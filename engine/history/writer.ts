// Batched, retried, deduplicated inserts into the history tables, independent of where rows come
// from: the Kafka history consumer (consumer.ts) and the in-process feeds of the embedded default
// both call it. Nothing here is on the ATP path: callers enqueue and go on.
//
// - Bounded: each table's queue holds at most `queueRowsMax` rows. Past it, rows are refused
//   (the returned promise resolves false) and counted in instock_history_dropped_rows_total. The
//   Kafka consumer never gets there: it waits for `room()` (below `pauseRows()`) before handing
//   over a batch, so it stops fetching and Kafka is the buffer; the embedded feeds have no buffer
//   but memory, and drop rather than slow ATP.
// - Batched: a table is flushed when it holds `batchRowsMax` rows, or `flushIntervalMs` after
//   its oldest queued row, whichever comes first. One insert in flight per table, in queue order,
//   so the rows of one Kafka partition are written in offset order.
// - Retried: a failed insert is retried with the same rows and the same
//   insert_deduplication_token, with exponential backoff (100 ms doubling to 10 s), until it
//   succeeds or close() gives up. If the server stored the batch but the answer was lost (a
//   timeout), the retry is dropped by the server, in the table and in its materialized views.
//   Why a token and not ReplacingMergeTree on an event id: the materialized views aggregate at
//   insert time, so a duplicate that only merges away later in the raw table would stay counted
//   in velocity forever; and rows are one per message received (the sources' own duplicate
//   eventIds are part of history), so there is no natural row key to replace on.

import { randomUUID } from 'node:crypto';
import type { ClickHouseClient } from '@clickhouse/client';
import type { StockEvent } from '../core/types.js';
import type { AtpChange, ReservationTransition } from '../stream/wire.js';
import { HistoryMetrics } from './metrics.js';

export type HistoryTable = 'stock_events' | 'atp_changes' | 'reservation_transitions' | 'availability_samples';
export const historyTables: readonly HistoryTable[] = ['stock_events', 'atp_changes', 'reservation_transitions', 'availability_samples'];

/** Column order of the compact rows each table receives (JSONCompactEachRow). */
export const historyColumns: Record<HistoryTable, readonly string[]> = {
  stock_events: ['at', 'sku', 'location', 'type', 'qty', 'event_id', 'source', 'received_at', 'src_partition', 'src_offset', 'insert_batch'],
  atp_changes: ['visible_at', 'sku', 'location', 'on_hand', 'reserved', 'position_version', 'atp', 'as_of', 'src_partition', 'src_offset', 'insert_batch'],
  reservation_transitions: ['at', 'sku', 'channel', 'location', 'transition', 'qty', 'reservation_id', 'line', 'expires_at', 'src_partition', 'src_offset', 'insert_batch'],
  availability_samples: ['at', 'channel', 'lines', 'options', 'latency_ms', 'methods'],
};

/**
 * Where a record came from. From Kafka: its partition and offset (what the consumer uses to skip
 * replayed messages already stored). Absent for in-process feeds: the writer numbers them.
 */
export interface HistorySource {
  srcPartition?: number;
  srcOffset?: number;
  /** When the record was read; defaults to the enqueue time. */
  receivedAtMs?: number;
}

/** Partition number of rows that did not come from Kafka (the embedded default's feeds). */
export const inProcessPartition = 65_535;

export interface AvailabilitySample {
  atMs: number;
  channel: string;
  lines: number;
  options: number;
  latencyMs: number;
  /** e.g. "delivery,pickup" */
  methods: string;
}

export interface HistoryWriterOptions {
  client: ClickHouseClient;
  database: string;
  metrics?: HistoryMetrics;
  /** Rows per insert at most. 100 k: large parts (ClickHouse wants few, big inserts), a few MB per request. */
  batchRowsMax?: number;
  /** A queued row waits at most this long before its table is flushed. */
  flushIntervalMs?: number;
  /** Rows queued per table at most (memory bound: ~200 bytes a row, so 1 M ≈ 200 MB worst case). */
  queueRowsMax?: number;
  retryDelayMsMin?: number;
  retryDelayMsMax?: number;
  /** Test hook: runs before each insert attempt and may throw (ClickHouse made to fail). */
  beforeInsert?: (table: HistoryTable, rows: number) => void | Promise<void>;
  log?: (message: string) => void;
}

export interface EnqueueOptions {
  /**
   * Accept the rows even past queueRowsMax. For a caller that bounds the queue itself: the Kafka
   * consumer waits for room() before each batch, but several partitions' batches can pass that
   * wait together, and a refused row would be a gap in what it commits (a few fetches' worth).
   */
  pastQueueBound?: boolean;
}

interface Chunk {
  rows: unknown[][];
  done: (written: boolean) => void;
}

interface Batch {
  chunks: Chunk[];
  rows: unknown[][];
  token: string;
  attempts: number;
}

interface TableQueue {
  table: HistoryTable;
  chunks: Chunk[];
  rows: number;
  oldestAtMs: number;
  inFlight: Batch | undefined;
  running: Promise<void> | undefined;
  retryAtMs: number;
}

export class HistoryWriter {
  readonly metrics: HistoryMetrics;
  readonly batchRowsMax: number;
  readonly queueRowsMax: number;
  private readonly flushIntervalMs: number;
  private readonly retryDelayMsMin: number;
  private readonly retryDelayMsMax: number;
  private readonly queues: Map<HistoryTable, TableQueue>;
  /** Tokens are unique per writer instance and batch, and reused by the batch's retries. */
  private readonly writerId = randomUUID().slice(0, 8);
  private batchSeq = 0;
  private inProcessSeq = Date.now() * 1000;
  private readonly timer: NodeJS.Timeout;
  private closed = false;

  constructor(private readonly options: HistoryWriterOptions) {
    this.metrics = options.metrics ?? new HistoryMetrics();
    this.batchRowsMax = options.batchRowsMax ?? 100_000;
    this.flushIntervalMs = options.flushIntervalMs ?? 1_000;
    this.queueRowsMax = options.queueRowsMax ?? 1_000_000;
    this.retryDelayMsMin = options.retryDelayMsMin ?? 100;
    this.retryDelayMsMax = options.retryDelayMsMax ?? 10_000;
    if (this.queueRowsMax < 2 * this.batchRowsMax) throw new Error(`history writer: queueRowsMax ${this.queueRowsMax} must be at least 2 × batchRowsMax ${this.batchRowsMax}`);
    this.queues = new Map(historyTables.map((table) => [table, { table, chunks: [], rows: 0, oldestAtMs: 0, inFlight: undefined, running: undefined, retryAtMs: 0 }]));
    // A coarse tick drives time-based flushes and retries: cheaper than a timer per table or row.
    this.timer = setInterval(() => this.tick(), Math.max(10, Math.min(100, this.flushIntervalMs / 4)));
    this.timer.unref();
  }

  /** Rows queued (and in flight) for a table. */
  pendingRows(table: HistoryTable): number {
    const q = this.queues.get(table)!;
    return q.rows + (q.inFlight?.rows.length ?? 0);
  }

  /** Above this many pending rows in a table, a Kafka consumer should stop fetching. */
  pauseRows(): number {
    return this.queueRowsMax - this.batchRowsMax;
  }

  /** Resolves when the table's pending rows are below pauseRows() (or the writer is closed). */
  async room(table: HistoryTable): Promise<void> {
    while (!this.closed && this.pendingRows(table) >= this.pauseRows()) await new Promise((resolve) => setTimeout(resolve, 50));
  }

  // Row building is on the hot path of every record (1 M rows/s of it would be a core): plain
  // loops and literal arrays, no spreads (a spread per row cost more than the insert itself).
  private partitionOf(s: HistorySource): number {
    return s.srcPartition !== undefined && s.srcOffset !== undefined ? s.srcPartition : inProcessPartition;
  }

  private offsetOf(s: HistorySource): number {
    return s.srcPartition !== undefined && s.srcOffset !== undefined ? s.srcOffset : this.inProcessSeq++;
  }

  /** Stock events after validation (one row each). Resolves true once inserted, false if refused. */
  stockEvents(rows: readonly (StockEvent & HistorySource)[], options?: EnqueueOptions): Promise<boolean> {
    const nowMs = Date.now();
    const out: unknown[][] = new Array<unknown[]>(rows.length);
    for (let i = 0; i < rows.length; i++) {
      const e = rows[i]!;
      out[i] = [e.asOf, e.sku, e.location, e.type, e.qty, e.eventId, e.source ?? '', e.receivedAtMs ?? nowMs, this.partitionOf(e), this.offsetOf(e)];
    }
    return this.enqueue('stock_events', out, options);
  }

  /** ATP changes (one row per changed position). */
  atpChanges(rows: readonly (AtpChange & HistorySource)[], options?: EnqueueOptions): Promise<boolean> {
    const out: unknown[][] = new Array<unknown[]>(rows.length);
    for (let i = 0; i < rows.length; i++) {
      const c = rows[i]!;
      out[i] = [c.visibleAtMs, c.sku, c.location, c.onHand, c.reserved, c.version, c.atp ?? {}, c.asOfMs ?? 0, this.partitionOf(c), this.offsetOf(c)];
    }
    return this.enqueue('atp_changes', out, options);
  }

  /** Reservation transitions (one row per line). */
  reservationTransitions(rows: readonly (ReservationTransition & HistorySource)[], options?: EnqueueOptions): Promise<boolean> {
    const out: unknown[][] = [];
    for (const t of rows) {
      const partition = this.partitionOf(t);
      const offset = this.offsetOf(t);
      for (let i = 0; i < t.lines.length; i++) {
        const l = t.lines[i]!;
        out.push([t.atMs, l.sku, t.channel, l.location, t.transition, l.qty, t.reservationId, i, t.expiresAtMs ?? 0, partition, offset]);
      }
    }
    return this.enqueue('reservation_transitions', out, options);
  }

  /** Samples of availability requests (the caller samples; every row given is written). */
  availabilitySamples(rows: readonly AvailabilitySample[]): Promise<boolean> {
    return this.enqueue('availability_samples', rows.map((s) => [s.atMs, s.channel, s.lines, s.options, s.latencyMs, s.methods]));
  }

  private enqueue(table: HistoryTable, rows: unknown[][], options?: EnqueueOptions): Promise<boolean> {
    if (rows.length === 0) return Promise.resolve(true);
    const q = this.queues.get(table)!;
    if (this.closed || (!options?.pastQueueBound && this.pendingRows(table) + rows.length > this.queueRowsMax)) {
      this.metrics.droppedRows.inc({ table }, rows.length);
      return Promise.resolve(false);
    }
    return new Promise<boolean>((done) => {
      if (q.rows === 0) q.oldestAtMs = Date.now();
      q.chunks.push({ rows, done });
      q.rows += rows.length;
      this.metrics.queuedRows.set({ table }, this.pendingRows(table));
      if (q.rows >= this.batchRowsMax) this.kick(q);
    });
  }

  private tick(): void {
    const nowMs = Date.now();
    for (const q of this.queues.values()) {
      if (q.running) continue;
      if (q.inFlight ? nowMs >= q.retryAtMs : q.rows > 0 && nowMs - q.oldestAtMs >= this.flushIntervalMs) this.kick(q);
    }
  }

  /** Starts the table's insert loop unless it runs; it runs until the queue is below a batch. */
  private kick(q: TableQueue, force = false): Promise<void> {
    if (!q.running) {
      q.running = this.drain(q, force).finally(() => {
        q.running = undefined;
      });
    }
    return q.running;
  }

  private takeBatch(q: TableQueue): Batch {
    const chunks: Chunk[] = [];
    const rows: unknown[][] = [];
    // Whole chunks (a chunk is one caller's call, resolved together); at least one.
    while (q.chunks.length > 0 && (chunks.length === 0 || rows.length + q.chunks[0]!.rows.length <= this.batchRowsMax)) {
      const chunk = q.chunks.shift()!;
      chunks.push(chunk);
      for (const r of chunk.rows) rows.push(r);
    }
    q.rows -= rows.length;
    q.oldestAtMs = Date.now();
    const token = `${this.writerId}-${q.table}-${++this.batchSeq}`;
    // Raw rows keep their batch's token (insert_batch, the last column): see repairBatch.
    if (q.table !== 'availability_samples') for (const r of rows) r.push(token);
    return { chunks, rows, token, attempts: 0 };
  }

  private async drain(q: TableQueue, force: boolean): Promise<void> {
    for (;;) {
      if (q.inFlight && !force && Date.now() < q.retryAtMs) return;
      if (!q.inFlight) {
        const due = q.rows >= this.batchRowsMax || (q.rows > 0 && (force || Date.now() - q.oldestAtMs >= this.flushIntervalMs));
        if (!due) return;
        q.inFlight = this.takeBatch(q);
      }
      const batch = q.inFlight;
      if (!(await this.insert(q.table, batch))) {
        // Back off; tick() resumes after retryAtMs (flush() and close() wait for it).
        const delayMs = Math.min(this.retryDelayMsMax, this.retryDelayMsMin * 2 ** Math.min(20, batch.attempts - 1));
        q.retryAtMs = Date.now() + delayMs;
        return;
      }
      q.retryAtMs = 0;
      q.inFlight = undefined;
      this.metrics.queuedRows.set({ table: q.table }, this.pendingRows(q.table));
      for (const chunk of batch.chunks) chunk.done(true);
    }
  }

  private insertSettings(token: string) {
    return {
      insert_deduplicate: 1 as const,
      insert_deduplication_token: token,
      deduplicate_blocks_in_dependent_materialized_views: 1 as const,
      // One block per insert, so the token covers the whole batch: no row limit below the batch,
      // and no parallel parsing (past 10 MB of input it cuts the insert into blocks by bytes; a
      // batch read back for repairBatch is formatted longer than the original and would be cut
      // differently, its blocks then taken for new ones).
      max_insert_block_size: String(Math.max(this.batchRowsMax, 1_048_576)),
      input_format_parallel_parsing: 0 as const,
    };
  }

  /**
   * After a crash, a stored batch may have reached its table but not every view (ClickHouse writes
   * each as its own part). Inserting the batch's rows again, read back from the table, with its
   * own token, is deduplicated by the table and by every view that has it; a view that missed it
   * gets it. Idempotent. Returns the rows read (0: no such batch).
   */
  async repairBatch(table: Exclude<HistoryTable, 'availability_samples'>, token: string): Promise<number> {
    const { client, database } = this.options;
    const columns = historyColumns[table];
    const result = await client.query({
      query: `SELECT ${columns.join(', ')} FROM ${database}.${table} WHERE insert_batch = {token:String}`,
      query_params: { token },
      format: 'JSONCompactEachRow',
    });
    const rows = await result.json<unknown[]>();
    if (rows.length === 0) return 0;
    await client.insert({ table: `${database}.${table}`, values: rows, columns: columns as [string, ...string[]], format: 'JSONCompactEachRow', clickhouse_settings: this.insertSettings(token) });
    this.metrics.repairedBatches.inc({ table });
    return rows.length;
  }

  private async insert(table: HistoryTable, batch: Batch): Promise<boolean> {
    batch.attempts += 1;
    const stopTimer = this.metrics.insertSeconds.startTimer({ table });
    try {
      await this.options.beforeInsert?.(table, batch.rows.length);
      await this.options.client.insert({
        table: `${this.options.database}.${table}`,
        values: batch.rows,
        columns: historyColumns[table] as [string, ...string[]],
        format: 'JSONCompactEachRow',
        clickhouse_settings: this.insertSettings(batch.token),
      });
      stopTimer();
      this.metrics.rowsWritten.inc({ table }, batch.rows.length);
      return true;
    } catch (error) {
      stopTimer();
      this.metrics.failedBatches.inc({ table });
      const message = error instanceof Error ? error.message.split('\n')[0] : String(error);
      if (batch.attempts === 1 || batch.attempts % 10 === 0) this.options.log?.(`history: insert of ${batch.rows.length} rows into ${table} failed (attempt ${batch.attempts}), retrying with backoff: ${message}`);
      return false;
    }
  }

  /** Inserts everything queued before the call, retrying until it is written. */
  async flush(): Promise<void> {
    await Promise.all([...this.queues.values()].map((q) => this.flushTable(q, Infinity)));
  }

  private async flushTable(q: TableQueue, deadlineMs: number): Promise<boolean> {
    for (;;) {
      if (q.running) await q.running;
      if (q.rows === 0 && !q.inFlight) return true;
      if (Date.now() > deadlineMs) return false;
      const waitMs = q.inFlight ? Math.max(0, q.retryAtMs - Date.now()) : 0;
      if (waitMs > 0) await new Promise((resolve) => setTimeout(resolve, Math.min(waitMs, Math.max(0, deadlineMs - Date.now()))));
      await this.kick(q, true);
    }
  }

  /**
   * Flushes (retrying for up to `timeoutMs`), then refuses new rows. Rows still unwritten at the
   * deadline are given up: their promises resolve false (a Kafka consumer has not committed them,
   * so they are read again at the next start).
   */
  async close(timeoutMs = 30_000): Promise<void> {
    const deadlineMs = Date.now() + timeoutMs;
    await Promise.all([...this.queues.values()].map((q) => this.flushTable(q, deadlineMs)));
    this.closed = true;
    clearInterval(this.timer);
    for (const q of this.queues.values()) {
      if (q.running) await q.running;
      for (const chunk of [...(q.inFlight?.chunks ?? []), ...q.chunks]) chunk.done(false);
      q.inFlight = undefined;
      q.chunks = [];
      q.rows = 0;
    }
  }
}
