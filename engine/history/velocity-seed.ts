// Velocity from history, so a restarted engine ranks its best sellers before the first event.
//
// VelocityTracker keeps, per SKU and per (SKU, channel), an exponentially decayed sum of units
// with a half-life h; its rate is value × ln 2 / h. The same sum is computed here from the
// per-minute velocity view (units reserved or sold, see migrations.ts), each minute's units taken
// at the middle of the minute: value(now) = Σ units × 2^(−(now − t) / h). A minute is short next
// to h (15 min by default), so the seeded rate is within ±2.3% of what the tracker would have
// computed from the events themselves. The window needs only a few half-lives: beyond 8 of them a
// sale weighs less than 0.4%.
//
// What counts: by default what the engine's own velocity input counts (engine/stream/
// velocity-input.ts): units of `held` reservation lines. Store sales (channel "pos" in the views)
// are left out unless `storeSales` is set, so a seeded rate and the rate the engine builds live
// from the same sales agree. (The engine also counts a `confirmed` it never saw held; history
// cannot tell which confirms had a hold, so those rare orders are not in the seed.)

import { existsSync } from 'node:fs';
import type { ClickHouseClient } from '@clickhouse/client';
import { velocityDefaults, type TierCounts, type VelocityEntry, type VelocityTracker } from '../core/velocity.js';
import { checkDatabaseName } from './analytics.js';
import { connectClickHouse, type ClickHouseTarget } from './clickhouse.js';

/** Rows read at most (SKU totals and channels): the tracker keeps skusTrackedMax SKUs anyway. */
const seedRowsMax = velocityDefaults.skusTrackedMax * 4;

export async function loadVelocitySeed(client: ClickHouseClient, database: string, window: { sinceMs: number; nowMs: number; halfLifeMs?: number; storeSales?: boolean }): Promise<VelocityEntry[]> {
  checkDatabaseName(database);
  const halfLifeMs = window.halfLifeMs ?? velocityDefaults.halfLifeMs;
  const result = await client.query({
    query: `
      SELECT sku, channel, grouping(channel) AS all_channels,
        sum(toFloat64(units) * exp2(-(({now:Int64} - least(toInt64(toUnixTimestamp(minute)) * 1000 + 30000, {now:Int64})) / {halfLife:Float64}))) AS value
      FROM ${database}.velocity_minute
      WHERE minute >= toStartOfMinute(fromUnixTimestamp64Milli({since:Int64}, 'UTC')) AND minute <= fromUnixTimestamp64Milli({now:Int64}, 'UTC')
        AND ({storeSales:UInt8} = 1 OR channel != 'pos')
      GROUP BY GROUPING SETS ((sku), (sku, channel))
      HAVING value > 0
      ORDER BY value DESC
      LIMIT {limit:UInt32}`,
    format: 'JSONEachRow',
    query_params: { since: Math.floor(window.sinceMs), now: Math.floor(window.nowMs), halfLife: halfLifeMs, limit: seedRowsMax, storeSales: window.storeSales ? 1 : 0 },
  });
  const rows = await result.json<{ sku: string; channel: string; all_channels: number; value: number }>();
  const ratePerValue = (Math.LN2 / halfLifeMs) * 60_000;
  return rows.map((r) => ({ sku: r.sku, channel: Number(r.all_channels) === 1 ? null : r.channel, ratePerMin: Number(r.value) * ratePerValue, atMs: window.nowMs }));
}

/** How far back a seed reads: many half-lives; older sales weigh nothing. */
export const seedWindowMs = 24 * 3_600_000;

/** Seeds the tracker from history and ranks it: best sellers are hot before the first event. */
export async function seedTracker(client: ClickHouseClient, database: string, tracker: VelocityTracker, nowMs: number): Promise<{ entries: number } & TierCounts> {
  return applySeed(tracker, await loadVelocitySeed(client, database, { sinceMs: nowMs - seedWindowMs, nowMs }), nowMs);
}

function applySeed(tracker: VelocityTracker, seed: VelocityEntry[], nowMs: number): { entries: number } & TierCounts {
  tracker.seed(seed);
  return { entries: seed.length, ...tracker.retier(nowMs) };
}

/** How long `instock engine` waits for history at start: a slow ClickHouse must not delay ATP. */
const seedWaitMsMax = 5_000;

/**
 * `instock engine` on its own: seed from the ClickHouse server, or from the chDB directory when no
 * other process holds it (the connection is closed at once, so `instock history` can open it
 * next). Never fails the engine, nor holds it more than seedWaitMsMax: without history it starts
 * cold and says why.
 */
export async function seedTrackerFromHistory(target: ClickHouseTarget, tracker: VelocityTracker, nowMs: number): Promise<string> {
  if (!target.url && !existsSync(target.chdbPath)) return `velocity not seeded: no history yet (no chDB at ${target.chdbPath}, CLICKHOUSE_URL empty)`;
  let client: ClickHouseClient | undefined;
  let timer: NodeJS.Timeout | undefined;
  let timedOut = false;
  try {
    client = connectClickHouse(target);
    // Loaded aside and seeded only if in time: a late answer never reaches the running tracker.
    const loading = loadVelocitySeed(client, target.database, { sinceMs: nowMs - seedWindowMs, nowMs });
    loading.catch(() => undefined);
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        timedOut = true;
        reject(new Error(`no answer in ${seedWaitMsMax} ms`));
      }, seedWaitMsMax);
    });
    const seeded = applySeed(tracker, await Promise.race([loading, late]), nowMs);
    return `velocity seeded from history (${target.url || `chDB ${target.chdbPath}`}): ${seeded.entries} entries, ${seeded.hot} hot and ${seeded.warm} warm SKUs`;
  } catch (error) {
    const reason = error instanceof Error ? error.message.split('\n')[0] : String(error);
    return `velocity NOT seeded from history (${target.url || `chDB ${target.chdbPath}`}), the engine starts cold and learns from reservations: ${reason}`;
  } finally {
    clearTimeout(timer);
    // Closed before returning, so the chDB directory is free at once; after a timeout, closing
    // would wait for the query still running, so it is left to finish on its own.
    const closing = client?.close().catch(() => undefined);
    if (!timedOut) await closing;
  }
}
