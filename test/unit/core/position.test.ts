import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { InvariantError } from '../../../engine/core/errors.js';
import { adjustmentsMax, applyAdjustment, applyStockEvent, assertPosition, emptyPosition, isFoldedBase, onHand, reserve, unreserve, type PositionState } from '../../../engine/core/position.js';
import { ReferenceModel } from '../../../engine/core/reference-model.js';
import { compareSnapshots, snapshotTie } from '../../../engine/core/snapshot-order.js';
import type { StockEvent } from '../../../engine/core/types.js';
import { delta, locations, snapshot, t0Ms } from './network.js';

function applyAll(events: StockEvent[], start: PositionState = emptyPosition()): PositionState {
  let state = start;
  for (const e of events) {
    state = applyStockEvent(state, e).state;
    assertPosition(state);
  }
  return state;
}

describe('position: examples', () => {
  it('a snapshot sets the on-hand and later deltas add to it', () => {
    const state = applyAll([snapshot('s1', 10, t0Ms), delta('d1', -3, t0Ms + 1), delta('d2', 5, t0Ms + 2)]);
    expect(onHand(state)).toBe(12);
  });

  it('deltas before any snapshot count from zero', () => {
    expect(onHand(applyAll([delta('d1', 4, t0Ms), delta('d2', -1, t0Ms + 5)]))).toBe(3);
  });

  it('a late snapshot older than the current one changes nothing', () => {
    const state = applyAll([snapshot('s2', 10, t0Ms + 100), delta('d1', 2, t0Ms + 150)]);
    const result = applyStockEvent(state, snapshot('s1', 99, t0Ms + 50));
    expect(result).toMatchObject({ outcome: 'stale', changed: false });
    expect(result.state).toBe(state);
    expect(onHand(result.state)).toBe(12);
  });

  it('a delta at or before the current snapshot is already inside it and is ignored', () => {
    const state = applyAll([snapshot('s1', 10, t0Ms + 100)]);
    expect(applyStockEvent(state, delta('d-before', 5, t0Ms + 99)).outcome).toBe('stale');
    // Equal asOf: the count "as of t" already saw what happened at t.
    expect(applyStockEvent(state, delta('d-equal', 5, t0Ms + 100)).outcome).toBe('stale');
    expect(onHand(applyStockEvent(state, delta('d-after', 5, t0Ms + 101)).state)).toBe(15);
  });

  it('a duplicate eventId changes nothing, for deltas and snapshots alike', () => {
    const state = applyAll([snapshot('s1', 10, t0Ms), delta('d1', 3, t0Ms + 1)]);
    expect(applyStockEvent(state, delta('d1', 3, t0Ms + 1))).toMatchObject({ outcome: 'duplicate', changed: false, state });
    expect(applyStockEvent(state, snapshot('s1', 10, t0Ms))).toMatchObject({ outcome: 'duplicate', changed: false, state });
    expect(onHand(state)).toBe(13);
  });

  it('a newer snapshot drops the adjustments it includes and keeps the later ones', () => {
    const state = applyAll([snapshot('s1', 10, t0Ms), delta('d1', -1, t0Ms + 10), delta('d2', -2, t0Ms + 20), delta('d3', -4, t0Ms + 30), snapshot('s2', 50, t0Ms + 20)]);
    expect(state.adjustments.map((a) => a.eventId)).toEqual(['d3']);
    expect(onHand(state)).toBe(46);
  });

  it('a delta that arrived before an older snapshot still counts when it happened after that snapshot', () => {
    // The delta at t+30 arrives first, then the snapshot of t+20: the snapshot does not include it.
    const state = applyAll([delta('late-counted', 7, t0Ms + 30), snapshot('s1', 100, t0Ms + 20)]);
    expect(onHand(state)).toBe(107);
    // A delta that arrived before a snapshot it precedes is dropped: the count includes it.
    expect(onHand(applyAll([delta('early', 7, t0Ms + 10), snapshot('s1', 100, t0Ms + 20)]))).toBe(100);
  });

  it('snapshots with the same asOf are ordered by the tie of their eventIds, whatever the arrival order', () => {
    const a = snapshot('count-A', 10, t0Ms);
    const b = snapshot('count-B', 20, t0Ms);
    const winner = compareSnapshots({ asOfMs: t0Ms, eventId: a.eventId }, { asOfMs: t0Ms, eventId: b.eventId }) > 0 ? a : b;
    expect(onHand(applyAll([a, b]))).toBe(winner.qty);
    expect(onHand(applyAll([b, a]))).toBe(winner.qty);
  });

  it('the snapshot tie is the top 31 bits of the FNV-1a hash, what a Redis position packs in 4 bytes', () => {
    expect(snapshotTie('')).toBe(0x811c9dc5 >>> 1);
    expect(snapshotTie('a')).toBe(0xe40c292c >>> 1);
    for (const id of ['', 'a', 'é漢😀', 'x'.repeat(300)]) expect(snapshotTie(id)).toBeLessThan(2 ** 31);
  });

  it('reserved never goes negative', () => {
    const state = reserve(emptyPosition(), 3);
    expect(unreserve(state, 3).reserved).toBe(0);
    expect(() => unreserve(state, 4)).toThrow(InvariantError);
    expect(() => reserve(state, 0)).toThrow(InvariantError);
  });

  it('an unvalidated event reaching a position is a bug, not a rejection', () => {
    expect(() => applyStockEvent(emptyPosition(), { ...delta('d', 1, t0Ms), qty: 1.5 })).toThrow(InvariantError);
    expect(() => applyStockEvent(emptyPosition(), snapshot('s', -1, t0Ms))).toThrow(InvariantError);
    expect(() => applyAdjustment(emptyPosition(), { eventId: 'z', asOfMs: t0Ms, qty: 0 })).toThrow(InvariantError);
  });

  it('applying never mutates the state it was given', () => {
    const state = applyAll([snapshot('s1', 10, t0Ms), delta('d1', 1, t0Ms + 1)]);
    const copy = structuredClone(state);
    applyStockEvent(state, delta('d2', 1, t0Ms + 2));
    applyStockEvent(state, snapshot('s2', 5, t0Ms + 5));
    expect(state).toEqual(copy);
  });
});

