// The history schema in ClickHouse, as versioned migrations applied at start (`migrate`).
//
// Versioned: `schema_migrations` records each version applied; `migrate` runs the versions above
// the highest recorded one, in order. Idempotent: every statement is `IF NOT EXISTS`, so a
// migration interrupted half-way (crash, two processes starting together) simply runs again.
// Never edit a released migration: add a new version.
//
// Volumes this is sized for (DESIGN.md): 1.2 B stock updates in a Black Friday week, so billions
// of rows per month across tables, kept for months. Choices common to the raw tables:
// - MergeTree, partitioned by month of the event's time: TTL drops whole partitions (no row
//   rewrites) and time-bounded queries prune to a few partitions. Months, not days: a day
//   partition would leave thousands of partitions over a year, which ClickHouse handles badly.
// - Ordered by (sku, location, time): analysts ask about one SKU or a set of SKUs, and sorting by
//   SKU puts a position's rows together, so times delta-encode to a few bits and repeated values
//   (location, qty) compress to almost nothing. `sku` is a plain String with ZSTD: millions of
//   distinct values are too many for LowCardinality; locations and channels (thousands at most)
//   are LowCardinality.
// - Time columns: DoubleDelta or Delta then ZSTD (regular, increasing within a position); small
//   integers T64 + ZSTD (packs the few significant bits); ids ZSTD(3).
// - `src_partition`, `src_offset`: where the row came from in Kafka (partition, offset; for the
//   in-process feed of the embedded default, partition 65535 and a writer sequence). With the
//   projection `by_source`, a copy of just these two columns sorted by them, the history consumer
//   asks after a crash which offsets of a replayed range are already stored and skips exactly
//   those, so a crash between insert and offset commit stores nothing twice (see consumer.ts).
//   The projection lives in the same data part as the rows: it is written atomically with them.
// - `insert_batch` (version 3): the insert_deduplication_token of the insert that stored the row.
//   ClickHouse writes a table and each of its views as separate parts, so a crash in the middle of
//   an insert can keep the table's rows and lose a view's. The consumer, finding stored rows in a
//   replayed range, inserts their whole batch again with the same token: the table and the views
//   that have it deduplicate it, a view that missed it gets it (writer.ts, repairBatch). The
//   projection `by_source_batch` carries it, so the replay check finds the batches in one read; a
//   bloom filter finds a batch's rows without reading the table.
// - `non_replicated_deduplication_window`: a retried insert with the same
//   insert_deduplication_token is dropped (also in the materialized views' targets, which carry
//   the same setting), so a timeout after which the server did store the batch counts nothing
//   twice. On a replicated server (Replicated*MergeTree), the replicated dedup log does this.
//
// Materialized views aggregate at insert time into Summing/AggregatingMergeTree tables that are
// thousands of times smaller than the raw rows, so reports read megabytes, not billions of rows.
// Velocity counts units reserved or sold: `held` reservation lines (online demand when it happens;
// `confirmed` would count the same units again) plus store sales, i.e. negative stock deltas with
// source "pos" (channel "pos").

import type { ClickHouseClient } from '@clickhouse/client';

export interface Migration {
  version: number;
  name: string;
  /** Statements with `{db}` standing for the database name. */
  statements: string[];
}

const dedupWindow = 'non_replicated_deduplication_window = 1000';

const sourceColumns = `
  src_partition UInt16 CODEC(ZSTD(1)),
  src_offset UInt64 CODEC(ZSTD(1)),
  PROJECTION by_source (SELECT src_partition, src_offset ORDER BY (src_partition, src_offset))`;

