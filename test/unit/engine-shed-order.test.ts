// The engine's shedding keeps each SKU's events in delivered order even when the SKU changes
// tier while its partition sheds. No Kafka is needed: batches go straight to the engine's take(),
// against a store that never answers (so that events stay in the lanes and the cold one fills).

import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import type { KafkaClient } from '../../connectors/kafka.js';
import type { StockEvent } from '../../engine/core/types.js';
import { VelocityTracker } from '../../engine/core/velocity.js';
import { MemoryStore } from '../../engine/store/memory-store.js';
import type { InventoryStore } from '../../engine/store/types.js';
import { encodeStockEvent } from '../../engine/stream/codec.js';
import { StreamEngine } from '../../engine/stream/engine.js';
import { applyConcurrency } from '../../engine/stream/pipeline.js';

interface EngineInternals {
  partitionState(partition: number): unknown;
  take(state: unknown, messages: { key: Buffer | null; value: Buffer | null; offset: number }[]): Promise<void>;
}

describe('shedding and a re-tier', () => {
  it('skips every later event of a SKU once one was skipped, even if the SKU turned hot meanwhile', async () => {
    const now = Date.now();
    const velocity = new VelocityTracker();
    velocity.record('BEST', 'web', 1_000, now);
    for (let i = 0; i < 30; i++) velocity.record(`C-${i}`, 'web', 0.01, now);
    velocity.retier(now);
    expect(velocity.tier('C-1', now)).toBe('cold');

    const store: InventoryStore = Object.create(new MemoryStore()) as InventoryStore;
    store.applyEvents = () => new Promise(() => {});
    const engine = new StreamEngine({ kafka: {} as KafkaClient, topics: { stock: 's', changes: 'c', dlq: 'd' }, groupId: 'g', store, velocity, laneEventsMax: { cold: 3 }, registry: new Registry() });
    const internals = engine as unknown as EngineInternals;
    const state = internals.partitionState(0);
    let offset = 0;
    const batch = (skus: string[]) =>
      internals.take(
        state,
        skus.map((sku) => {
          const event: StockEvent = { type: 'delta', eventId: `e${offset}`, sku, location: 'dc', qty: 1, asOf: now - 1_000 + offset };
          return { key: Buffer.from(sku), value: encodeStockEvent(event), offset: offset++ };
        }),
      );

    // A chunk per store call in flight goes to the store (which never answers), the next batch waits: the cold lane is full.
    for (let k = 0; k < applyConcurrency; k++) await batch([`C-${10 + 2 * k}`, `C-${11 + 2 * k}`]);
    await batch(['C-20', 'C-21', 'C-22', 'C-23']);
    expect(engine.pipeline.full(['cold'])).toBe(true);
    // The partition starts shedding: C-1's event is skipped.
    await batch(['C-1']);
    expect(engine.counters.sheds).toBe(1);
    expect(engine.counters.shedEvents).toBe(1);
    // C-1 becomes a best seller. Its next event must not overtake the skipped one.
    velocity.record('C-1', 'web', 1_000_000, now);
    velocity.retier(now);
    expect(velocity.tier('C-1', now)).toBe('hot');
    await batch(['C-1', 'BEST']);
    expect(engine.counters.shedEvents).toBe(2);
    // BEST (warm now that C-1 outsells it) is taken: only cold SKUs and C-1 are skipped.
    expect(engine.pipeline.depth('hot') + engine.pipeline.depth('warm')).toBe(1);
  });
});
