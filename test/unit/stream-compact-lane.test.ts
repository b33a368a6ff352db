import { describe, expect, it } from 'vitest';
import type { StockEvent } from '../../engine/core/types.js';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CompactLane, slabBytes, type LaneItem, type RawItem } from '../../engine/stream/compact-lane.js';
import { Ticket } from '../../engine/stream/pipeline.js';

/** A deterministic generator (mulberry32): the same events on every run. */
function random(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
}

const alphabet = ['a', 'Z', '7', '-', '_', '.', 'é', 'ß', '漢', '😀', '|', ' '];

/** Up to `max` UTF-16 units, never splitting a surrogate pair (validation refuses lone ones). */
function text(r: () => number, max: number): string {
  let s = '';
  const n = 1 + Math.floor(r() * max);
  for (;;) {
    const next = alphabet[Math.floor(r() * alphabet.length)]!;
    if (s.length + next.length > n) return s || 'x';
    s += next;
  }
}

function eventAt(r: () => number, n: number): StockEvent {
  const snapshot = r() < 0.3;
  const event: StockEvent = {
    type: snapshot ? 'snapshot' : 'delta',
    eventId: `${text(r, 120)}#${n}`,
    sku: text(r, 64),
    location: text(r, 64),
    qty: snapshot ? Math.floor(r() * 1_000_000_000) : (r() < 0.5 ? -1 : 1) * (1 + Math.floor(r() * 1_000_000_000)),
    asOf: 946_684_800_000 + Math.floor(r() * 2_000_000_000_000),
  };
  if (r() < 0.2) event.source = text(r, 64);
  return event;
}

/** One item in four a raw message (a key and value bytes of any length, up to 400), the rest events. */
function itemAt(r: () => number, n: number, ticket: Ticket): LaneItem | RawItem {
  if (r() >= 0.25) return { event: eventAt(r, n), ticket, tier: 'cold' };
  const value = Buffer.alloc(Math.floor(r() * 400));
  const seed = Math.floor(r() * 256);
  for (let i = 0; i < value.length; i++) value[i] = (seed + i * 37) & 255;
  const raw = { key: text(r, 64), value, time: 946_684_800_000 + Math.floor(r() * 2_000_000_000_000), partition: Math.floor(r() * 65_536), offset: Math.floor(r() * 2 ** 52) };
  return { raw, ticket, tier: 'cold' };
}

function pushItem(lane: CompactLane, item: LaneItem | RawItem): void {
  if ('raw' in item) lane.pushRaw(item.raw, item.ticket);
  else lane.push(item);
}

/** What a shifted item must give back: the event, or the raw message with its value's bytes copied. */
function content(item: LaneItem | RawItem | undefined): unknown {
  if (!item) return undefined;
  return 'raw' in item ? { ...item.raw, value: Buffer.from(item.raw.value) } : item.event;
}

const skuOf = (item: LaneItem | RawItem) => ('raw' in item ? item.raw.key : item.event.sku);

