// The in-process stream of the embedded default (same pipeline as the Kafka engine): applies
// valid events, refuses bad ones with their reason, tells listeners the channel ATP of each
// change, lets hot SKUs' events overtake a cold backlog, and makes submit() wait at the lane bound.

import { describe, expect, it } from 'vitest';
import type { Channel, Location, StockEvent } from '../../engine/core/types.js';
import { VelocityTracker } from '../../engine/core/velocity.js';
import { MemoryStore } from '../../engine/store/memory-store.js';
import { encodeStockEvent } from '../../engine/stream/codec.js';
import { InProcessStream } from '../../engine/stream/in-process.js';
import { applyChunkMax, applyConcurrency } from '../../engine/stream/pipeline.js';
import type { AtpChange } from '../../engine/stream/wire.js';
import { Registry } from 'prom-client';

const location = (id: string, type: Location['type'], status: Location['status'] = 'active'): Location => ({
  id,
  type,
  lat: 48.85,
  lon: 2.35,
  capabilities: { ship: true, pickup: type === 'store', shipFromStore: false },
  processingMinutes: 60,
  cutoffLocal: '16:00',
  status,
});
const locations = [location('dc-1', 'dc'), location('store-1', 'store'), location('store-2', 'store', 'paused')];
const channels: Channel[] = [
  { id: 'web', locations: ['dc-1', 'store-1', 'store-2'], bufferByLocationType: { store: { units: 2, percent: 0 } }, minThreshold: 0 },
  { id: 'marketplace', locations: ['dc-1'], bufferByLocationType: { dc: { units: 0, percent: 10 } }, minThreshold: 5 },
];
const network = { locations, channels };
const T = Date.now() - 60_000;

