// The reports of `instock analytics` (and GET /v1/analytics/{report}), as SQL over the history
// tables and materialized views. README, "History and analytics", shows the same SQL for analysts.
// Parameters are bound ({name:Type}), never spliced into the SQL; the database name is checked.
//
// Windows: `sinceMs` (default 7 days before `nowMs`) is rounded down to the hour for velocity and
// cover (hourly aggregates) and to the day for sell-through (daily aggregates).

import type { ClickHouseClient } from '@clickhouse/client';

export type AnalyticsReport = 'velocity' | 'stockouts' | 'cover' | 'sellthrough';
export const analyticsReports: readonly AnalyticsReport[] = ['velocity', 'stockouts', 'cover', 'sellthrough'];

export interface AnalyticsQuery {
  report: AnalyticsReport;
  top?: number;
  sinceMs?: number;
  channel?: string;
  sku?: string;
  nowMs: number;
}

/** Rows a report returns at most: reports are for people; bulk exports go through SQL. */
export const analyticsTopMax = 10_000;
export const analyticsTopDefault = 20;
export const analyticsWindowMsDefault = 7 * 86_400_000;
/** Stock-outs: how far before `since` changes are read, to know a position was already out at `since`. */
export const stockoutLookbackMs = 30 * 86_400_000;

const filters = `({channel:String} = '' OR channel = {channel:String}) AND ({sku:String} = '' OR sku = {sku:String})`;
const hourFrom = `toStartOfHour(fromUnixTimestamp64Milli({since:Int64}, 'UTC'))`;
const nowAt = `fromUnixTimestamp64Milli({now:Int64}, 'UTC')`;

export const analyticsSql: Record<AnalyticsReport, string> = {
  // Units reserved (held) or sold in store per SKU over the window, best sellers first.
  velocity: `
    SELECT sku, sum(units) AS units, sum(lines) AS lines, uniqExact(location) AS locations, uniqExact(channel) AS channels,
      round(units / {hours:Float64}, 3) AS units_per_hour
    FROM {db}.velocity_hourly
    WHERE hour >= ${hourFrom} AND hour <= ${nowAt} AND ${filters}
    GROUP BY sku
    ORDER BY units DESC, sku
    LIMIT {top:UInt32}`,
  // Intervals where a position had nothing available: on-hand − reserved <= 0, or with --channel
  // that channel's ATP when the change carries it. end_ms null: still out. Longest first.
  stockouts: `
    WITH changes AS (
      SELECT sku, location, visible_at AS t, src_partition, src_offset,
        toUInt8(if({channel:String} != '' AND mapContains(atp, {channel:String}), atp[{channel:String}], on_hand - reserved) <= 0) AS out
      FROM {db}.atp_changes
      WHERE visible_at >= fromUnixTimestamp64Milli({lookback:Int64}, 'UTC') AND visible_at <= ${nowAt}
        AND ({sku:String} = '' OR sku = {sku:String})
    ),
    edges AS (
      SELECT sku, location, t, src_partition, src_offset, out,
        lagInFrame(out, 1, 0) OVER (PARTITION BY sku, location ORDER BY t, src_partition, src_offset ROWS BETWEEN 1 PRECEDING AND CURRENT ROW) AS previous
      FROM changes
    ),
    runs AS (
      SELECT sku, location, t, out,
        leadInFrame(t, 1) OVER w AS next_t,
        leadInFrame(toUInt8(1), 1, toUInt8(0)) OVER w AS has_next
      FROM edges WHERE out != previous
      WINDOW w AS (PARTITION BY sku, location ORDER BY t, src_partition, src_offset ROWS BETWEEN CURRENT ROW AND 1 FOLLOWING)
    )
    SELECT sku, location,
      toUnixTimestamp64Milli(t) AS start_ms,
      if(has_next = 1, toUnixTimestamp64Milli(next_t), NULL) AS end_ms,
      if(has_next = 1, toUnixTimestamp64Milli(next_t), {now:Int64}) - toUnixTimestamp64Milli(t) AS duration_ms,
      has_next = 0 AS ongoing
    FROM runs
    WHERE out = 1 AND (has_next = 0 OR next_t >= fromUnixTimestamp64Milli({since:Int64}, 'UTC'))
    ORDER BY duration_ms DESC, sku, location, start_ms
    LIMIT {top:UInt32}`,
  // Days the on-hand at a position lasts at its velocity over the window; lowest cover first.
  cover: `
    SELECT p.sku AS sku, p.location AS location, p.on_hand AS on_hand, v.units AS units,
      round(v.units / {days:Float64}, 3) AS units_per_day,
      round(greatest(p.on_hand, 0) / (v.units / {days:Float64}), 2) AS days_of_cover
    FROM (
      SELECT sku, location, argMaxMerge(on_hand_last) AS on_hand FROM {db}.position_hourly
      WHERE ({sku:String} = '' OR sku = {sku:String}) GROUP BY sku, location
    ) AS p
    INNER JOIN (
      SELECT sku, location, sum(units) AS units FROM {db}.velocity_hourly
      WHERE hour >= ${hourFrom} AND hour <= ${nowAt} AND ${filters} GROUP BY sku, location
    ) AS v ON p.sku = v.sku AND p.location = v.location
    WHERE v.units > 0
    ORDER BY days_of_cover, units DESC, sku, location
    LIMIT {top:UInt32}`,
  // Sold / (on-hand at the start + received) per SKU over the window (days). No channel: store
  // receipts and on-hand belong to no channel.
  sellthrough: `
    SELECT f.sku AS sku, f.sold AS sold, f.received AS received, s.start_on_hand AS start_on_hand,
      if(s.start_on_hand + f.received > 0, round(f.sold / (s.start_on_hand + f.received), 4), NULL) AS sell_through
    FROM (
      SELECT sku, sum(sold_units) AS sold, sum(received_units) AS received FROM {db}.flow_daily
      WHERE day >= toDate(fromUnixTimestamp64Milli({since:Int64}, 'UTC')) AND day <= toDate(${nowAt}) AND ({sku:String} = '' OR sku = {sku:String})
      GROUP BY sku
    ) AS f
    LEFT JOIN (
      SELECT sku, toInt64(sum(on_hand)) AS start_on_hand FROM (
        SELECT sku, location, argMaxMerge(on_hand_last) AS on_hand FROM {db}.position_hourly
        WHERE hour < toStartOfDay(fromUnixTimestamp64Milli({since:Int64}, 'UTC')) AND ({sku:String} = '' OR sku = {sku:String})
        GROUP BY sku, location
      ) GROUP BY sku
    ) AS s ON f.sku = s.sku
    WHERE f.sold > 0
    ORDER BY sell_through DESC NULLS LAST, sold DESC, sku
    LIMIT {top:UInt32}`,
};

