// History on chDB (in-process, so always runs): migrations, the writer (batches, retries, dedup
// tokens), the reports against answers computed from the generated events, and the velocity seed
// a restarted engine reads before its first event.

import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ClickHouseClient } from '@clickhouse/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { projectPath } from '../../config/paths.js';
import { VelocityTracker } from '../../engine/core/velocity.js';
import { VelocityInput } from '../../engine/stream/velocity-input.js';
import { runAnalytics } from '../../engine/history/analytics.js';
import { connectClickHouse } from '../../engine/history/clickhouse.js';
import { HistoryMetrics } from '../../engine/history/metrics.js';
import { migrate, schemaVersion } from '../../engine/history/migrations.js';
import { loadVelocitySeed } from '../../engine/history/velocity-seed.js';
import { HistoryWriter } from '../../engine/history/writer.js';
import { expectedRows, expectedStockouts, expectedVelocity, generateHistory } from '../support/history-stream.js';

const database = 'hist_test';
const hourMs = 3_600_000;
// Fixed "now" on an hour boundary + 40 min, so hour-rounded windows are easy to state.
const nowMs = Math.floor(Date.now() / hourMs) * hourMs - 20 * 60_000;
const history = generateHistory({ stock: 20_000, transitions: 6_000, changes: 8_000, endMs: nowMs - 1, spanMs: 6 * hourMs, seed: 11 });

async function rows<T>(client: ClickHouseClient, query: string): Promise<T[]> {
  return (await client.query({ query, format: 'JSONEachRow', clickhouse_settings: { output_format_json_quote_64bit_integers: 0 } })).json<T>();
}

