// A gateway thread's view of the main thread's in-memory store (gateway/thread-store.ts), with the
// main thread's side (PositionsServer, the store) in this thread and every message structured-
// cloned as postMessage would: reads batched per turn must give each caller exactly what the store
// itself gives, a bad SKU fails only its own caller, holds due are released by the read, a location
// added to the network is numbered, and errors come back as the classes the gateway maps.

import { describe, expect, it } from 'vitest';
import { DomainError } from '../../engine/core/errors.js';
import { sampleNetwork, sampleSku } from '../../engine/network/sample.js';
import { MemoryStore } from '../../engine/store/memory-store.js';
import type { StockEvent } from '../../engine/store/types.js';
import { fromWireError, PositionsServer, ThreadStore, wireError, type MainStoreLink, type StoreMethod } from '../../gateway/thread-store.js';

const network = sampleNetwork();
const nowMs = Date.UTC(2026, 10, 24, 9);
const rule = { sellable: true, bufferUnits: 0, bufferPercent: 0, minThreshold: 0 };

function setup(locations: () => { id: string }[] = () => network.locations) {
  const store = new MemoryStore();
  const server = new PositionsServer(store, locations);
  let reads = 0;
  const link: MainStoreLink = {
    async call(method: StoreMethod, args: unknown[]) {
      try {
        const fn = store[method] as (...a: unknown[]) => Promise<unknown>;
        return structuredClone(await fn.apply(store, structuredClone(args)));
      } catch (error) {
        throw fromWireError(structuredClone(wireError(error)));
      }
    },
    async readPositions(skus, at, namesVersion) {
      reads += 1;
      return structuredClone(await server.read(structuredClone(skus), at, namesVersion));
    },
  };
  return { store, thread: new ThreadStore(link), reads: () => reads };
}

type Visit = [line: number, column: number, onHand: number, reserved: number];

async function visits(read: (visit: (line: number, column: number, onHand: number, reserved: number) => void) => Promise<void>): Promise<Visit[]> {
  const out: Visit[] = [];
  await read((line, column, onHand, reserved) => out.push([line, column, onHand, reserved]));
  return out.sort((a, b) => a[0] - b[0] || a[1] - b[1] || a[2] - b[2]);
}

