// A benchmark's own redis-server: started detached under the data dir's bench layout, on its own
// port and a fresh directory, with a client that waits for it; stop() removes both.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { layout, runningPid, startDetached, stopByPid, waitFor } from '../services/processes.js';
import { nodeArgs } from '../services/redis.js';

export interface BenchRedis {
  url: string;
  /** A plain client of the server (the benchmark's floor, checks). */
  client: Redis;
  /** The server's pid, for its CPU rows. */
  pid: number | undefined;
  stop(): Promise<void>;
}

/**
 * Starts redis-server `name` on `port` (the product's settings, nodeArgs, then extraArgs) and
 * resolves once it answers; a server that does not is stopped and its error thrown.
 */
export async function startBenchRedis(dataDir: string, name: string, port: number, extraArgs: readonly string[] = []): Promise<BenchRedis> {
  const paths = layout(join(dataDir, 'bench'));
  const dir = mkdtempSync(join(tmpdir(), `instock-${name}-`));
  startDetached(paths, name, 'redis-server', [...nodeArgs(dir, port, false), ...extraArgs]);
  const url = `redis://127.0.0.1:${port}`;
  const client = new Redis(url, { lazyConnect: true });
  // Refusals are expected until the server listens; waitFor's ping carries the error.
  client.on('error', () => undefined);
  const stop = async () => {
    client.disconnect();
    await stopByPid(paths, name);
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    await waitFor(`${name} on ${port}`, async () => (await client.ping()) === 'PONG', 10_000);
  } catch (error) {
    await stop();
    throw error;
  }
  return { url, client, pid: runningPid(paths, name), stop };
}
