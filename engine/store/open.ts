// The store the configuration selects: Redis Cluster, Redis standalone, or in-memory (embedded default).

import { backends, type Config } from '../../config/config.js';
import { MemoryStore } from './memory-store.js';
import { RedisStore } from './redis-store.js';
import type { InventoryStore } from './types.js';

export function openStore(config: Config): InventoryStore {
  switch (backends(config).store) {
    case 'redis-cluster':
      return RedisStore.connect({ clusterNodes: config.redisClusterNodes });
    case 'redis':
      return RedisStore.connect({ url: config.redisUrl });
    case 'memory':
      return new MemoryStore();
  }
}
