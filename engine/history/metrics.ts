// Prometheus metrics of the history writer and consumer. Registered on the registry given (the
// process's /metrics), or on a registry of their own.

import { Counter, Gauge, Histogram, Registry } from 'prom-client';

export class HistoryMetrics {
  readonly registry: Registry;
  readonly rowsWritten: Counter<'table'>;
  readonly insertSeconds: Histogram<'table'>;
  readonly failedBatches: Counter<'table'>;
  readonly droppedRows: Counter<'table'>;
  readonly queuedRows: Gauge<'table'>;
  readonly lag: Gauge<'topic' | 'partition'>;
  readonly skippedDuplicates: Counter<'topic'>;
  readonly undecodable: Counter<'topic'>;
  readonly repairedBatches: Counter<'table'>;

  constructor(registry?: Registry) {
    this.registry = registry ?? new Registry();
    const registers = [this.registry];
    this.rowsWritten = new Counter({ name: 'instock_history_rows_written_total', help: 'Rows inserted into ClickHouse, by table.', labelNames: ['table'], registers });
    this.insertSeconds = new Histogram({
      name: 'instock_history_insert_seconds',
      help: 'Duration of one ClickHouse insert (successful or not), by table.',
      labelNames: ['table'],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers,
    });
    this.failedBatches = new Counter({ name: 'instock_history_failed_batches_total', help: 'Insert attempts that failed (each is retried with backoff), by table.', labelNames: ['table'], registers });
    this.droppedRows = new Counter({ name: 'instock_history_dropped_rows_total', help: 'Rows dropped because the in-process queue was full (embedded feed only; the Kafka consumer pauses instead), by table.', labelNames: ['table'], registers });
    this.queuedRows = new Gauge({ name: 'instock_history_queued_rows', help: 'Rows waiting to be inserted, by table.', labelNames: ['table'], registers });
    this.lag = new Gauge({ name: 'instock_history_lag_messages', help: 'Kafka messages not yet committed by the history consumer, by topic and partition (as of the last batch).', labelNames: ['topic', 'partition'], registers });
    this.skippedDuplicates = new Counter({ name: 'instock_history_replayed_skipped_total', help: 'Replayed Kafka messages skipped because ClickHouse already had them (after a crash or rebalance), by topic.', labelNames: ['topic'], registers });
    this.repairedBatches = new Counter({ name: 'instock_history_repaired_batches_total', help: 'Stored batches inserted again with their own token after a crash, so that views which missed them get them (the table deduplicates them), by table.', labelNames: ['table'], registers });
    this.undecodable = new Counter({ name: 'instock_history_undecodable_total', help: 'Kafka messages that are not a valid record of their topic (not stored), by topic.', labelNames: ['topic'], registers });
  }
}
