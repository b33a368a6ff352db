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

import type { ClickHouseClient } from '@clickhouse/client';
import { velocityDefaults, type VelocityEntry } from '../core/velocity.js';
import { checkDatabaseName } from './analytics.js';

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
