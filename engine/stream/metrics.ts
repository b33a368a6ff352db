// The engine's Prometheus metrics and the small HTTP server that exports them (/metrics, /health).

import { createServer, type Server } from 'node:http';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export class EngineMetrics {
  readonly registry = new Registry();
  readonly consumed = new Counter({ name: 'instock_engine_events_consumed_total', help: 'Stock events taken from Kafka.', registers: [this.registry] });
  readonly outcomes = new Counter({ name: 'instock_engine_events_applied_total', help: 'Valid stock events by what applying them did (applied, duplicate, stale).', labelNames: ['outcome'], registers: [this.registry] });
  readonly rejected = new Counter({ name: 'instock_engine_events_rejected_total', help: 'Events sent to the DLQ, by reason.', labelNames: ['reason'], registers: [this.registry] });
  readonly batchSize = new Histogram({ name: 'instock_engine_batch_size', help: 'Messages per consumed batch.', buckets: [1, 10, 50, 100, 250, 500, 1000, 2000], registers: [this.registry] });
  readonly applySeconds = new Histogram({ name: 'instock_engine_apply_seconds', help: 'Time to apply one batch to the store.', buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1], registers: [this.registry] });
  readonly freshnessSeconds = new Histogram({
    name: 'instock_engine_freshness_seconds',
    help: 'Source asOf to visible in the store, per applied event.',
    buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300],
    registers: [this.registry],
  });
  readonly lag = new Gauge({ name: 'instock_engine_consumer_lag', help: 'Messages behind the partition end, as of the last batch.', labelNames: ['partition'], registers: [this.registry] });

  constructor() {
    collectDefaultMetrics({ register: this.registry });
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
