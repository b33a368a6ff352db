import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { connectClickHouse } from '../../engine/history/clickhouse.js';

// chDB is in-process: no service to start, so this smoke test always runs.
describe('ClickHouse smoke (chDB through @clickhouse/client)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'instock-chdb-'));
  const client = connectClickHouse({ url: '', chdbPath: dir, database: 'default' });
  afterAll(async () => {
    await client.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('creates a MergeTree table, inserts rows and aggregates them with modern SQL', async () => {
    await client.command({ query: 'CREATE DATABASE IF NOT EXISTS smoke' });
    await client.command({ query: 'CREATE TABLE IF NOT EXISTS smoke.events (sku LowCardinality(String), qty Int32, at DateTime64(3)) ENGINE = MergeTree ORDER BY (sku, at)' });
    await client.insert({
      table: 'smoke.events',
      values: [
        { sku: 'a', qty: 3, at: '2026-11-01 10:00:00.000' },
        { sku: 'a', qty: -1, at: '2026-11-01 10:05:00.000' },
        { sku: 'b', qty: 7, at: '2026-11-01 10:06:00.000' },
      ],
      format: 'JSONEachRow',
    });
    const result = await client.query({ query: 'SELECT sku, sum(qty) AS total, argMax(qty, at) AS last FROM smoke.events GROUP BY sku ORDER BY sku', format: 'JSONEachRow' });
    // 64-bit integers come back quoted from a server and bare from chDB: compare as numbers.
    const rows = (await result.json<{ sku: string; total: string | number; last: number }>()).map((r) => ({ ...r, total: Number(r.total) }));
    expect(rows).toEqual([
      { sku: 'a', total: 2, last: -1 },
      { sku: 'b', total: 7, last: 7 },
    ]);
    const version = await (await client.query({ query: 'SELECT version() AS v', format: 'JSONEachRow' })).json<{ v: string }>();
    expect(Number(version[0]!.v.split('.')[0])).toBeGreaterThanOrEqual(24);
  });
});