describe('ThreadStore: the main thread store seen from a gateway thread', () => {
  it('gives every caller of a batch what the store gives, in one message per turn', async () => {
    const { store, thread, reads } = setup();
    let seed = 11;
    const random = () => ((seed = (seed * 1_103_515_245 + 12_345) % 2_147_483_648) / 2_147_483_648);
    const events: StockEvent[] = [];
    for (let s = 1; s <= 30; s++) {
      for (const location of network.locations) {
        if (random() < 0.3) continue;
        events.push({ eventId: `e-${s}-${location.id}`, type: 'snapshot', sku: sampleSku(s), location: location.id, qty: Math.floor(random() * 50), asOf: 1_000, source: 'test' });
      }
    }
    // A position at a location no network knows: visited with column -1, as the store does.
    events.push({ eventId: 'e-odd', type: 'snapshot', sku: sampleSku(31), location: 'GONE-1', qty: 9, asOf: 1_000, source: 'test' });
    await store.applyEvents(events, nowMs);
    const lines = network.locations.map((l) => l.id).filter((_, i) => i % 3 !== 0);
    const columns = new Map(lines.map((id, i) => [id, i]));
    await store.hold({ reservationId: 'r1', channel: 'web', lines: [{ sku: sampleSku(3), location: events.find((e) => e.sku === sampleSku(3) && e.qty > 0)!.location, qty: 1, rule }], holdTtlMs: 60_000, nowMs });

    const baskets = Array.from({ length: 40 }, (_, b) => Array.from({ length: 1 + (b % 12) }, (_, i) => (i === 5 ? 'SKU-NONE' : sampleSku(1 + ((b * 7 + i * 3) % 31)))));
    const fromThread = await Promise.all(baskets.map((skus) => visits((v) => thread.forEachPosition(skus, nowMs, columns, v))));
    expect(reads()).toBe(1);
    for (let b = 0; b < baskets.length; b++) {
      const expected = await visits((v) => store.forEachPosition(baskets[b]!, nowMs, columns, v));
      expect(fromThread[b]).toEqual(expected);
      expect(expected.length).toBeGreaterThan(0);
    }
    // Read again: the thread's location numbers are known now, and the answers are the same.
    const again = await Promise.all(baskets.slice(0, 5).map((skus) => visits((v) => thread.forEachPosition(skus, nowMs, columns, v))));
    expect(again).toEqual(fromThread.slice(0, 5));
    expect(fromThread.flat().some(([, column]) => column === -1)).toBe(true);
    expect(fromThread.flat().some(([, , , reserved]) => reserved === 1)).toBe(true);
  });

  it('fails only the caller with a bad SKU, not the others of its batch', async () => {
    const { store, thread } = setup();
    await store.applyEvents([{ eventId: 'a', type: 'snapshot', sku: sampleSku(1), location: network.locations[0]!.id, qty: 4, asOf: 1, source: 'test' }], nowMs);
    const columns = new Map([[network.locations[0]!.id, 0]]);
    const [good, bad] = await Promise.allSettled([visits((v) => thread.forEachPosition([sampleSku(1)], nowMs, columns, v)), visits((v) => thread.forEachPosition(['bad sku with spaces'], nowMs, columns, v))]);
    expect(good).toEqual({ status: 'fulfilled', value: [[0, 0, 4, 0]] });
    expect(bad.status).toBe('rejected');
    expect((bad as PromiseRejectedResult).reason).toBeInstanceOf(DomainError);
  });

  it('releases a hold that is due when the batch reads, as the store itself does', async () => {
    const { store, thread } = setup();
    const location = network.locations[1]!.id;
    await store.applyEvents([{ eventId: 'a', type: 'snapshot', sku: sampleSku(2), location, qty: 10, asOf: 1, source: 'test' }], nowMs);
    await thread.hold({ reservationId: 'due', channel: 'web', lines: [{ sku: sampleSku(2), location, qty: 3, rule }], holdTtlMs: 1_000, nowMs });
    const columns = new Map([[location, 0]]);
    expect(await visits((v) => thread.forEachPosition([sampleSku(2)], nowMs + 500, columns, v))).toEqual([[0, 0, 10, 3]]);
    expect(await visits((v) => thread.forEachPosition([sampleSku(2)], nowMs + 1_500, columns, v))).toEqual([[0, 0, 10, 0]]);
    const seen = await thread.reservation('due', nowMs + 1_500);
    expect(seen?.state).not.toBe('held');
    expect(seen).toEqual(await store.reservation('due', nowMs + 1_500));
  });

  it('numbers a location the network gains, and maps it to the caller\'s column', async () => {
    let locations: { id: string }[] = [{ id: 'A' }];
    const { store, thread } = setup(() => locations);
    await store.applyEvents([{ eventId: 'a', type: 'snapshot', sku: 'S1', location: 'A', qty: 1, asOf: 1, source: 'test' }], nowMs);
    const columns = new Map([['A', 0], ['B', 1]]);
    expect(await visits((v) => thread.forEachPosition(['S1'], nowMs, columns, v))).toEqual([[0, 0, 1, 0]]);
    await store.applyEvents([{ eventId: 'b', type: 'snapshot', sku: 'S1', location: 'B', qty: 2, asOf: 1, source: 'test' }], nowMs);
    // Before the network names B, its position is one no column takes.
    expect(await visits((v) => thread.forEachPosition(['S1'], nowMs, columns, v))).toEqual([[0, -1, 2, 0], [0, 0, 1, 0]]);
    locations = [{ id: 'A' }, { id: 'B' }];
    expect(await visits((v) => thread.forEachPosition(['S1'], nowMs, columns, v))).toEqual([[0, 0, 1, 0], [0, 1, 2, 0]]);
  });

  it('brings errors back as the classes the gateway maps to statuses', async () => {
    const { thread } = setup();
    const error = await thread.transition('nobody', 'confirm', nowMs).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(DomainError);
    expect(error).toMatchObject({ code: 'unknown_reservation' });
  });
});