export const migrations: readonly Migration[] = [
  {
    version: 1,
    name: 'raw history tables',
    statements: [
      // Stock events as received (after validation; rejected ones are in the DLQ), one row per
      // Kafka message: the source's own duplicates are kept, they are part of what was received.
      // 13 months: year-over-year comparisons of the same season.
      `CREATE TABLE IF NOT EXISTS {db}.stock_events (
        at DateTime64(3, 'UTC') COMMENT 'source time (asOf)' CODEC(DoubleDelta, ZSTD(1)),
        sku String CODEC(ZSTD(1)),
        location LowCardinality(String),
        type Enum8('snapshot' = 1, 'delta' = 2),
        qty Int32 COMMENT 'absolute on-hand (snapshot) or signed change (delta)' CODEC(T64, ZSTD(1)),
        event_id String CODEC(ZSTD(3)),
        source LowCardinality(String) COMMENT 'erp, wms, pos, 3pl… (empty when not given)',
        received_at DateTime64(3, 'UTC') COMMENT 'when the history consumer read it' CODEC(Delta, ZSTD(1)),
        ${sourceColumns}
      ) ENGINE = MergeTree
      PARTITION BY toYYYYMM(at)
      ORDER BY (sku, location, at)
      TTL toDateTime(at) + INTERVAL 13 MONTH
      SETTINGS ${dedupWindow}`,
      // ATP changes: one row per changed position. The largest table (every applied event and
      // every reservation makes one), so kept 6 months: stock-out intervals and cover look back
      // weeks; older questions are answered by the hourly aggregates below, kept 2 years.
      `CREATE TABLE IF NOT EXISTS {db}.atp_changes (
        visible_at DateTime64(3, 'UTC') CODEC(DoubleDelta, ZSTD(1)),
        sku String CODEC(ZSTD(1)),
        location LowCardinality(String),
        on_hand Int32 CODEC(T64, ZSTD(1)),
        reserved Int32 CODEC(T64, ZSTD(1)),
        atp Map(LowCardinality(String), Int32) COMMENT 'ATP per channel (empty from engines that do not publish it)' CODEC(ZSTD(1)),
        as_of DateTime64(3, 'UTC') COMMENT 'source time of the causing event; 0 when unknown' CODEC(Delta, ZSTD(1)),
        ${sourceColumns}
      ) ENGINE = MergeTree
      PARTITION BY toYYYYMM(visible_at)
      ORDER BY (sku, location, visible_at)
      TTL toDateTime(visible_at) + INTERVAL 6 MONTH
      SETTINGS ${dedupWindow}`,
      // Reservation transitions, one row per line (velocity and sell-through are per SKU).
      `CREATE TABLE IF NOT EXISTS {db}.reservation_transitions (
        at DateTime64(3, 'UTC') CODEC(DoubleDelta, ZSTD(1)),
        sku String CODEC(ZSTD(1)),
        channel LowCardinality(String),
        location LowCardinality(String),
        transition Enum8('held' = 1, 'rejected' = 2, 'confirmed' = 3, 'fulfilled' = 4, 'released' = 5, 'expired' = 6),
        qty Int32 CODEC(T64, ZSTD(1)),
        reservation_id String CODEC(ZSTD(3)),
        line UInt16 CODEC(T64, ZSTD(1)),
        expires_at DateTime64(3, 'UTC') COMMENT 'held only; 0 otherwise' CODEC(Delta, ZSTD(1)),
        ${sourceColumns}
      ) ENGINE = MergeTree
      PARTITION BY toYYYYMM(at)
      ORDER BY (sku, channel, at)
      TTL toDateTime(at) + INTERVAL 13 MONTH
      SETTINGS ${dedupWindow}`,
      // A sample of availability requests: no personal data (no destination, no customer, no
      // SKUs), only the shape and cost of the question. 90 days: enough to compare peaks.
      `CREATE TABLE IF NOT EXISTS {db}.availability_samples (
        at DateTime64(3, 'UTC') CODEC(DoubleDelta, ZSTD(1)),
        channel LowCardinality(String),
        lines UInt16 CODEC(T64, ZSTD(1)),
        options UInt16 CODEC(T64, ZSTD(1)),
        latency_ms Float32 CODEC(ZSTD(1)),
        methods LowCardinality(String)
      ) ENGINE = MergeTree
      PARTITION BY toYYYYMM(at)
      ORDER BY (channel, at)
      TTL toDateTime(at) + INTERVAL 90 DAY
      SETTINGS ${dedupWindow}`,
    ],
  },
  {
    version: 2,
    name: 'velocity, flow and position aggregates',
    statements: [
      // Velocity per SKU × location × channel per hour. Ordered by hour first: the usual question
      // is "top N over the last days", a time range over every SKU.
      `CREATE TABLE IF NOT EXISTS {db}.velocity_hourly (
        hour DateTime('UTC'),
        channel LowCardinality(String),
        sku String CODEC(ZSTD(1)),
        location LowCardinality(String),
        units UInt64 CODEC(T64, ZSTD(1)),
        lines UInt64 CODEC(T64, ZSTD(1))
      ) ENGINE = SummingMergeTree
      PARTITION BY toYYYYMM(hour)
      ORDER BY (hour, channel, sku, location)
      TTL hour + INTERVAL 2 YEAR
      SETTINGS ${dedupWindow}`,
      `CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.velocity_hourly_from_reservations TO {db}.velocity_hourly AS
        SELECT toStartOfHour(at) AS hour, channel, sku, location, toUInt64(sum(qty)) AS units, count() AS lines
        FROM {db}.reservation_transitions WHERE transition = 'held' AND qty > 0
        GROUP BY hour, channel, sku, location`,
      `CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.velocity_hourly_from_pos TO {db}.velocity_hourly AS
        SELECT toStartOfHour(at) AS hour, toLowCardinality('pos') AS channel, sku, location, toUInt64(sum(-qty)) AS units, count() AS lines
        FROM {db}.stock_events WHERE type = 'delta' AND source = 'pos' AND qty < 0
        GROUP BY hour, channel, sku, location`,
      // The same per minute and without location, kept 2 days: what the engine seeds its decaying
      // velocity from at start (a 15-minute half-life needs minutes, not hours). Ordered by
      // minute first: the seed reads only the last hours.
      `CREATE TABLE IF NOT EXISTS {db}.velocity_minute (
        minute DateTime('UTC'),
        sku String CODEC(ZSTD(1)),
        channel LowCardinality(String),
        units UInt64 CODEC(T64, ZSTD(1))
      ) ENGINE = SummingMergeTree
      PARTITION BY toYYYYMMDD(minute)
      ORDER BY (minute, sku, channel)
      TTL minute + INTERVAL 2 DAY
      SETTINGS ${dedupWindow}`,
      `CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.velocity_minute_from_reservations TO {db}.velocity_minute AS
        SELECT toStartOfMinute(at) AS minute, sku, channel, toUInt64(sum(qty)) AS units
        FROM {db}.reservation_transitions WHERE transition = 'held' AND qty > 0
        GROUP BY minute, sku, channel`,
      `CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.velocity_minute_from_pos TO {db}.velocity_minute AS
        SELECT toStartOfMinute(at) AS minute, sku, toLowCardinality('pos') AS channel, toUInt64(sum(-qty)) AS units
        FROM {db}.stock_events WHERE type = 'delta' AND source = 'pos' AND qty < 0
        GROUP BY minute, sku, channel`,
      // Sold and received units per SKU × location per day, for sell-through: sold = confirmed
      // reservation lines (orders placed) + store sales; received = positive deltas.
      `CREATE TABLE IF NOT EXISTS {db}.flow_daily (
        day Date,
        sku String CODEC(ZSTD(1)),
        location LowCardinality(String),
        sold_units UInt64 CODEC(T64, ZSTD(1)),
        received_units UInt64 CODEC(T64, ZSTD(1))
      ) ENGINE = SummingMergeTree
      PARTITION BY toYYYYMM(day)
      ORDER BY (day, sku, location)
      TTL day + INTERVAL 2 YEAR
      SETTINGS ${dedupWindow}`,
      `CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.flow_daily_from_reservations TO {db}.flow_daily AS
        SELECT toDate(at) AS day, sku, location, toUInt64(sum(qty)) AS sold_units, toUInt64(0) AS received_units
        FROM {db}.reservation_transitions WHERE transition = 'confirmed' AND qty > 0
        GROUP BY day, sku, location`,
      `CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.flow_daily_from_stock TO {db}.flow_daily AS
        SELECT toDate(at) AS day, sku, location,
          toUInt64(sumIf(-qty, source = 'pos' AND qty < 0)) AS sold_units,
          toUInt64(sumIf(qty, qty > 0)) AS received_units
        FROM {db}.stock_events WHERE type = 'delta'
        GROUP BY day, sku, location`,
      // Position level per hour: last on-hand and available (on-hand − reserved), lowest
      // available, changes. Cover and sell-through read on-hand here instead of raw changes.
      `CREATE TABLE IF NOT EXISTS {db}.position_hourly (
        hour DateTime('UTC'),
        sku String CODEC(ZSTD(1)),
        location LowCardinality(String),
        on_hand_last AggregateFunction(argMax, Int32, DateTime64(3, 'UTC')),
        available_last AggregateFunction(argMax, Int32, DateTime64(3, 'UTC')),
        available_min AggregateFunction(min, Int32),
        changes SimpleAggregateFunction(sum, UInt64)
      ) ENGINE = AggregatingMergeTree
      PARTITION BY toYYYYMM(hour)
      ORDER BY (sku, location, hour)
      TTL hour + INTERVAL 2 YEAR
      SETTINGS ${dedupWindow}`,
      `CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.position_hourly_from_changes TO {db}.position_hourly AS
        SELECT toStartOfHour(visible_at) AS hour, sku, location,
          argMaxState(on_hand, visible_at) AS on_hand_last,
          argMaxState(toInt32(on_hand - reserved), visible_at) AS available_last,
          minState(toInt32(on_hand - reserved)) AS available_min,
          toUInt64(count()) AS changes
        FROM {db}.atp_changes
        GROUP BY hour, sku, location`,
    ],
  },
  {
    version: 3,
    name: 'insert batch of each raw row (a replay completes the views)',
    statements: ['stock_events', 'atp_changes', 'reservation_transitions'].flatMap((table) => [
      `ALTER TABLE {db}.${table} ADD COLUMN IF NOT EXISTS insert_batch String DEFAULT '' COMMENT 'insert_deduplication_token of the insert that stored the row' CODEC(ZSTD(1))`,
      `ALTER TABLE {db}.${table} ADD INDEX IF NOT EXISTS insert_batch_bloom insert_batch TYPE bloom_filter(0.01) GRANULARITY 4`,
      `ALTER TABLE {db}.${table} ADD PROJECTION IF NOT EXISTS by_source_batch (SELECT src_partition, src_offset, insert_batch ORDER BY (src_partition, src_offset))`,
      `ALTER TABLE {db}.${table} DROP PROJECTION IF EXISTS by_source`,
    ]),
  },
  {
    version: 4,
    name: 'position version of each ATP change (orders changes from several producers)',
    statements: [
      `ALTER TABLE {db}.atp_changes ADD COLUMN IF NOT EXISTS position_version UInt64 DEFAULT 0 COMMENT 'the position version in the store: of two changes of a position, the higher is the newer (0: written before version 4)' CODEC(ZSTD(1)) AFTER reserved`,
    ],
  },
];

