import { afterAll, describe, expect, it } from 'vitest';
import { connectRedis, type RedisConnection } from '../../engine/store/redis-connection.js';
import { redisClusterNodes, redisUrl, requireService } from '../support/services.js';

const standalone = await requireService('redis');
const cluster = await requireService('redis-cluster');
const opened: RedisConnection[] = [];
afterAll(() => opened.forEach((c) => c.disconnect()));

describe.skipIf(!standalone)('Redis standalone smoke', () => {
  it('round-trips a hash and a Lua script through the project client', async () => {
    const redis = connectRedis({ url: redisUrl }, 'smoke');
    opened.push(redis);
    await redis.del('smoke:{sku-1}');
    await redis.hset('smoke:{sku-1}', 'loc-1', '12');
    expect(await redis.hincrby('smoke:{sku-1}', 'loc-1', -2)).toBe(10);
    expect(await redis.eval("return redis.call('HGET', KEYS[1], ARGV[1])", 1, 'smoke:{sku-1}', 'loc-1')).toBe('10');
    const info = await redis.config('GET', 'appendonly');
    expect(info).toEqual(['appendonly', 'yes']);
  });
});

describe.skipIf(!cluster)('Redis Cluster smoke', () => {
  it('spreads keys over three masters and reads every one back', async () => {
    const redis = connectRedis({ clusterNodes: redisClusterNodes }, 'smoke');
    opened.push(redis);
    const keys = Array.from({ length: 60 }, (_, i) => `smoke:{sku-${i}}`);
    await Promise.all(keys.map((k, i) => redis.set(k, String(i))));
    const values = await Promise.all(keys.map((k) => redis.get(k)));
    expect(values).toEqual(keys.map((_, i) => String(i)));
    const masters = (redis as import('ioredis').Cluster).nodes('master');
    expect(masters).toHaveLength(3);
    const perMaster = await Promise.all(masters.map((m) => m.dbsize()));
    expect(perMaster.every((n) => n > 0)).toBe(true);
    // A hash tag keeps a SKU's keys in one slot, so one script can touch them atomically.
    expect(await redis.eval("redis.call('SET', KEYS[1], 'a'); redis.call('SET', KEYS[2], 'b'); return redis.call('MGET', KEYS[1], KEYS[2])", 2, 'smoke:{sku-7}:a', 'smoke:{sku-7}:b')).toEqual(['a', 'b']);
  });
});
