// A position or adjustment value not written by this layout (the text layouts of earlier versions,
// or anything else) fails every script that reads it with an error that says so, instead of being
// misread.

import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { KeyBuilder } from '../../engine/store/keys.js';
import { RedisStore } from '../../engine/store/redis-store.js';
import { redisUrl, requireService } from '../support/services.js';

const redisUp = await requireService('redis');

describe.skipIf(!redisUp)('Redis position layout', () => {
  const raw = new Redis(redisUrl);
  afterAll(() => raw.disconnect());

  it('refuses a position in another layout with a clear error, on reads, events and holds', async () => {
    const keyPrefix = `fmt${randomUUID().slice(0, 8)}`;
    const store = RedisStore.connect({ url: redisUrl }, { keyPrefix });
    try {
      await store.applyEvents([{ type: 'snapshot', eventId: 'e1', sku: 'SKU-1', location: 'dc', qty: 10, asOf: 1 }]);
      expect(await store.positions('SKU-1', Date.now())).toEqual([{ sku: 'SKU-1', location: 'dc', onHand: 10, reserved: 0, version: 1 }]);
      const refused = /not written by this version of Instock .*reload its stock/;
      // The 38-byte binary layout of the previous version (format byte 2, no position version).
      const previous = Buffer.alloc(38);
      previous[0] = 2;
      previous.writeIntLE(10, 1, 6);
      // Written behind the scripts' back, so the read view made by the read above and its stamp go
      // too (a script that writes a position deletes them).
      const keys = new KeyBuilder(keyPrefix).sku('SKU-1');
      await raw.hset(keys.positions, 'dc', previous);
      await raw.del(keys.view, keys.viewStamp);
      await expect(store.positions('SKU-1', Date.now())).rejects.toThrow(refused);
      await expect(store.applyEvents([{ type: 'delta', eventId: 'e2', sku: 'SKU-1', location: 'dc', qty: -1, asOf: 2 }])).rejects.toThrow(refused);
      // The text layout of earlier versions: "snapQty:adjSum:reserved:snapAsOf:snapTie:adjCount".
      await raw.hset(keys.positions, 'dc', '10:0:0:1:12345:0');
      await raw.del(keys.view, keys.viewStamp);
      await expect(store.positions('SKU-1', Date.now())).rejects.toThrow(refused);
      await expect(store.positionsMany(['SKU-1', 'SKU-2'], Date.now())).rejects.toThrow(refused);
      await expect(store.applyEvents([{ type: 'delta', eventId: 'e2', sku: 'SKU-1', location: 'dc', qty: -1, asOf: 2 }])).rejects.toThrow(refused);
      const rule = { sellable: true, bufferUnits: 0, bufferPercent: 0, minThreshold: 0 };
      await expect(store.hold({ reservationId: 'r1', channel: 'web', lines: [{ sku: 'SKU-1', location: 'dc', qty: 1, rule }], holdTtlMs: 60_000, nowMs: Date.now() })).rejects.toThrow(refused);
    } finally {
      await store.close();
    }
  });

  it('refuses an adjustment in another layout (the "asOf:qty" text of earlier versions) with a clear error', async () => {
    const keyPrefix = `fmt${randomUUID().slice(0, 8)}`;
    const store = RedisStore.connect({ url: redisUrl }, { keyPrefix });
    try {
      await store.applyEvents([
        { type: 'snapshot', eventId: 's1', sku: 'SKU-1', location: 'dc', qty: 10, asOf: 1 },
        { type: 'delta', eventId: 'd1', sku: 'SKU-1', location: 'dc', qty: -1, asOf: 2 },
      ]);
      await raw.hset(new KeyBuilder(keyPrefix).adjustments('SKU-1', 'dc'), 'd1', '2:-1');
      // A newer snapshot reads the adjustments to keep those after it.
      await expect(store.applyEvents([{ type: 'snapshot', eventId: 's2', sku: 'SKU-1', location: 'dc', qty: 7, asOf: 3 }])).rejects.toThrow(/adjustment .* was not written by this version of Instock: reload its stock/);
    } finally {
      await store.close();
    }
  });
});