describe('position: the adjustment bound', () => {
  const over = adjustmentsMax + 6;
  const inOrder = [snapshot('s1', 1000, t0Ms), ...Array.from({ length: over }, (_, i) => delta(`d${i}`, -1, t0Ms + 1 + i))];

  it(`keeps at most ${adjustmentsMax} adjustments, folding the oldest into the base without changing on-hand`, () => {
    const state = applyAll(inOrder);
    expect(state.adjustments.length).toBe(adjustmentsMax);
    expect(isFoldedBase(state)).toBe(true);
    expect(state.snapshotAsOfMs).toBe(t0Ms + 6);
    expect(onHand(state)).toBe(1000 - over);
  });

  it('duplicates of folded adjustments are never counted twice', () => {
    const state = applyAll(inOrder);
    expect(applyAll(inOrder, state)).toEqual(state);
  });

  it('a real snapshot at the fold time replaces the folded base', () => {
    const state = applyAll([...inOrder, snapshot('recount', 500, t0Ms + 6)]);
    expect(isFoldedBase(state)).toBe(false);
    expect(onHand(state)).toBe(500 - adjustmentsMax);
  });

  it('documented residual risk: a never-seen delta older than the fold point arriving after the fold is ignored', () => {
    const state = applyAll(inOrder);
    expect(applyStockEvent(state, delta('very-late', -1, t0Ms + 3)).outcome).toBe('stale');
  });

  it('adjustments sharing the oldest asOf are folded together, so every kept one is after the base', () => {
    const sameTime = Array.from({ length: adjustmentsMax + 1 }, (_, i) => delta(`same${i}`, 1, t0Ms + (i < 3 ? 1 : 1 + i)));
    const state = applyAll(sameTime);
    expect(state.snapshotAsOfMs).toBe(t0Ms + 1);
    expect(state.adjustments.length).toBe(adjustmentsMax - 2);
    expect(onHand(state)).toBe(adjustmentsMax + 1);
  });

  it('with events arriving in strictly increasing asOf, any number of adjustments matches the reference model', () => {
    fc.assert(
      fc.property(fc.array(fc.record({ snap: fc.boolean(), qty: fc.integer({ min: 1, max: 50 }), sign: fc.boolean() }), { minLength: 1, maxLength: 300 }), (specs) => {
        const model = new ReferenceModel({ locations, channels: [] });
        let state = emptyPosition();
        specs.forEach((s, i) => {
          // Snapshots are rare so that the bound is often passed.
          const e = s.snap && i % 7 === 0 ? snapshot(`e${i}`, s.qty, t0Ms + i) : delta(`e${i}`, s.sign ? s.qty : -s.qty, t0Ms + i);
          state = applyStockEvent(state, e).state;
          model.applyStockEvent(e);
          expect(onHand(state)).toBe(model.onHand('sku-1', 'dc-1'));
        });
        assertPosition(state);
      }),
      { numRuns: 300 },
    );
  });
});