describe('in-process stream', () => {
  it('applies valid events, refuses bad ones with their reason, and tells listeners the channel ATP', async () => {
    const stream = new InProcessStream({ store: new MemoryStore(), network: () => network, registry: new Registry() });
    const seen: AtpChange[] = [];
    const unsubscribe = stream.onChanges((changes) => seen.push(...changes));
    const result = await stream.submit([
      { type: 'snapshot', eventId: 'a', sku: 'S', location: 'dc-1', qty: 30, asOf: T },
      encodeStockEvent({ type: 'snapshot', eventId: 'b', sku: 'S', location: 'store-1', qty: 6, asOf: T }),
      Buffer.from(JSON.stringify({ type: 'delta', eventId: 'c', sku: 'S', location: 'dc-1', qty: -3, asOf: T + 1 })),
      { type: 'snapshot', eventId: 'd', sku: 'S', location: 'store-2', qty: 9, asOf: T },
      { type: 'delta', eventId: 'c', sku: 'S', location: 'dc-1', qty: -3, asOf: T + 1 },
      { type: 'snapshot', eventId: 'old', sku: 'S', location: 'dc-1', qty: 1, asOf: T - 1 },
      { type: 'delta', eventId: 'x1', sku: 'S', location: 'nowhere', qty: 1, asOf: T },
      { type: 'delta', eventId: 'x2', sku: 'S', location: 'dc-1', qty: 0, asOf: T },
      Buffer.from([0xc1, 0x00]),
      'not an event',
    ]);
    expect(result.applied).toBe(4);
    expect(result.duplicate).toBe(1);
    expect(result.stale).toBe(1);
    expect(result.rejected.map((r) => [r.index, r.reason])).toEqual([
      [6, 'unknown_location'],
      [7, 'zero_delta'],
      [8, 'not_decodable'],
      [9, 'wrong_type'],
    ]);
    for (const r of result.rejected) expect(r.detail.length).toBeGreaterThan(10);
    // dc-1: 30 - 3 = 27: web 27; marketplace buffer ceil(10% of 27) = 3 -> 24.
    // store-1: 6 - 2 units = 4 on web; not in marketplace. store-2 is paused: 0 everywhere.
    const last = new Map(seen.map((c) => [c.location, c]));
    expect(last.get('dc-1')).toMatchObject({ sku: 'S', onHand: 27, reserved: 0, atp: { web: 27, marketplace: 24 }, asOfMs: T + 1 });
    expect(last.get('store-1')).toMatchObject({ onHand: 6, atp: { web: 4, marketplace: 0 } });
    expect(last.get('store-2')).toMatchObject({ onHand: 9, atp: { web: 0, marketplace: 0 } });
    expect(seen.every((c) => c.visibleAtMs >= c.asOfMs!)).toBe(true);
    const metrics = await stream.metrics.registry.metrics();
    expect(metrics).toContain('instock_engine_events_rejected_total{reason="zero_delta"} 1');
    expect(metrics).toContain('instock_engine_events_applied_total{outcome="applied"} 4');
    expect(metrics).toContain('instock_engine_events_consumed_total 10');
    // An unsubscribed listener hears nothing more.
    unsubscribe();
    const before = seen.length;
    await stream.submit([{ type: 'delta', eventId: 'e', sku: 'S', location: 'dc-1', qty: 1, asOf: T + 3 }]);
    expect(seen.length).toBe(before);
    await stream.close();
  });

  it('a configuration reload changes the channel ATP of the next change', async () => {
    let current = network;
    const stream = new InProcessStream({ store: new MemoryStore(), network: () => current, registry: new Registry() });
    const seen: AtpChange[] = [];
    stream.onChanges((changes) => seen.push(...changes));
    await stream.submit([{ type: 'snapshot', eventId: 'r1', sku: 'R', location: 'dc-1', qty: 10, asOf: T }]);
    expect(seen.at(-1)!.atp).toEqual({ web: 10, marketplace: 9 });
    current = { locations: locations.map((l) => (l.id === 'dc-1' ? { ...l, status: 'paused' as const } : l)), channels };
    await stream.submit([{ type: 'delta', eventId: 'r2', sku: 'R', location: 'dc-1', qty: 1, asOf: T + 1 }]);
    expect(seen.at(-1)!.atp).toEqual({ web: 0, marketplace: 0 });
    await stream.close();
  });

  it("hot SKUs' events overtake a cold backlog, and every event is applied exactly once", async () => {
    const velocity = new VelocityTracker();
    const now = Date.now();
    for (let i = 0; i < 200; i++) velocity.record(`cold-${i}`, 'web', 0.001, now);
    velocity.record('HOT', 'web', 500, now);
    velocity.retier(now);
    expect(velocity.tier('HOT', now)).toBe('hot');
    const stream = new InProcessStream({ store: new MemoryStore(), network: () => network, velocity, registry: new Registry() });
    const order: string[] = [];
    stream.onEvents((events) => order.push(...events.map((e) => e.sku)));
    const cold: StockEvent[] = Array.from({ length: 20_000 }, (_, i) => ({ type: 'delta', eventId: `c${i}`, sku: `cold-${i % 200}`, location: 'dc-1', qty: 1, asOf: T + i }));
    const hot: StockEvent[] = Array.from({ length: 100 }, (_, i) => ({ type: 'delta', eventId: `h${i}`, sku: 'HOT', location: 'dc-1', qty: 1, asOf: T + i }));
    const coldDone = stream.submit(cold);
    const hotDone = stream.submit(hot);
    const [c, h] = await Promise.all([coldDone, hotDone]);
    expect(c.applied).toBe(20_000);
    expect(h.applied).toBe(100);
    // Submitted after 20,000 cold events, all hot ones were applied before the last cold one
    // (at most the chunks already in flight went first, and the hot one taken beside them).
    const lastHot = order.lastIndexOf('HOT');
    expect(lastHot).toBeLessThan((applyConcurrency + 1) * applyChunkMax);
    expect(order.length).toBe(20_100);
    expect(stream.pipeline.taken.hot).toBe(100);
    await stream.close();
  });

  it('submit() waits while a lane is at its bound, then goes on', async () => {
    const stream = new InProcessStream({ store: new MemoryStore(), network: () => network, registry: new Registry(), laneEventsMax: { cold: 1_000 } });
    const batches = Array.from({ length: 5 }, (_, b) => Array.from({ length: 3_000 }, (_, i) => ({ type: 'delta', eventId: `b${b}-${i}`, sku: `s${i % 50}`, location: 'dc-1', qty: 1, asOf: T + b * 3_000 + i })));
    let maxDepth = 0;
    stream.onEvents(() => (maxDepth = Math.max(maxDepth, stream.pipeline.depth('cold'))));
    const results = await Promise.all(batches.map((b) => stream.submit(b)));
    expect(results.reduce((n, r) => n + r.applied, 0)).toBe(15_000);
    // One submission may land on top of a lane under its bound, never a second one.
    expect(maxDepth).toBeLessThan(1_000 + 3_000);
    await stream.close();
  });
});
