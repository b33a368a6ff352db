// `instock history` (the Kafka history consumer as its own process) and `instock analytics`
// (reports for data teams).
//
// chDB lets one process at a time open its data directory, so `instock analytics` picks:
//   CLICKHOUSE_URL set                         → the ClickHouse server;
//   INSTOCK_DATA_DIR/embedded.json, pid alive  → the running `instock start`, over HTTP
//                                                (GET /v1/analytics/{report}, admin key from the file);
//   otherwise                                  → the chDB directory itself.

import { existsSync, readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Registry, collectDefaultMetrics } from 'prom-client';
import type { Config } from '../config/config.js';
import { AnalyticsError, analyticsReports, runAnalytics, type AnalyticsQuery, type AnalyticsReport } from '../engine/history/analytics.js';
import { chdbPathFor, connectClickHouse } from '../engine/history/clickhouse.js';
import { migrate } from '../engine/history/migrations.js';

const write = (line: string) => process.stdout.write(`${line}\n`);

export async function historyCommand(config: Config, args: string[] = []): Promise<number> {
  parseArgs({ args, allowPositionals: false, strict: true, options: {} });
  if (config.kafkaBrokers.length === 0) {
    process.stderr.write('instock history: KAFKA_BROKERS is empty: the history consumer reads Kafka (set it, e.g. KAFKA_BROKERS=127.0.0.1:19092; the embedded `instock start` writes history itself)\n');
    return 2;
  }
  // Listening from the start: a SIGTERM during start-up still stops cleanly (exit 0).
  const stopRequested = new Promise<void>((resolve) => {
    process.once('SIGTERM', resolve);
    process.once('SIGINT', resolve);
  });
  const { kafkaClient } = await import('../connectors/kafka.js');
  const { HistoryConsumer } = await import('../engine/history/consumer.js');
  const { HistoryWriter } = await import('../engine/history/writer.js');
  const { HistoryMetrics } = await import('../engine/history/metrics.js');
  const client = connectClickHouse({ url: config.clickhouseUrl, chdbPath: chdbPathFor(config.dataDir), database: config.clickhouseDatabase });
  const applied = await migrate(client, config.clickhouseDatabase);
  if (applied.length > 0) write(`history: migrations ${applied.join(', ')} applied to ${config.clickhouseDatabase}`);
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const metrics = new HistoryMetrics(registry);
  const writer = new HistoryWriter({ client, database: config.clickhouseDatabase, metrics, batchRowsMax: config.historyBatchRows, log: write });
  const consumer = new HistoryConsumer({
    kafka: kafkaClient(config.kafkaBrokers, 'instock-history', config.logLevel),
    topics: { stock: config.kafkaTopicStock, changes: config.kafkaTopicChanges, reservations: config.kafkaTopicReservations },
    groupId: config.kafkaHistoryGroupId,
    sessionTimeoutMs: config.kafkaSessionTimeoutMs,
    writer,
    client,
    database: config.clickhouseDatabase,
    log: write,
  });
  const server = createServer((req, res) => {
    if (req.url === '/metrics') {
      void registry.metrics().then((text) => {
        res.writeHead(200, { 'content-type': registry.contentType });
        res.end(text);
      });
      return;
    }
    res.writeHead(req.url === '/health' ? 200 : 404, { 'content-type': 'application/json' });
    res.end(req.url === '/health' ? '{"status":"ok"}' : '{"title":"Not Found"}');
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(config.historyMetricsPort, config.gatewayHost, () => resolve());
  });
  await consumer.start();
  write(`instock history consuming ${config.kafkaTopicStock}, ${config.kafkaTopicChanges}, ${config.kafkaTopicReservations} as group ${config.kafkaHistoryGroupId} into ${config.clickhouseUrl || `chDB ${chdbPathFor(config.dataDir)}`} (database ${config.clickhouseDatabase}); metrics on http://${config.gatewayHost}:${(server.address() as AddressInfo).port}/metrics`);
  await stopRequested;
  await consumer.stop();
  await writer.close(10_000);
  await client.close();
  server.close();
  return 0;
}

/** "7d", "24h", "90m", "30s", an ISO date, or ms since the epoch → ms since the epoch. */
export function parseSince(raw: string, nowMs: number): number {
  const relative = /^(\d+(?:\.\d+)?)(ms|s|m|h|d|w)$/.exec(raw.trim());
  if (relative) {
    const unitMs = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 }[relative[2] as 'ms' | 's' | 'm' | 'h' | 'd' | 'w'];
    return nowMs - Math.round(Number(relative[1]) * unitMs);
  }
  if (/^\d{12,}$/.test(raw.trim())) return Number(raw.trim());
  const parsed = Date.parse(raw);
  if (Number.isNaN(parsed)) throw new AnalyticsError(`--since ${JSON.stringify(raw)}: expected a duration (7d, 24h, 90m), an ISO date (2026-11-20T00:00Z) or ms since the epoch`);
  return parsed;
}

interface EmbeddedInfo {
  url: string;
  apiKey: string;
  pid: number;
}