export class AnalyticsError extends Error {
  override name = 'AnalyticsError';
}

export function checkDatabaseName(database: string): void {
  if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(database)) throw new AnalyticsError(`ClickHouse database ${JSON.stringify(database)}: expected letters, digits and _ (CLICKHOUSE_DATABASE)`);
}

/** Runs one report; rows are plain JSON (64-bit integers as numbers, times as ms since the epoch). */
export async function runAnalytics(client: ClickHouseClient, database: string, query: AnalyticsQuery): Promise<Record<string, unknown>[]> {
  if (!(analyticsReports as readonly string[]).includes(query.report)) throw new AnalyticsError(`no report ${JSON.stringify(query.report)}: expected ${analyticsReports.join(', ')}`);
  checkDatabaseName(database);
  const top = query.top ?? analyticsTopDefault;
  if (!Number.isInteger(top) || top < 1 || top > analyticsTopMax) throw new AnalyticsError(`top ${top}: expected an integer from 1 to ${analyticsTopMax}`);
  const nowMs = Math.floor(query.nowMs);
  const sinceMs = Math.floor(query.sinceMs ?? nowMs - analyticsWindowMsDefault);
  if (!Number.isFinite(sinceMs) || sinceMs > nowMs) throw new AnalyticsError(`since ${new Date(sinceMs).toISOString()} is after now: expected a time in the past`);
  const hourStartMs = Math.floor(sinceMs / 3_600_000) * 3_600_000;
  const result = await client.query({
    query: analyticsSql[query.report].replaceAll('{db}', database),
    format: 'JSONEachRow',
    query_params: {
      since: sinceMs,
      now: nowMs,
      lookback: sinceMs - stockoutLookbackMs,
      top,
      channel: query.channel ?? '',
      sku: query.sku ?? '',
      hours: Math.max(1 / 60, (nowMs - hourStartMs) / 3_600_000),
      days: Math.max(1 / 1440, (nowMs - hourStartMs) / 86_400_000),
    },
    clickhouse_settings: { output_format_json_quote_64bit_integers: 0 },
  });
  return (await result.json()) as Record<string, unknown>[];
}
