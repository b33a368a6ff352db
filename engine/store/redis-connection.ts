// Redis connections for the stores: one standalone client or one ioredis Cluster, chosen by config.

import { Cluster, Redis } from 'ioredis';

export type RedisConnection = Redis | Cluster;

export interface RedisTarget {
  url?: string;
  clusterNodes?: string[];
}

function splitHostPort(hostPort: string): { host: string; port: number } {
  const at = hostPort.lastIndexOf(':');
  return { host: hostPort.slice(0, at), port: Number(hostPort.slice(at + 1)) };
}

/**
 * Opens a connection. Every bound is named: a command is retried on at most 3 reconnections
 * (maxRetriesPerRequest) and reconnection gives up after 20 attempts (backoff up to 1 s), so a
 * caller sees an outage as an error rather than waiting forever.
 */
export function connectRedis(target: RedisTarget, name = 'instock'): RedisConnection {
  const common = { connectionName: name, enableOfflineQueue: true, maxRetriesPerRequest: 3, lazyConnect: false };
  if (target.clusterNodes && target.clusterNodes.length > 0) {
    return new Cluster(target.clusterNodes.map(splitHostPort), {
      redisOptions: common,
      scaleReads: 'master',
      enableReadyCheck: true,
      clusterRetryStrategy: (times: number) => (times > 20 ? null : Math.min(times * 100, 1000)),
    });
  }
  if (!target.url) throw new Error('connectRedis: neither a URL nor cluster nodes given');
  return new Redis(target.url, { ...common, retryStrategy: (times: number) => (times > 20 ? null : Math.min(times * 100, 1000)) });
}
