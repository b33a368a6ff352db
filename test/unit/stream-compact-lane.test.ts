import { describe, expect, it } from 'vitest';
import type { StockEvent } from '../../engine/core/types.js';
import { CompactLane, type LaneItem } from '../../engine/stream/compact-lane.js';
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

describe('compact cold lane', () => {
  it('gives back every event exactly, in order, across many slabs, with pushes and shifts interleaved', () => {
    const r = random(42);
    const lane = new CompactLane('cold');
    const tickets = [new Ticket(() => undefined), new Ticket(() => undefined)];
    const reference: LaneItem[] = [];
    let n = 0;
    let maxBytes = 0;
    for (let round = 0; round < 40; round++) {
      const pushes = Math.floor(r() * 3_000);
      for (let i = 0; i < pushes; i++) {
        const item = { event: eventAt(r, n++), ticket: tickets[n % 2]!, tier: 'cold' as const };
        lane.push(item);
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
        expect(got!.event).toEqual(expected.event);
        expect(got!.ticket).toBe(expected.ticket);
        expect(got!.tier).toBe('cold');
      }
      expect(lane.length).toBe(reference.length);
    }
    for (const expected of reference.splice(0)) expect(lane.shift()!.event).toEqual(expected.event);
    expect(lane.shift()).toBeUndefined();
    expect(lane.length).toBe(0);
    // Several slabs were in use at the peak, and an empty lane keeps at most one.
    expect(maxBytes).toBeGreaterThan(1 << 20);
    expect(lane.bytes).toBeLessThanOrEqual(1 << 20);
  });

  it('removes the items of dropped tickets and keeps the others in order', () => {
    const r = random(7);
    const lane = new CompactLane('cold');
    const tickets = Array.from({ length: 5 }, () => new Ticket(() => undefined));
    const items = Array.from({ length: 20_000 }, (_, n) => ({ event: eventAt(r, n), ticket: tickets[n % 5]!, tier: 'cold' as const }));
    for (const item of items) lane.push(item);
    for (let i = 0; i < 1_000; i++) lane.shift();
    const dropped = new Set([tickets[1], tickets[3]]);
    const removed = lane.remove((item) => dropped.has(item.ticket));
    const left = items.slice(1_000);
    expect(removed.map((i) => i.event)).toEqual(left.filter((i) => dropped.has(i.ticket)).map((i) => i.event));
    const kept = left.filter((i) => !dropped.has(i.ticket));
    expect(lane.length).toBe(kept.length);
    for (const item of kept) {
      const got = lane.shift()!;
      expect(got.event).toEqual(item.event);
      expect(got.ticket).toBe(item.ticket);
    }
    expect(lane.length).toBe(0);
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
