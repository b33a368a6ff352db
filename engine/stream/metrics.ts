// The engine's Prometheus metrics and the small HTTP server that exports them (/metrics, /health).
// The Kafka engine and the in-process stream record the same series; the embedded default passes
// the gateway's registry so one /metrics shows both.

import { createServer, type Server } from 'node:http';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export class EngineMetrics {
  readonly registry: Registry;
  readonly consumed: Counter;
  readonly outcomes: Counter<'outcome'>;
  readonly rejected: Counter<'reason'>;
  readonly batchSize: Histogram;
  readonly applyBatchSize: Histogram;
  readonly applySeconds: Histogram;
  readonly freshnessSeconds: Histogram<'tier'>;
  readonly lag: Gauge<'partition'>;
  readonly queueDepth: Gauge<'tier'>;
  readonly coldLaneBytes: Gauge;
  readonly coldLaneSpilledBytes: Gauge;
  readonly coldHeld: Gauge;
  readonly undecodedCold: Counter;
  readonly pausedPartitions: Gauge;
  readonly workerUtilization: Gauge;
  readonly velocitySkus: Gauge<'tier'>;
  readonly reservationTransitions: Counter<'transition'>;
  readonly changesPublished: Counter;
  readonly changesReplayed: Counter;

  /** registry: register into it (e.g. the gateway's); absent: a registry of the engine's own with default metrics. */
  constructor(registry?: Registry) {
    this.registry = registry ?? new Registry();
    if (!registry) collectDefaultMetrics({ register: this.registry });
    const registers = [this.registry];
    this.consumed = new Counter({ name: 'instock_engine_events_consumed_total', help: 'Stock events taken from Kafka (or submitted in process).', registers });
    this.outcomes = new Counter({ name: 'instock_engine_events_applied_total', help: 'Valid stock events by what applying them did (applied, duplicate, stale).', labelNames: ['outcome'], registers });
    this.rejected = new Counter({ name: 'instock_engine_events_rejected_total', help: 'Events sent to the DLQ (or refused in process), by reason.', labelNames: ['reason'], registers });
    this.batchSize = new Histogram({ name: 'instock_engine_batch_size', help: 'Messages per consumed batch.', buckets: [1, 10, 50, 100, 250, 500, 1000, 2000], registers });
    this.applyBatchSize = new Histogram({ name: 'instock_engine_apply_batch_size', help: 'Events per store call (taken from the lanes, hot first).', buckets: [1, 10, 50, 100, 250, 500, 1000], registers });
    this.applySeconds = new Histogram({ name: 'instock_engine_apply_seconds', help: 'Time of one store call applying a chunk of events.', buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1], registers });
    this.freshnessSeconds = new Histogram({
      name: 'instock_engine_freshness_seconds',
      help: 'Source asOf to visible in the store, per applied event, by velocity tier of the SKU.',
      labelNames: ['tier'],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300],
      registers,
    });
    this.lag = new Gauge({ name: 'instock_engine_consumer_lag', help: 'Messages behind the partition end, as of the last batch.', labelNames: ['partition'], registers });
    this.queueDepth = new Gauge({ name: 'instock_engine_queue_depth', help: 'Events waiting in each priority lane.', labelNames: ['tier'], registers });
    this.coldLaneBytes = new Gauge({ name: 'instock_engine_cold_lane_bytes', help: 'Memory held by the packed cold lane (1 MiB slabs): what a backlog costs in memory.', registers });
    this.undecodedCold = new Counter({ name: 'instock_engine_cold_undecoded_total', help: 'Cold events queued in the cold lane undecoded, because reading was behind; each is decoded and validated when its turn to apply comes.', registers });
    this.coldHeld = new Gauge({ name: 'instock_engine_cold_held', help: '1 while the engine applies no cold events because its Kafka reading is behind (hot and warm still apply): reading comes first.', registers });
    this.coldLaneSpilledBytes = new Gauge({ name: 'instock_engine_cold_lane_spilled_bytes', help: 'Cold lane slabs written to disk past ENGINE_COLD_LANE_MEMORY_MB, waiting to be read back: what a backlog costs in disk.', registers });
    this.pausedPartitions = new Gauge({ name: 'instock_engine_paused_partitions', help: 'Partitions paused because a lane reached its bound.', registers });
    this.workerUtilization = new Gauge({ name: 'instock_engine_worker_utilization', help: 'Decode worker pool utilisation (0..1, piscina).', registers });
    this.velocitySkus = new Gauge({ name: 'instock_engine_velocity_skus', help: 'SKUs per velocity tier at the last retier.', labelNames: ['tier'], registers });
    this.reservationTransitions = new Counter({ name: 'instock_engine_reservation_transitions_total', help: 'Reservation transitions read for velocity, by kind (undecodable: "invalid").', labelNames: ['transition'], registers });
    this.changesPublished = new Counter({ name: 'instock_engine_changes_published_total', help: 'ATP changes published (inventory.changes or in-process listeners).', registers });
    this.changesReplayed = new Counter({ name: 'instock_engine_changes_replayed_total', help: 'Changes published again for events read again after a takeover that were already in the store (a previous owner may have applied them and died before their changes reached Kafka); included in changes_published.', registers });
    for (const tier of ['hot', 'warm', 'cold']) this.queueDepth.set({ tier }, 0);
    this.pausedPartitions.set(0);
  }
}

export function startMetricsServer(metrics: { registry: Registry }, host: string, port: number): Promise<Server> {
  const server = createServer((req, res) => {
    if (req.url === '/metrics') {
      void metrics.registry.metrics().then((text) => {
        res.writeHead(200, { 'content-type': metrics.registry.contentType });
        res.end(text);
      });
      return;
    }
    if (req.url === '/health') {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('{"status":"ok"}');
      return;
    }
    res.writeHead(404, { 'content-type': 'application/problem+json' });
    res.end(JSON.stringify({ type: 'about:blank', title: 'Not Found', status: 404, detail: `no route for ${req.method} ${req.url}: the engine serves /metrics and /health` }));
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve(server));
  });
}
