// History insert rate and storage per event, on chDB (or CLICKHOUSE_URL's server):
//
//   stock events through HistoryWriter     vs raw client.insert of the same rows with the same
//                                          dedup settings (token per batch)        target >= 80 %
//   raw client.insert without dedup        (reported: what exactly-once costs)
//   ATP changes through HistoryWriter      (reported)
//   bytes on disk per stored stock event / ATP change, after merges (OPTIMIZE FINAL)
//
// Run: `npm run bench -- history [--quick]` (or `node dist/benchmarks/history.js [--quick]`).
// Events are shaped like the field's: 100 k SKUs with skewed popularity, 300 locations, source
// times advancing over a day, 16-hex-digit event ids (random, so they compress as badly as UUIDs).

import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { ClickHouseClient } from '@clickhouse/client';
import type { StockEvent } from '../engine/core/types.js';
import { connectClickHouse } from '../engine/history/clickhouse.js';
import { migrate } from '../engine/history/migrations.js';
import { historyColumns, HistoryWriter, type HistorySource } from '../engine/history/writer.js';
import type { AtpChange } from '../engine/stream/wire.js';
import { printTable, progress, writeResults, type Row } from './report.js';

function stockEvents(count: number, startMs: number): StockEvent[] {
  const out: StockEvent[] = [];
  const ids = randomBytes(count * 8).toString('hex');
  for (let i = 0; i < count; i++) {
    const r = Math.random();
    const sku = `SKU-${String(Math.floor(100_000 * Math.random() ** 3)).padStart(6, '0')}`;
    const location = `L${String(Math.floor(Math.random() * 300)).padStart(3, '0')}`;
    const asOf = startMs + Math.floor((i / count) * 86_400_000);
    const eventId = ids.slice(i * 16, i * 16 + 16);
    if (r < 0.3) out.push({ type: 'snapshot', eventId, sku, location, qty: Math.floor(Math.random() * 200), asOf, source: 'erp' });
    else out.push({ type: 'delta', eventId, sku, location, qty: r < 0.8 ? -1 - Math.floor(Math.random() * 2) : 1 + Math.floor(Math.random() * 24), asOf, source: r < 0.8 ? 'pos' : 'wms' });
  }
  return out;
}

function atpChanges(count: number, startMs: number): AtpChange[] {
  const out: AtpChange[] = [];
  for (let i = 0; i < count; i++) {
    const onHand = Math.floor(Math.random() * 200);
    const reserved = Math.random() < 0.2 ? Math.floor(Math.random() * onHand) : 0;
    const visibleAtMs = startMs + Math.floor((i / count) * 86_400_000);
    out.push({ sku: `SKU-${String(Math.floor(100_000 * Math.random() ** 3)).padStart(6, '0')}`, location: `L${String(Math.floor(Math.random() * 300)).padStart(3, '0')}`, onHand, reserved, version: i + 1, atp: { web: onHand - reserved, app: onHand - reserved, store: Math.max(0, onHand - reserved - 2) }, visibleAtMs, asOfMs: visibleAtMs - 40 });
  }
  return out;
}

async function timed(fn: () => Promise<void>): Promise<number> {
  const t0 = performance.now();
  await fn();
  return (performance.now() - t0) / 1000;
}

async function partsOf(client: ClickHouseClient, database: string, table: string): Promise<{ rows: number; bytes: number }> {
  const result = await client.query({ query: `SELECT sum(rows) AS rows, sum(bytes_on_disk) AS bytes FROM system.parts WHERE database = {db:String} AND table = {t:String} AND active`, query_params: { db: database, t: table }, format: 'JSONEachRow' });
  const [row] = await result.json<{ rows: string | number; bytes: string | number }>();
  return { rows: Number(row?.rows ?? 0), bytes: Number(row?.bytes ?? 0) };
}

