// Replayed changes (engine.ts): events read again after a takeover may have been applied by a
// previous owner that died before their changes reached Kafka. Those of a replay ticket that come
// back duplicate or stale publish their position's state again; elsewhere they publish nothing.

import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import type { StockEvent } from '../../engine/core/types.js';
import { MemoryStore } from '../../engine/store/memory-store.js';
import { EngineMetrics } from '../../engine/stream/metrics.js';
import { ApplyPipeline, Ticket } from '../../engine/stream/pipeline.js';
import type { AtpChange } from '../../engine/stream/wire.js';

const asOf = Date.UTC(2026, 10, 24);
const snapshot: StockEvent = { type: 'snapshot', eventId: 's1', sku: 'SKU-1', location: 'dc-1', qty: 40, asOf };
const delta: StockEvent = { type: 'delta', eventId: 'd1', sku: 'SKU-1', location: 'dc-1', qty: -3, asOf: asOf + 1_000 };
const late: StockEvent = { type: 'delta', eventId: 'd0', sku: 'SKU-1', location: 'dc-1', qty: 5, asOf: asOf - 1_000 };

describe('replayed changes', () => {
  it('publish the state of positions whose events come back duplicate or stale, only on replay tickets', async () => {
    const registry = new Registry();
    const metrics = new EngineMetrics(registry);
    const published: AtpChange[] = [];
    const pipeline = new ApplyPipeline({ store: new MemoryStore(), metrics, retry: false, publish: (changes) => void published.push(...changes) });
    const submit = async (events: StockEvent[], replay: boolean) => {
      const ticket = new Ticket(() => undefined);
      ticket.replay = replay;
      pipeline.enqueue(events, ticket);
      ticket.seal();
      await pipeline.idle();
      return published.splice(0);
    };

    const first = await submit([snapshot, delta], false);
    expect(first.map((c) => [c.onHand, c.version])).toEqual([
      [40, 1],
      [37, 2],
    ]);
    // Read again by the same owner (a rewind): nothing changed, nothing to say.
    expect(await submit([snapshot, delta, late], false)).toEqual([]);
    // Read again after a takeover: the position's state, at its version, once per event.
    const replayed = await submit([snapshot, delta, late], true);
    expect(replayed.map((c) => [c.sku, c.location, c.onHand, c.reserved, c.version])).toEqual([
      ['SKU-1', 'dc-1', 37, 0, 2],
      ['SKU-1', 'dc-1', 37, 0, 2],
      ['SKU-1', 'dc-1', 37, 0, 2],
    ]);
    const text = await registry.metrics();
    expect(text).toContain('instock_engine_changes_replayed_total 3');
    expect(text).toContain('instock_engine_changes_published_total 5');
    await pipeline.stop();
  });
});