/** The running embedded process, if embedded.json names one that is alive. */
export function runningEmbedded(dataDir: string): EmbeddedInfo | undefined {
  const file = join(dataDir, 'embedded.json');
  if (!existsSync(file)) return undefined;
  let info: EmbeddedInfo;
  try {
    info = JSON.parse(readFileSync(file, 'utf8')) as EmbeddedInfo;
  } catch {
    return undefined;
  }
  if (typeof info.url !== 'string' || typeof info.apiKey !== 'string' || !Number.isInteger(info.pid)) return undefined;
  try {
    process.kill(info.pid, 0);
  } catch (error) {
    // EPERM: alive, owned by another user; ESRCH: gone (a stale file from a crash).
    if ((error as NodeJS.ErrnoException).code !== 'EPERM') return undefined;
  }
  return info;
}

async function askEmbedded(info: EmbeddedInfo, query: AnalyticsQuery): Promise<Record<string, unknown>[]> {
  const params = new URLSearchParams();
  if (query.top !== undefined) params.set('top', String(query.top));
  if (query.sinceMs !== undefined) params.set('since', String(query.sinceMs));
  if (query.channel) params.set('channel', query.channel);
  if (query.sku) params.set('sku', query.sku);
  const response = await fetch(`${info.url.replace(/\/$/, '')}/v1/analytics/${query.report}?${params}`, { headers: { authorization: `Bearer ${info.apiKey}` }, signal: AbortSignal.timeout(120_000) });
  const body = (await response.json().catch(() => ({}))) as { rows?: Record<string, unknown>[]; detail?: string };
  if (!response.ok || !Array.isArray(body.rows)) throw new AnalyticsError(`the running instock (pid ${info.pid}, ${info.url}) answered ${response.status}: ${body.detail ?? 'no rows'}`);
  return body.rows;
}

export function formatRows(rows: Record<string, unknown>[], format: 'table' | 'csv' | 'json'): string {
  if (format === 'json') return JSON.stringify(rows, null, 2);
  const columns = [...new Set(rows.flatMap((r) => Object.keys(r)))];
  const cell = (v: unknown) => (v === null || v === undefined ? '' : typeof v === 'object' ? JSON.stringify(v) : String(v));
  if (format === 'csv') {
    const quote = (s: string) => (/[",\n]/.test(s) ? `"${s.replaceAll('"', '""')}"` : s);
    return [columns.join(','), ...rows.map((r) => columns.map((c) => quote(cell(r[c]))).join(','))].join('\n');
  }
  if (rows.length === 0) return '(no rows)';
  const widths = columns.map((c) => Math.max(c.length, ...rows.map((r) => cell(r[c]).length)));
  const line = (values: string[]) => values.map((v, i) => (typeof rows[0]![columns[i]!] === 'number' ? v.padStart(widths[i]!) : v.padEnd(widths[i]!))).join('  ').trimEnd();
  return [line(columns), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map((r) => line(columns.map((c) => cell(r[c]))))].join('\n');
}

export async function analyticsCommand(config: Config, args: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args,
      allowPositionals: true,
      strict: true,
      options: { top: { type: 'string' }, since: { type: 'string' }, channel: { type: 'string' }, sku: { type: 'string' }, format: { type: 'string', default: 'table' } },
    });
  } catch (error) {
    process.stderr.write(`instock analytics: ${error instanceof Error ? error.message : String(error)}\n`);
    return 2;
  }
  const { positionals, values } = parsed;
  const [report] = positionals;
  if (!report || !(analyticsReports as readonly string[]).includes(report)) {
    process.stderr.write(`instock analytics: expected a report (${analyticsReports.join(', ')}), got ${report ?? 'nothing'}\n  e.g. instock analytics velocity --top 20 --since 7d --channel web --format table\n`);
    return 2;
  }
  const format = values.format;
  if (format !== 'table' && format !== 'csv' && format !== 'json') {
    process.stderr.write(`instock analytics: --format ${format}: expected table, csv or json\n`);
    return 2;
  }
  const nowMs = Date.now();
  let query: AnalyticsQuery;
  try {
    const top = values.top === undefined ? undefined : Number(values.top);
    if (top !== undefined && !(Number.isInteger(top) && top >= 1)) throw new AnalyticsError(`--top ${values.top}: expected a positive integer`);
    query = {
      report: report as AnalyticsReport,
      nowMs,
      ...(top !== undefined ? { top } : {}),
      ...(values.since !== undefined ? { sinceMs: parseSince(values.since, nowMs) } : {}),
      ...(values.channel ? { channel: values.channel } : {}),
      ...(values.sku ? { sku: values.sku } : {}),
    };
  } catch (error) {
    process.stderr.write(`instock analytics: ${error instanceof Error ? error.message : String(error)}\n`);
    return 2;
  }
  let rows: Record<string, unknown>[];
  const embedded = config.clickhouseUrl ? undefined : runningEmbedded(config.dataDir);
  try {
    if (embedded) {
      rows = await askEmbedded(embedded, query);
    } else {
      const client = connectClickHouse({ url: config.clickhouseUrl, chdbPath: chdbPathFor(config.dataDir), database: config.clickhouseDatabase });
      try {
        // Creates the (empty) schema if nothing was ever written: a report of nothing, not an error.
        await migrate(client, config.clickhouseDatabase);
        rows = await runAnalytics(client, config.clickhouseDatabase, query);
      } finally {
        await client.close();
      }
    }
  } catch (error) {
    if (error instanceof AnalyticsError) {
      process.stderr.write(`instock analytics: ${error.message}\n`);
      return 2;
    }
    throw error;
  }
  write(formatRows(rows, format));
  return 0;
}