export async function benchHistory(args: { quick: boolean; url?: string }): Promise<Row[]> {
  const count = args.quick ? 200_000 : 1_000_000;
  const dir = mkdtempSync(join(tmpdir(), 'instock-bench-history-'));
  const client = connectClickHouse({ url: args.url ?? '', chdbPath: dir, database: 'default' });
  const startMs = Date.now() - 2 * 86_400_000;
  try {
    const database = `bench_history_${process.pid}`;
    const floorDb = `${database}_raw`;
    await migrate(client, database);
    await migrate(client, floorDb);
    progress(`generating ${count.toLocaleString()} stock events and ATP changes`);
    const events = stockEvents(count, startMs);
    const changes = atpChanges(count, startMs);
    const batch = 100_000;

    // Floor: the same rows, the same batch size, straight into the same schema with client.insert,
    // with the writer's dedup settings (a token per batch); and once more without them.
    const rawInsert = async (db: string, dedup: boolean) => {
      for (let i = 0; i < events.length; i += batch) {
        const token = dedup ? `floor-${i}` : '';
        const values = events.slice(i, i + batch).map((e, k) => [e.asOf, e.sku, e.location, e.type, e.qty, e.eventId, e.source ?? '', e.asOf, 0, i + k, token]);
        await client.insert({
          table: `${db}.stock_events`,
          values,
          columns: historyColumns.stock_events as [string, ...string[]],
          format: 'JSONCompactEachRow',
          // With dedup: the writer's settings (one block per insert, so no parallel parsing).
          clickhouse_settings: dedup ? { insert_deduplicate: 1, insert_deduplication_token: token, deduplicate_blocks_in_dependent_materialized_views: 1, input_format_parallel_parsing: 0 } : {},
        });
      }
    };
    progress('floor: raw client.insert with dedup tokens');
    const floorSeconds = await timed(() => rawInsert(floorDb, true));
    const noDedupDb = `${database}_nodedup`;
    await migrate(client, noDedupDb);
    progress('raw client.insert without dedup');
    const noDedupSeconds = await timed(() => rawInsert(noDedupDb, false));
    for (const db of [floorDb, noDedupDb]) for (const table of ['stock_events', 'velocity_hourly', 'velocity_minute', 'flow_daily']) await client.command({ query: `OPTIMIZE TABLE ${db}.${table} FINAL` });

    // (The floors' background merges, their parts and their views', are done above: they would
    // otherwise run during the writer's inserts on the same cores.)
    progress('HistoryWriter: stock events');
    const writer = new HistoryWriter({ client, database, batchRowsMax: batch, queueRowsMax: count + batch });
    // As the consumer hands them over: fetches of 5,000, the source set on the decoded objects.
    const writeAll = <T extends object>(records: T[], write: (fetched: (T & HistorySource)[]) => Promise<boolean>) =>
      timed(async () => {
        const done: Promise<boolean>[] = [];
        for (let i = 0; i < records.length; i += 5_000) {
          const fetched = records.slice(i, i + 5_000) as (T & HistorySource)[];
          fetched.forEach((r, k) => Object.assign(r, { srcPartition: 0, srcOffset: i + k }));
          done.push(write(fetched));
        }
        await writer.flush();
        if (!(await Promise.all(done)).every(Boolean)) throw new Error('rows refused');
      });
    const stockSeconds = await writeAll(events, (fetched) => writer.stockEvents(fetched));
    progress('HistoryWriter: ATP changes');
    const changeSeconds = await writeAll(changes, (fetched) => writer.atpChanges(fetched));
    await writer.close();

    progress('merging parts (OPTIMIZE FINAL) and measuring bytes on disk');
    for (const table of ['stock_events', 'atp_changes']) await client.command({ query: `OPTIMIZE TABLE ${database}.${table} FINAL` });
    const stock = await partsOf(client, database, 'stock_events');
    const change = await partsOf(client, database, 'atp_changes');
    let aggregatesBytes = 0;
    for (const table of ['velocity_hourly', 'velocity_minute', 'flow_daily', 'position_hourly']) aggregatesBytes += (await partsOf(client, database, table)).bytes;
    if (stock.rows !== count || change.rows !== count) throw new Error(`stored ${stock.rows} stock events and ${change.rows} changes, expected ${count} each`);

    const writerRate = count / stockSeconds;
    const floorRate = count / floorSeconds;
    const rows: Row[] = [
      { metric: 'stock events inserted, HistoryWriter', value: writerRate, unit: 'rows/s', floor: floorRate, ratio: writerRate / floorRate, target: '>= 80 % of raw insert, same dedup', pass: writerRate / floorRate >= 0.8 },
      { metric: 'stock events, raw insert without dedup', value: count / noDedupSeconds, unit: 'rows/s' },
      { metric: 'ATP changes inserted, HistoryWriter', value: count / changeSeconds, unit: 'rows/s' },
      { metric: 'bytes on disk per stock event', value: stock.bytes / count, unit: 'B' },
      { metric: 'bytes on disk per ATP change', value: change.bytes / count, unit: 'B' },
      { metric: 'aggregates (views) per stock event', value: aggregatesBytes / count, unit: 'B' },
    ];
    printTable(`history (${args.url ? 'ClickHouse server' : 'chDB'}, ${count.toLocaleString()} rows per table, batches of ${batch.toLocaleString()})`, rows);
    const file = writeResults('history', { quick: args.quick, count, rows });
    process.stdout.write(`\nresults: ${file}\n`);
    return rows;
  } finally {
    await client.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  benchHistory({ quick: process.argv.includes('--quick'), url: process.env.CLICKHOUSE_URL ?? '' }).then(
    () => undefined,
    (error: unknown) => {
      process.stderr.write(`bench history: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
      process.exitCode = 1;
    },
  );
}