function assertIdentifier(name: string): void {
  if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) throw new Error(`ClickHouse database ${JSON.stringify(name)}: expected letters, digits and _ (CLICKHOUSE_DATABASE)`);
}

/**
 * Creates the database and applies the migrations not applied yet. Safe to call at every start
 * and from several processes at once (every statement is IF NOT EXISTS). Returns the versions
 * applied by this call.
 */
export async function migrate(client: ClickHouseClient, database: string): Promise<number[]> {
  assertIdentifier(database);
  await client.command({ query: `CREATE DATABASE IF NOT EXISTS ${database}` });
  await client.command({
    query: `CREATE TABLE IF NOT EXISTS ${database}.schema_migrations (version UInt32, name String, applied_at DateTime('UTC') DEFAULT now())
      ENGINE = ReplacingMergeTree ORDER BY version`,
  });
  const result = await client.query({ query: `SELECT max(version) AS v FROM ${database}.schema_migrations`, format: 'JSONEachRow' });
  const current = Number((await result.json<{ v: number | string }>())[0]?.v ?? 0);
  const applied: number[] = [];
  for (const migration of migrations) {
    if (migration.version <= current) continue;
    for (const statement of migration.statements) await client.command({ query: statement.replaceAll('{db}', database) });
    await client.insert({ table: `${database}.schema_migrations`, values: [{ version: migration.version, name: migration.name }], format: 'JSONEachRow' });
    applied.push(migration.version);
  }
  return applied;
}

export const schemaVersion = migrations[migrations.length - 1]!.version;