describe('history on chDB', () => {
  const dir = mkdtempSync(join(tmpdir(), 'instock-history-'));
  let client: ClickHouseClient;
  beforeAll(() => {
    client = connectClickHouse({ url: '', chdbPath: dir, database });
  });
  afterAll(async () => {
    await client.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('migrations are versioned and idempotent', async () => {
    expect(await migrate(client, database)).toEqual([1, 2, 3, 4]);
    expect(await migrate(client, database)).toEqual([]);
    const versions = await rows<{ version: number }>(client, `SELECT version FROM ${database}.schema_migrations FINAL ORDER BY version`);
    expect(versions.map((v) => v.version)).toEqual([1, 2, 3, 4]);
    expect(schemaVersion).toBe(4);
  });

  it('stores every record once, through failed inserts and retries of inserts that did land', async () => {
    const metrics = new HistoryMetrics();
    let failuresLeft = 6;
    let landedThenFailed = 0;
    // The writer made to fail: some attempts fail before the insert (ClickHouse down), and the
    // first attempt of every 3rd stock batch fails *after* it landed (an answer lost on the way).
    const writer = new HistoryWriter({
      client: client,
      database,
      metrics,
      batchRowsMax: 3_000,
      queueRowsMax: 100_000,
      flushIntervalMs: 50,
      retryDelayMsMin: 10,
      retryDelayMsMax: 50,
      beforeInsert: (table) => {
        if (failuresLeft > 0 && table !== 'availability_samples') {
          failuresLeft -= 1;
          throw new Error('ClickHouse is down (test)');
        }
      },
    });
    const original = client.insert.bind(client);
    let stockInserts = 0;
    const flaky = new Proxy(client, {
      get(target, prop, receiver) {
        if (prop !== 'insert') return Reflect.get(target, prop, receiver) as unknown;
        return async (params: Parameters<ClickHouseClient['insert']>[0]) => {
          const result = await original(params);
          if (params.table.endsWith('.stock_events') && ++stockInserts % 3 === 1) {
            landedThenFailed += 1;
            throw new Error('socket hang up (test): the insert landed, the answer was lost');
          }
          return result;
        };
      },
    });
    (writer as unknown as { options: { client: ClickHouseClient } }).options.client = flaky;

    const written: Promise<boolean>[] = [];
    for (let i = 0; i < history.stock.length; i += 700) written.push(writer.stockEvents(history.stock.slice(i, i + 700)));
    for (let i = 0; i < history.transitions.length; i += 500) written.push(writer.reservationTransitions(history.transitions.slice(i, i + 500)));
    for (let i = 0; i < history.changes.length; i += 900) written.push(writer.atpChanges(history.changes.slice(i, i + 900)));
    written.push(writer.availabilitySamples([{ atMs: nowMs - 1000, channel: 'web', lines: 12, options: 24, latencyMs: 3.5, methods: 'delivery,pickup' }]));
    await writer.flush();
    expect(await Promise.all(written)).toEqual(written.map(() => true));
    await writer.close();
    expect(landedThenFailed).toBeGreaterThan(1);

    const want = expectedRows(history);
    for (const [table, count] of Object.entries(want)) {
      const [got] = await rows<{ n: number; distinct: number }>(client, `SELECT count() AS n, uniqExact(src_partition, src_offset, ${table === 'reservation_transitions' ? 'line' : '0'}) AS distinct FROM ${database}.${table}`);
      expect({ table, ...got }).toEqual({ table, n: count, distinct: count });
    }
    const metricsText = await metrics.registry.metrics();
    // A retry the server deduplicated is one batch written, not two.
    expect(metricsText).toContain(`instock_history_rows_written_total{table="stock_events"} ${want.stock_events}`);
    expect(metricsText).toMatch(/instock_history_failed_batches_total\{table="[a-z_]+"\} [1-9]/);
    expect(metricsText).toMatch(/instock_history_insert_seconds_count\{table="stock_events"\} [1-9]/);
  });

  it('velocity: units reserved or sold per SKU, as computed from the events', async () => {
    for (const [sinceMs, channel] of [[nowMs - 7 * 86_400_000, undefined], [nowMs - 3 * hourMs - 40 * 60_000, undefined], [nowMs - 7 * 86_400_000, 'web'], [nowMs - 7 * 86_400_000, 'pos']] as const) {
      const fromMs = Math.floor(sinceMs / hourMs) * hourMs;
      const want = [...expectedVelocity(history, fromMs, nowMs, channel)].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1));
      const got = await runAnalytics(client, database, { report: 'velocity', top: 50, sinceMs, nowMs, ...(channel ? { channel } : {}) });
      expect(got.map((r) => [r.sku, r.units])).toEqual(want.slice(0, 50));
    }
    const one = await runAnalytics(client, database, { report: 'velocity', sku: 'sku-3', sinceMs: nowMs - 86_400_000, nowMs });
    expect(one).toHaveLength(1);
    expect(one[0]!.units).toBe(expectedVelocity(history, 0, nowMs).get('sku-3'));
  });

  it('stock-outs: every interval where on-hand − reserved <= 0, as computed from the changes', async () => {
    const want = expectedStockouts(history.changes)
      .map((s) => [s.sku, s.location, s.startMs, s.endMs])
      .sort((a, b) => JSON.stringify(a).localeCompare(JSON.stringify(b)));
    expect(want.length).toBeGreaterThan(100);
    const got = await runAnalytics(client, database, { report: 'stockouts', top: 10_000, sinceMs: history.startMs - hourMs, nowMs });
    const gotKeys = got.map((r) => [r.sku, r.location, r.start_ms, r.end_ms]).sort((a, b) => JSON.stringify(a).localeCompare(JSON.stringify(b)));
    expect(gotKeys).toEqual(want);
    // Longest first, ongoing ones measured to now.
    const durations = got.map((r) => r.duration_ms as number);
    expect(durations).toEqual([...durations].sort((a, b) => b - a));
    for (const r of got) expect(r.duration_ms).toBe(((r.end_ms as number | null) ?? nowMs) - (r.start_ms as number));
    // Narrowed to one SKU.
    const sku = want[0]![0] as string;
    const one = await runAnalytics(client, database, { report: 'stockouts', top: 10_000, sku, sinceMs: history.startMs - hourMs, nowMs });
    expect(one.length).toBe(want.filter((w) => w[0] === sku).length);
  });

  it('cover and sell-through follow from on-hand and velocity', async () => {
    const sinceMs = nowMs - 86_400_000;
    const cover = await runAnalytics(client, database, { report: 'cover', top: 10_000, sinceMs, nowMs });
    expect(cover.length).toBeGreaterThan(10);
    // Independently: last on-hand per position from the changes; units per position since the hour.
    const lastOnHand = new Map<string, { t: number; i: number; onHand: number }>();
    history.changes.forEach((c, i) => {
      const key = `${c.sku}/${c.location}`;
      const prev = lastOnHand.get(key);
      if (!prev || c.visibleAtMs > prev.t || (c.visibleAtMs === prev.t && i > prev.i)) lastOnHand.set(key, { t: c.visibleAtMs, i, onHand: c.onHand });
    });
    const days = (nowMs - Math.floor(sinceMs / hourMs) * hourMs) / 86_400_000;
    for (const r of cover.slice(0, 20)) {
      const onHand = lastOnHand.get(`${r.sku}/${r.location}`)!.onHand;
      expect(r.on_hand).toBe(onHand);
      expect(r.days_of_cover).toBeCloseTo(Math.max(0, onHand) / ((r.units as number) / days), 1);
    }
    const sell = await runAnalytics(client, database, { report: 'sellthrough', top: 50, sinceMs: nowMs - 7 * 86_400_000, nowMs });
    expect(sell.length).toBeGreaterThan(0);
    const sold = new Map<string, number>();
    for (const t of history.transitions) if (t.transition === 'confirmed') for (const l of t.lines) sold.set(l.sku, (sold.get(l.sku) ?? 0) + l.qty);
    for (const e of history.stock) if (e.type === 'delta' && e.source === 'pos' && e.qty < 0) sold.set(e.sku, (sold.get(e.sku) ?? 0) - e.qty);
    for (const r of sell) expect(r.sold).toBe(sold.get(r.sku as string));
  });

  it('stock-outs per channel use the channel ATP the change carries; without --channel, on-hand − reserved', async () => {
    const writer = new HistoryWriter({ client, database, flushIntervalMs: 20 });
    const t0 = history.startMs;
    // On hand all along, but the web channel (buffer, threshold) shows 0 between t0+1s and t0+5s.
    await writer.atpChanges([
      { sku: 'chan-sku', location: 'loc-9', onHand: 5, reserved: 0, version: 1, atp: { web: 3, app: 5 }, visibleAtMs: t0 },
      { sku: 'chan-sku', location: 'loc-9', onHand: 2, reserved: 0, version: 2, atp: { web: 0, app: 2 }, visibleAtMs: t0 + 1_000 },
      { sku: 'chan-sku', location: 'loc-9', onHand: 9, reserved: 0, version: 3, atp: { web: 7, app: 9 }, visibleAtMs: t0 + 5_000 },
    ]);
    await writer.close();
    // The position version each change carried is kept (migration 4).
    const versions = await rows<{ position_version: string | number }>(client, `SELECT position_version FROM ${database}.atp_changes WHERE sku = 'chan-sku' ORDER BY visible_at`);
    expect(versions.map((v) => Number(v.position_version))).toEqual([1, 2, 3]);
    const query = { report: 'stockouts' as const, sku: 'chan-sku', sinceMs: t0 - hourMs, nowMs };
    expect(await runAnalytics(client, database, query)).toEqual([]);
    expect(await runAnalytics(client, database, { ...query, channel: 'app' })).toEqual([]);
    const web = await runAnalytics(client, database, { ...query, channel: 'web' });
    expect(web.map((r) => [r.start_ms, r.end_ms, r.duration_ms])).toEqual([[t0 + 1_000, t0 + 5_000, 4_000]]);
  });

  it("README's SQL for analysts runs and answers", async () => {
    const readme = readFileSync(projectPath('README.md'), 'utf8');
    const section = readme.slice(readme.indexOf('SQL for analysts'));
    const sql = section.slice(section.indexOf('```sql') + 6, section.indexOf('```', section.indexOf('```sql') + 6));
    const statements = sql.split(/;\s*\n/).map((q) => q.replace(/^--.*$/gm, '').trim()).filter(Boolean);
    expect(statements.length).toBe(5);
    for (const statement of statements) {
      // The examples read "now"; the generated history ends at nowMs, a little before now.
      const got = await rows<Record<string, unknown>>(client, statement.replaceAll('instock.', `${database}.`).replaceAll("'SKU-000042'", "'sku-0'"));
      expect(got.length, statement.slice(0, 80)).toBeGreaterThan(0);
    }
  });

  it('a restarted engine knows its hot SKUs from history before consuming anything', async () => {
    // The engine that ran: its velocity input recorded every reservation as it went.
    const ran = new VelocityTracker();
    const input = new VelocityInput(ran);
    for (const t of history.transitions) input.record(t);
    ran.retier(nowMs);
    const hotBefore = ran.top(5, nowMs).map((t) => t.sku);

    // Restart: a new client on the same chDB directory, a fresh tracker seeded before any event.
    await client.close();
    client = connectClickHouse({ url: '', chdbPath: dir, database });
    const restarted = new VelocityTracker();
    expect(restarted.tier(hotBefore[0]!, nowMs)).toBe('cold');
    restarted.seed(await loadVelocitySeed(client, database, { sinceMs: nowMs - 4 * hourMs, nowMs }));
    restarted.retier(nowMs);
    expect(restarted.top(5, nowMs).map((t) => t.sku)).toEqual(hotBefore);
    for (const sku of hotBefore) {
      expect(restarted.tier(sku, nowMs)).toBe(ran.tier(sku, nowMs));
      expect(restarted.rate(sku, nowMs) / ran.rate(sku, nowMs)).toBeGreaterThan(0.97);
      expect(restarted.rate(sku, nowMs) / ran.rate(sku, nowMs)).toBeLessThan(1.03);
      expect(restarted.channelRate(sku, 'web', nowMs) / ran.channelRate(sku, 'web', nowMs)).toBeCloseTo(1, 1);
    }
    expect(restarted.tier(hotBefore[0]!, nowMs)).toBe('hot');
    // Store sales are in history (channel "pos") but only seeded when asked for.
    const withStore = await loadVelocitySeed(client, database, { sinceMs: nowMs - 4 * hourMs, nowMs, storeSales: true });
    expect(withStore.some((e) => e.channel === 'pos')).toBe(true);
    expect((await loadVelocitySeed(client, database, { sinceMs: nowMs - 4 * hourMs, nowMs })).some((e) => e.channel === 'pos')).toBe(false);
  });
});
