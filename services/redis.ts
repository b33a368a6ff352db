// Local Redis 7 from Debian: one standalone server (AOF everysec) and a 3-master Redis Cluster,
// each node on its own port, data under <dataDir>/services/redis.

import { spawnSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { log, runningPid, startDetached, stopByPid, waitFor, type Layout } from './processes.js';

const host = '127.0.0.1';

export function nodeArgs(dir: string, port: number, cluster: boolean): string[] {
  return [
    '--bind', host, '--port', String(port), '--dir', dir, '--daemonize', 'no', '--protected-mode', 'no',
    // AOF everysec: at most one second of writes lost on a crash, the product's durability contract.
    '--appendonly', 'yes', '--appendfsync', 'everysec', '--save', '',
    // noeviction: a position or a hold must never vanish silently under memory pressure; writes fail instead.
    '--maxmemory-policy', 'noeviction',
    // A SKU's positions are one hash; kept as a compact listpack up to 512 locations (default 128).
    '--hash-max-listpack-entries', '512',
    ...(cluster ? ['--cluster-enabled', 'yes', '--cluster-config-file', 'nodes.conf', '--cluster-node-timeout', '5000'] : []),
  ];
}

async function ping(port: number): Promise<boolean> {
  const client = new Redis({ host, port, lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null, enableOfflineQueue: false });
  // Probes expect refusals while a server starts; the promise carries the error, not the event.
  client.on('error', () => undefined);
  try {
    await client.connect();
    return (await client.ping()) === 'PONG';
  } finally {
    client.disconnect();
  }
}

async function clusterInfo(port: number): Promise<Record<string, string>> {
  const client = new Redis({ host, port, lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null, enableOfflineQueue: false });
  // Probes expect refusals while a server starts; the promise carries the error, not the event.
  client.on('error', () => undefined);
  try {
    await client.connect();
    const info = (await client.call('CLUSTER', 'INFO')) as string;
    return Object.fromEntries(info.split(/\r?\n/).filter(Boolean).map((line) => line.split(':') as [string, string]));
  } finally {
    client.disconnect();
  }
}

function startNode(paths: Layout, name: string, port: number, cluster: boolean): void {
  if (runningPid(paths, name) !== undefined) return;
  const dir = join(paths.root, 'redis', name);
  mkdirSync(dir, { recursive: true });
  startDetached(paths, name, 'redis-server', nodeArgs(dir, port, cluster));
}

export async function redisUp(paths: Layout, standalonePort: number, clusterPorts: number[]): Promise<void> {
  const t0 = Date.now();
  startNode(paths, 'redis', standalonePort, false);
  clusterPorts.forEach((port) => startNode(paths, `redis-cluster-${port}`, port, true));
  await waitFor(`Redis on ${host}:${standalonePort}`, () => ping(standalonePort), 15_000, join(paths.logs, 'redis.log'));
  log(`Redis standalone up on ${host}:${standalonePort} (AOF everysec) in ${Date.now() - t0} ms`);
  for (const port of clusterPorts) {
    await waitFor(`Redis Cluster node ${host}:${port}`, () => ping(port), 15_000, join(paths.logs, `redis-cluster-${port}.log`));
  }
  const info = await clusterInfo(clusterPorts[0]!);
  if (info.cluster_known_nodes !== String(clusterPorts.length) || info.cluster_slots_assigned !== '16384') {
    // A fresh cluster (or one whose nodes.conf was lost): create it. Nodes that already agree keep their slots.
    const create = spawnSync('redis-cli', ['--cluster', 'create', ...clusterPorts.map((p) => `${host}:${p}`), '--cluster-replicas', '0', '--cluster-yes'], { encoding: 'utf8' });
    if (create.status !== 0) throw new Error(`redis-cli --cluster create failed: ${create.stdout}${create.stderr}`);
  }
  await waitFor('Redis Cluster cluster_state:ok', async () => {
    for (const port of clusterPorts) if ((await clusterInfo(port)).cluster_state !== 'ok') return false;
    return true;
  }, 30_000);
  log(`Redis Cluster up on ${clusterPorts.map((p) => `${host}:${p}`).join(',')} (3 masters, cluster_state:ok) in ${Date.now() - t0} ms`);
}

export async function redisDown(paths: Layout, clusterPorts: number[]): Promise<string[]> {
  const names = ['redis', ...clusterPorts.map((p) => `redis-cluster-${p}`)];
  const stopped: string[] = [];
  for (const name of names) if (await stopByPid(paths, name)) stopped.push(name);
  return stopped;
}

export async function redisStatus(paths: Layout, standalonePort: number, clusterPorts: number[]): Promise<string[]> {
  const lines: string[] = [];
  const pid = runningPid(paths, 'redis');
  lines.push(`redis            ${pid ? `pid ${pid}` : 'stopped'}  ${host}:${standalonePort}${pid ? ((await ping(standalonePort).catch(() => false)) ? '  PONG' : '  not answering') : ''}`);
  const pids = clusterPorts.map((p) => runningPid(paths, `redis-cluster-${p}`));
  let state = '';
  if (pids.every(Boolean)) state = `  cluster_state:${(await clusterInfo(clusterPorts[0]!).catch(() => ({}) as Record<string, string>)).cluster_state ?? 'unknown'}`;
  lines.push(`redis-cluster    ${pids.every(Boolean) ? `pids ${pids.join(',')}` : pids.some(Boolean) ? `partly running (${pids.filter(Boolean).length}/${pids.length})` : 'stopped'}  ${clusterPorts.map((p) => `${host}:${p}`).join(',')}${state}`);
  return lines;
}
