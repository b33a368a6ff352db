// A gateway thread's view of the main thread's in-memory store (gateway/thread-store.ts), with the
// main thread's side (PositionsServer, the store and its copy of the positions in shared memory)
// in this thread and every message structured-cloned as postMessage would: reads must give each
// caller exactly what the store itself gives, from the copy once it knows the SKU, through a random
// history of events, holds, transitions and expiries; a bad SKU fails only its own caller, holds due
// are released by the read, a location the store gains is numbered, errors come back as the
// classes the gateway maps, and a thread reading while the main thread writes never sees half a write.

import { describe, expect, it } from 'vitest';
import { DomainError } from '../../engine/core/errors.js';
import { sampleNetwork, sampleSku } from '../../engine/network/sample.js';
import { MemoryStore } from '../../engine/store/memory-store.js';
import type { StockEvent } from '../../engine/store/types.js';
import { fromWireError, PositionsServer, ThreadStore, wireError, type MainStoreLink, type StoreMethod } from '../../gateway/thread-store.js';

const network = sampleNetwork();
const nowMs = Date.UTC(2026, 10, 24, 9);
const rule = { sellable: true, bufferUnits: 0, bufferPercent: 0, minThreshold: 0 };

function setup() {
  const store = new MemoryStore();
  const server = new PositionsServer(store);
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
    async readPositions(skus, at, known) {
      reads += 1;
      return structuredClone(await server.read(structuredClone(skus), at, structuredClone(known)));
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
    // Read again: from the copy now (only the SKU with no positions is asked), and the same answers.
    const again = await Promise.all(baskets.slice(0, 8).map((skus) => visits((v) => thread.forEachPosition(skus, nowMs, columns, v))));
    expect(again).toEqual(fromThread.slice(0, 8));
    expect(reads()).toBe(2);
    await Promise.all(baskets.slice(0, 5).map((skus) => visits((v) => thread.forEachPosition(skus, nowMs, columns, v))));
    expect(reads()).toBe(2);
    expect(fromThread.flat().some(([, column]) => column === -1)).toBe(true);
    expect(fromThread.flat().some(([, , , reserved]) => reserved === 1)).toBe(true);
  });

  it('reads from the copy what the store gives, through a random history of events, holds, transitions and expiries', async () => {
    const { store, thread, reads } = setup();
    let seed = 7;
    const random = () => ((seed = (seed * 1_103_515_245 + 12_345) % 2_147_483_648) / 2_147_483_648);
    const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)]!;
    const skus = Array.from({ length: 12 }, (_, i) => sampleSku(i + 1));
    const locations = network.locations.slice(0, 10).map((l) => l.id);
    const columns = new Map(locations.filter((_, i) => i !== 4).map((id, i) => [id, i]));
    const cells = { columns, width: columns.size, cell: (_column: number, onHand: number, reserved: number) => onHand * 1_000 + reserved };
    let clock = nowMs;
    let asOf = 1;
    const ids: string[] = [];
    let threadReads = 0;
    for (let step = 0; step < 3_000; step++) {
      clock += Math.floor(random() * 600);
      const r = random();
      if (r < 0.3) {
        const events: StockEvent[] = Array.from({ length: 1 + Math.floor(random() * 6) }, (_, k) => {
          const snapshot = random() < 0.4;
          return { eventId: `e${step}-${k}`, type: snapshot ? 'snapshot' : 'delta', sku: pick(skus), location: pick(locations), qty: snapshot ? Math.floor(random() * 30) : (random() < 0.5 ? -1 : 1) * (1 + Math.floor(random() * 5)), asOf: asOf++, source: 'test' };
        });
        await store.applyEvents(events, clock);
      } else if (r < 0.45) {
        const id = `r${step}`;
        ids.push(id);
        const lines = Array.from({ length: 1 + Math.floor(random() * 3) }, () => ({ sku: pick(skus), location: pick(locations), qty: 1 + Math.floor(random() * 3), rule }));
        await thread.hold({ reservationId: id, channel: 'web', lines: [...new Map(lines.map((l) => [`${l.sku}|${l.location}`, l])).values()], holdTtlMs: 1_000 + Math.floor(random() * 4_000), nowMs: clock });
      } else if (r < 0.55 && ids.length > 0) {
        await thread.transition(pick(ids), pick(['confirm', 'fulfil', 'release'] as const), clock).catch((error: unknown) => expect(error).toBeInstanceOf(DomainError));
      } else if (r < 0.6) {
        await store.expireDue(clock, 3);
      } else {
        const asked = Array.from({ length: 1 + Math.floor(random() * 8) }, () => pick(skus));
        // The thread first (the store's own read releases the holds due, as the thread's must).
        // Rows too, which the thread keeps per write of each SKU and the store until the SKU
        // changes; each read first every other step, so either one meets the holds come due.
        const readPositions = async () => {
          const fromThread = await visits((v) => thread.forEachPosition(asked, clock, columns, v));
          expect(fromThread, `step ${step}`).toEqual(await visits((v) => store.forEachPosition(asked, clock, columns, v)));
        };
        const readRows = async () => {
          const fromThread = (await thread.readRows(asked, clock, cells)).map((row) => row && [...row]);
          expect(fromThread, `step ${step}: rows`).toEqual((await store.readRows(asked, clock, cells)).map((row) => row && [...row]));
        };
        for (const read of step % 2 === 0 ? [readPositions, readRows] : [readRows, readPositions]) await read();
        threadReads += 1;
      }
    }
    expect(threadReads).toBeGreaterThan(1_000);
    // Most reads came from the copy: the main thread answered first reads and SKUs with a hold due.
    expect(reads()).toBeLessThan(threadReads / 2);
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
    const { store, thread, reads } = setup();
    const location = network.locations[1]!.id;
    await store.applyEvents([{ eventId: 'a', type: 'snapshot', sku: sampleSku(2), location, qty: 10, asOf: 1, source: 'test' }], nowMs);
    await thread.hold({ reservationId: 'due', channel: 'web', lines: [{ sku: sampleSku(2), location, qty: 3, rule }], holdTtlMs: 1_000, nowMs });
    const columns = new Map([[location, 0]]);
    expect(await visits((v) => thread.forEachPosition([sampleSku(2)], nowMs + 500, columns, v))).toEqual([[0, 0, 10, 3]]);
    // From the copy, until the hold is due: then the main thread's store releases it as it reads.
    expect(await visits((v) => thread.forEachPosition([sampleSku(2)], nowMs + 900, columns, v))).toEqual([[0, 0, 10, 3]]);
    expect(reads()).toBe(1);
    expect(await visits((v) => thread.forEachPosition([sampleSku(2)], nowMs + 1_500, columns, v))).toEqual([[0, 0, 10, 0]]);
    expect(reads()).toBe(2);
    expect(await visits((v) => thread.forEachPosition([sampleSku(2)], nowMs + 1_600, columns, v))).toEqual([[0, 0, 10, 0]]);
    expect(reads()).toBe(2);
    const seen = await thread.reservation('due', nowMs + 1_500);
    expect(seen?.state).not.toBe('held');
    expect(seen).toEqual(await store.reservation('due', nowMs + 1_500));
  });

  it('numbers a location the store gains, and maps it to the caller\'s column', async () => {
    const { store, thread } = setup();
    await store.applyEvents([{ eventId: 'a', type: 'snapshot', sku: 'S1', location: 'A', qty: 1, asOf: 1, source: 'test' }], nowMs);
    const columns = new Map([['A', 0], ['B', 1]]);
    expect(await visits((v) => thread.forEachPosition(['S1'], nowMs, columns, v))).toEqual([[0, 0, 1, 0]]);
    await store.applyEvents([{ eventId: 'b', type: 'snapshot', sku: 'S1', location: 'B', qty: 2, asOf: 1, source: 'test' }], nowMs);
    expect(await visits((v) => thread.forEachPosition(['S1'], nowMs, columns, v))).toEqual([[0, 0, 1, 0], [0, 1, 2, 0]]);
    // A location the caller has no column for: visited with -1, as the store does.
    await store.applyEvents([{ eventId: 'c', type: 'snapshot', sku: 'S1', location: 'C', qty: 3, asOf: 1, source: 'test' }], nowMs);
    expect(await visits((v) => thread.forEachPosition(['S1'], nowMs, columns, v))).toEqual([[0, -1, 3, 0], [0, 0, 1, 0], [0, 1, 2, 0]]);
    // A SKU that outgrows its region in the copy (12 positions past the 8 it was given room for).
    await store.applyEvents(Array.from({ length: 12 }, (_, i) => ({ eventId: `m${i}`, type: 'snapshot' as const, sku: 'S1', location: `M${i}`, qty: i, asOf: 1, source: 'test' })), nowMs);
    const wide = new Map([...columns, ...Array.from({ length: 12 }, (_, i) => [`M${i}`, 2 + i] as const)]);
    expect(await visits((v) => thread.forEachPosition(['S1'], nowMs, wide, v))).toEqual(await visits((v) => store.forEachPosition(['S1'], nowMs, wide, v)));
  });

  it('brings errors back as the classes the gateway maps to statuses', async () => {
    const { thread } = setup();
    const error = await thread.transition('nobody', 'confirm', nowMs).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(DomainError);
    expect(error).toMatchObject({ code: 'unknown_reservation' });
  });
});
