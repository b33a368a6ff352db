// A delivered batch's ticket lives until its last event is applied, which for a cold event in an
// overload is minutes. It must not keep the batch's decoded events alive: packed in the cold lane,
// they are bytes. (A closure made inside take() shares its context and did: the heap grew to 1 GB
// in 30 s of overload.) No Kafka: the batch goes straight to take(), against a store that never answers.

import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import type { KafkaClient } from '../../connectors/kafka.js';
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

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;
function settledHeap(): number {
  gc();
  gc();
  return process.memoryUsage().heapUsed;
}

describe('a waiting batch', () => {
  it('is not kept alive by its ticket: only its packed cold events wait', async () => {
    const now = Date.now();
    const velocity = new VelocityTracker();
    for (let i = 0; i < 10; i++) velocity.record(`C-${i}`, 'web', 0.01, now);
    velocity.retier(now);
    const store: InventoryStore = Object.create(new MemoryStore()) as InventoryStore;
    store.applyEvents = () => new Promise(() => {});
    const engine = new StreamEngine({ kafka: {} as KafkaClient, topics: { stock: 's', changes: 'c', dlq: 'd' }, groupId: 'g', store, velocity, registry: new Registry() });
    const internals = engine as unknown as EngineInternals;
    const state = internals.partitionState(0);
    let offset = 0;
    const batch = (size: number) =>
      Array.from({ length: size }, (_, i) => {
        const sku = `C-${i % 10}`;
        return { key: Buffer.from(sku), value: encodeStockEvent({ type: 'delta', eventId: `event-${offset}`, sku, location: 'dc-1', qty: 1, asOf: now - 1_000 }), offset: offset++ };
      });
    // The store calls in flight take a batch each (and never return); the next ones wait in the cold lane.
    for (let k = 0; k < applyConcurrency; k++) await internals.take(state, batch(1));
    const heapBefore = settledHeap();
    // 100 batches of 1,000 cold events, decoded (as the engine decodes when reading is not behind).
    for (let k = 0; k < 100; k++) await internals.take(state, batch(1_000));
    expect(engine.pipeline.depth('cold')).toBe(100_000);
    // Packed in the lane's slabs (off the heap), the events take ~50 bytes each; what stays on the
    // heap is a ticket and a queue entry per batch. Decoded events kept alive take ~250 bytes each.
    const perEvent = (settledHeap() - heapBefore) / 100_000;
    expect(perEvent).toBeLessThan(30);
  });
});
