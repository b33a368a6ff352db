// History for `instock start`: ClickHouse (chDB in-process by default, a server with
// CLICKHOUSE_URL), migrated at start; velocity seeded from it before the first event; in the
// embedded default the in-process feeds write to it directly, with Kafka a history consumer in its
// own group does. Analytics are served to `instock analytics` through the gateway, since chDB lets
// one process at a time open its data directory.

import type { Registry } from 'prom-client';
import type { Config } from '../config/config.js';
import type { KafkaClient } from '../connectors/kafka.js';
import type { StockEvent } from '../engine/core/types.js';
import type { VelocityTracker } from '../engine/core/velocity.js';
import { analyticsReports, runAnalytics, type AnalyticsReport } from '../engine/history/analytics.js';
import { chdbPathFor, connectClickHouse } from '../engine/history/clickhouse.js';
import { HistoryConsumer } from '../engine/history/consumer.js';
import { HistoryMetrics } from '../engine/history/metrics.js';
import { migrate } from '../engine/history/migrations.js';
import { seedTracker } from '../engine/history/velocity-seed.js';
import { HistoryWriter } from '../engine/history/writer.js';
import { LocalFeeds } from '../gateway/feeds.js';
import { HttpProblem } from '../gateway/http.js';
import type { AnalyticsQuery } from '../gateway/server.js';
import type { GatewayFeeds } from '../gateway/service.js';

/**
 * One availability request in this many is sampled into history (shapes, not every call), and at
 * most availabilitySamplesPerSecond of them a second: in the embedded default, chDB shares the
 * process's two cores with the gateway threads, and writing 1,400 samples a second (one in ten at
 * 14,000 requests/s) doubled the gateway's p99 at 70 % of its max (`.instock/prof/paced.mjs`).
 */
const availabilitySampleEvery = 10;
const availabilitySamplesPerSecond = 50;

/** Whether a request at atMs is sampled: one in `every`, and at most `perSecond` within a second of atMs. */
export function availabilitySampler(every: number, perSecond: number): (atMs: number) => boolean {
  let seen = 0;
  let second = Number.NaN;
  let taken = 0;
  return (atMs) => {
    if (seen++ % every !== 0) return false;
    const now = Math.floor(atMs / 1000);
    if (now !== second) {
      second = now;
      taken = 0;
    }
    return taken++ < perSecond;
  };
}

export interface RunningHistory {
  writer: { stockEvents(events: readonly StockEvent[]): void };
  analytics: (query: AnalyticsQuery) => Promise<Record<string, unknown>[]>;
  /** Writes every row queued so far (retrying while ClickHouse refuses). */
  flush(): Promise<void>;
  close(): Promise<void>;
}

export async function startHistory(config: Config, deps: { feeds: GatewayFeeds; velocity: VelocityTracker; registry: Registry; kafka?: KafkaClient; log: (message: string) => void }): Promise<RunningHistory> {
  const database = config.clickhouseDatabase;
  const client = connectClickHouse({ url: config.clickhouseUrl, chdbPath: chdbPathFor(config.dataDir), database });
  await migrate(client, database);
  const seeded = await seedTracker(client, database, deps.velocity, Date.now());
  deps.log(`history: ${config.clickhouseUrl || 'chDB (in-process)'} migrated; velocity seeded from ${seeded.entries} entries (${seeded.hot} hot, ${seeded.warm} warm SKUs)`);
  const writer = new HistoryWriter({ client, database, metrics: new HistoryMetrics(deps.registry), batchRowsMax: config.historyBatchRows, log: deps.log });
  // History never fails a caller: a refused write is counted by the writer's metrics.
  const quiet = (p: Promise<boolean>) => void p.catch(() => false);
  let consumer: HistoryConsumer | undefined;
  if (deps.feeds instanceof LocalFeeds) {
    const sampled = availabilitySampler(availabilitySampleEvery, availabilitySamplesPerSecond);
    deps.feeds.onChanges((changes) => quiet(writer.atpChanges(changes)));
    deps.feeds.onTransitions((transitions) => quiet(writer.reservationTransitions(transitions)));
    deps.feeds.onSample((sample) => {
      if (sampled(sample.atMs)) quiet(writer.availabilitySamples([sample]));
    });
  } else if (deps.kafka) {
    // With Kafka, history is its own consumer group: ClickHouse being slow never slows the engine.
    consumer = new HistoryConsumer({
      kafka: deps.kafka,
      topics: { stock: config.kafkaTopicStock, changes: config.kafkaTopicChanges, reservations: config.kafkaTopicReservations },
      groupId: config.kafkaHistoryGroupId,
      sessionTimeoutMs: config.kafkaSessionTimeoutMs,
      writer,
      client,
      database,
      log: deps.log,
    });
    await consumer.start();
  }
  return {
    writer: { stockEvents: (events) => quiet(writer.stockEvents(events)) },
    analytics: (query) => {
      if (!(analyticsReports as readonly string[]).includes(query.report)) throw new HttpProblem(404, 'Not Found', `no analytics report ${JSON.stringify(query.report)}: ${analyticsReports.join(', ')}`);
      return runAnalytics(client, database, { ...query, report: query.report as AnalyticsReport });
    },
    flush: () => writer.flush(),
    close: async () => {
      await consumer?.stop();
      await writer.close();
      await client.close();
    },
  };
}
