// ClickHouse for history: a server when CLICKHOUSE_URL is set, otherwise chDB (the ClickHouse
// engine in-process) under the data directory. Both through @clickhouse/client, so the same SQL
// and the same client code serve both.

import { mkdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { createClient, type ClickHouseClient } from '@clickhouse/client';

const require = createRequire(import.meta.url);

export interface ClickHouseTarget {
  /** Server URL; empty means chDB in-process. */
  url: string;
  /** chDB data directory (one process at a time may open it). */
  chdbPath: string;
  database: string;
}

export function chdbPathFor(dataDir: string): string {
  return join(dataDir, 'chdb');
}

export function connectClickHouse(target: ClickHouseTarget): ClickHouseClient {
  if (target.url) {
    return createClient({ url: target.url, database: target.database, request_timeout: 30_000 });
  }
  mkdirSync(target.chdbPath, { recursive: true });
  // chdb/connection is CommonJS-only; load it lazily so server deployments never load libchdb.
  const { createChdbConnection } = require('chdb/connection') as typeof import('chdb/connection');
  const connection = createChdbConnection({ path: target.chdbPath });
  return createClient({ connection } as unknown as Parameters<typeof createClient>[0]);
}