// Histories of one position: distinct events (unique ids, asOf on a narrow range so that ties and
// reordering are common), delivered late, duplicated, dropped and out of order.
const eventSpec = fc.record({
  snap: fc.boolean(),
  qty: fc.integer({ min: 0, max: 100 }),
  deltaQty: fc.integer({ min: -20, max: 20 }).filter((q) => q !== 0),
  asOfOffset: fc.integer({ min: 0, max: 15 }),
});

function toEvents(specs: { snap: boolean; qty: number; deltaQty: number; asOfOffset: number }[]): StockEvent[] {
  return specs.map((s, i) => (s.snap ? snapshot(`ev-${i}`, s.qty, t0Ms + s.asOfOffset) : delta(`ev-${i}`, s.deltaQty, t0Ms + s.asOfOffset)));
}

// Fewer than adjustmentsMax distinct deltas per history: the bound is never hit.
const historySize = { minLength: 1, maxLength: adjustmentsMax - 4 };

describe('position: property tests against the reference model', () => {
  it('on-hand equals the reference model after every event of late, duplicated, out-of-order histories', () => {
    const history = fc.array(eventSpec, historySize).chain((specs) => {
      const events = toEvents(specs);
      return fc.tuple(fc.constant(events), fc.array(fc.nat({ max: events.length - 1 }), { minLength: 1, maxLength: 120 }));
    });
    fc.assert(
      fc.property(history, ([events, delivery]) => {
        const model = new ReferenceModel({ locations, channels: [] });
        let state = emptyPosition();
        for (const index of delivery) {
          const e = events[index]!;
          const before = onHand(state);
          const result = applyStockEvent(state, e);
          state = result.state;
          assertPosition(state);
          model.applyStockEvent(e);
          expect(onHand(state)).toBe(model.onHand(e.sku, e.location));
          if (!result.changed) expect(onHand(state)).toBe(before);
        }
      }),
      { numRuns: 5000 },
    );
  });

  it('any permutation of the same events, with any duplicates, converges to the same state', () => {
    const history = fc.array(eventSpec, historySize).chain((specs) => {
      const events = toEvents(specs);
      const delivery = fc.tuple(fc.shuffledSubarray(events, { minLength: events.length, maxLength: events.length }), fc.array(fc.nat({ max: events.length - 1 }), { maxLength: 30 }));
      return fc.tuple(fc.constant(events), delivery, delivery);
    });
    fc.assert(
      fc.property(history, ([events, [orderA, dupsA], [orderB, dupsB]]) => {
        const withDuplicates = (order: StockEvent[], dups: number[]) => [...order, ...dups.map((i) => events[i]!)];
        const a = applyAll(withDuplicates(orderA, dupsA));
        const b = applyAll(withDuplicates(orderB, dupsB));
        expect(a).toEqual(b);
        expect(onHand(a)).toBe(onHand(applyAll(events)));
      }),
      { numRuns: 3000 },
    );
  });

  it('re-delivering a whole history changes nothing', () => {
    fc.assert(
      fc.property(fc.array(eventSpec, historySize), (specs) => {
        const events = toEvents(specs);
        const state = applyAll(events);
        for (const e of events) expect(applyStockEvent(state, e).changed).toBe(false);
      }),
      { numRuns: 1000 },
    );
  });
});