describe('compact cold lane', () => {
  it('gives back every event exactly, in order, across many slabs, with pushes and shifts interleaved', () => {
    const r = random(42);
    const lane = new CompactLane('cold');
    const tickets = [new Ticket(() => undefined), new Ticket(() => undefined)];
    const reference: (LaneItem | RawItem)[] = [];
    let n = 0;
    let maxBytes = 0;
    for (let round = 0; round < 40; round++) {
      const pushes = Math.floor(r() * 3_000);
      for (let i = 0; i < pushes; i++) {
        const item = itemAt(r, n++, tickets[n % 2]!);
        pushItem(lane, item);
        reference.push(item);
      }
      maxBytes = Math.max(maxBytes, lane.bytes);
      const shifts = Math.floor(r() * 3_000);
      for (let i = 0; i < shifts; i++) {
        const expected = reference.shift();
        const got = lane.shift();
        if (!expected) {
          expect(got).toBeUndefined();
          break;
        }
        expect(content(got)).toEqual(content(expected));
        expect(got!.ticket).toBe(expected.ticket);
        expect(got!.tier).toBe('cold');
      }
      expect(lane.length).toBe(reference.length);
    }
    for (const expected of reference.splice(0)) expect(content(lane.shift())).toEqual(content(expected));
    expect(lane.shift()).toBeUndefined();
    expect(lane.length).toBe(0);
    // Several slabs were in use at the peak, and an empty lane keeps at most one.
    expect(maxBytes).toBeGreaterThan(1 << 20);
    expect(lane.bytes).toBeLessThanOrEqual(1 << 20);
  });

  it('skips the events of dropped tickets when their turn comes, keeps the others in order, and reports each skipped SKU', () => {
    const r = random(7);
    const skipped: string[] = [];
    const lane = new CompactLane('cold', undefined, (sku) => skipped.push(sku));
    const tickets = Array.from({ length: 5 }, () => new Ticket(() => undefined));
    // Runs of 1 to 300 events per ticket, as batches arrive.
    const items: (LaneItem | RawItem)[] = [];
    while (items.length < 20_000) {
      const ticket = tickets[Math.floor(r() * 5)]!;
      for (let k = Math.floor(1 + r() * 300); k > 0; k--) items.push(itemAt(r, items.length, ticket));
    }
    for (const item of items) pushItem(lane, item);
    for (let i = 0; i < 1_000; i++) lane.shift();
    const dropped = new Set([tickets[1], tickets[3]]);
    const left = items.slice(1_000);
    expect(lane.dropTickets((t) => dropped.has(t))).toBe(left.filter((i) => dropped.has(i.ticket)).length);
    // Dropped twice counts nothing the second time.
    expect(lane.dropTickets((t) => dropped.has(t))).toBe(0);
    const kept = left.filter((i) => !dropped.has(i.ticket));
    expect(lane.length).toBe(kept.length);
    for (const item of kept) {
      const got = lane.shift()!;
      expect(content(got)).toEqual(content(item));
      expect(got.ticket).toBe(item.ticket);
    }
    expect(lane.shift()).toBeUndefined();
    expect(lane.length).toBe(0);
    expect(skipped).toEqual(left.filter((i) => dropped.has(i.ticket)).map(skuOf));
  });

  it('spills slabs past its memory to files and reads them back in order, interleaved with pushes, shifts and drops; the files go once read', () => {
    const r = random(11);
    const parent = mkdtempSync(join(tmpdir(), 'instock-lane-test-'));
    try {
      const lane = new CompactLane('cold', { dir: parent, memoryBytes: 2 * slabBytes });
      // A ticket per round, as per delivered batch: a dropped ticket gets no new events.
      const tickets = Array.from({ length: 12 }, () => new Ticket(() => undefined));
      const reference: (LaneItem | RawItem)[] = [];
      const dropped = new Set<Ticket>();
      let n = 0;
      let maxSpilled = 0;
      let maxBytes = 0;
      for (let round = 0; round < 12; round++) {
        const ticket = tickets[round]!;
        for (let i = Math.floor(r() * 25_000); i > 0; i--) {
          const item = itemAt(r, n++, ticket);
          pushItem(lane, item);
          reference.push(item);
        }
        maxSpilled = Math.max(maxSpilled, lane.spilledSlabs);
        maxBytes = Math.max(maxBytes, lane.bytes);
        // The slabs on disk are files in one directory of this process.
        const dirs = readdirSync(parent);
        if (lane.spilledSlabs > 0) {
          expect(dirs).toHaveLength(1);
          expect(dirs[0]).toMatch(new RegExp(`^instock-cold-lane-${process.pid}-cold-`));
          expect(readdirSync(join(parent, dirs[0]!))).toHaveLength(lane.spilledSlabs);
        }
        if (round === 5) {
          dropped.add(tickets[1]!).add(tickets[4]!);
          lane.dropTickets((t) => dropped.has(t));
        }
        for (let i = Math.floor(r() * 20_000); i > 0; i--) {
          let expected = reference.shift();
          while (expected && dropped.has(expected.ticket)) expected = reference.shift();
          const got = lane.shift();
          if (!expected) {
            expect(got).toBeUndefined();
            break;
          }
          expect(content(got)).toEqual(content(expected));
          expect(got!.ticket).toBe(expected.ticket);
        }
        expect(lane.length).toBe(reference.filter((i) => !dropped.has(i.ticket)).length);
      }
      for (const expected of reference.filter((i) => !dropped.has(i.ticket))) expect(content(lane.shift())).toEqual(content(expected));
      expect(lane.shift()).toBeUndefined();
      // It did spill, memory never passed its bound (plus the slab being written), and no file is left.
      expect(maxSpilled).toBeGreaterThan(3);
      expect(maxBytes).toBeLessThanOrEqual(3 * slabBytes);
      expect(lane.spilledSlabs).toBe(0);
      for (const dir of readdirSync(parent)) expect(readdirSync(join(parent, dir))).toEqual([]);
      lane.close();
      expect(readdirSync(parent)).toEqual([]);
    } finally {
      rmSync(parent, { recursive: true, force: true });
    }
  });

  it('removes the spill directory a dead process left behind, and refuses a memory bound under two slabs', () => {
    const parent = mkdtempSync(join(tmpdir(), 'instock-lane-test-'));
    try {
      // A pid that is not running: far above pid_max's default.
      mkdirSync(join(parent, 'instock-cold-lane-4194999-cold-abc'));
      writeFileSync(join(parent, 'instock-cold-lane-4194999-cold-abc', '0.slab'), 'x');
      mkdirSync(join(parent, 'unrelated'));
      const lane = new CompactLane('cold', { dir: parent, memoryBytes: 2 * slabBytes });
      const ticket = new Ticket(() => undefined);
      for (let n = 0; n < 100_000; n++) lane.push({ event: { type: 'delta', eventId: `e-${n}`, sku: `S-${n % 97}`, location: 'L1', qty: 1, asOf: n }, ticket, tier: 'cold' });
      expect(lane.spilledSlabs).toBeGreaterThan(0);
      expect(readdirSync(parent).sort()).toEqual([expect.stringMatching(new RegExp(`^instock-cold-lane-${process.pid}-`)), 'unrelated']);
      lane.close();
      expect(() => new CompactLane('cold', { dir: parent, memoryBytes: slabBytes })).toThrow(/at least 2097152/);
    } finally {
      rmSync(parent, { recursive: true, force: true });
    }
  });

  it('holds a waiting event in far fewer bytes than an event object', () => {
    const lane = new CompactLane('cold');
    const ticket = new Ticket(() => undefined);
    const count = 200_000;
    for (let n = 0; n < count; n++) lane.push({ event: { type: 'delta', eventId: `run-${n}`, sku: `B-${String(n % 20_000).padStart(6, '0')}`, location: `L${n % 10}`, qty: -1, asOf: 1_790_000_000_000 + n }, ticket, tier: 'cold' });
    expect(lane.length).toBe(count);
    // 25 header bytes and ~18 of strings per event here: at most 60 bytes each, slabs included.
    expect(lane.bytes / count).toBeLessThan(60);
  });
});
