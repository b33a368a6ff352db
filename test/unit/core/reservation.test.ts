import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { positionAtp } from '../../../engine/core/atp.js';
import { DomainError, InvariantError } from '../../../engine/core/errors.js';
import { applyStockEvent, assertPosition, emptyPosition, positionKey, positionView, type PositionState } from '../../../engine/core/position.js';
import { ReferenceModel } from '../../../engine/core/reference-model.js';
import { applyTransition, confirm, effectiveState, expire, fulfil, fulfilEventId, hold, release, type ReservationResult } from '../../../engine/core/reservation.js';
import type { Channel, HoldRequest, Location, Reservation, ReservationLine, ReservationOp } from '../../../engine/core/types.js';
import { validateHoldRequest } from '../../../engine/core/validate.js';
import { channel, dc, locations, lookup, snapshot, storeA, t0Ms } from './network.js';

/** A store in miniature: positions and reservations in maps, written from each result. */
class Book {
  readonly positions = new Map<string, PositionState>();
  readonly reservations = new Map<string, Reservation>();
  constructor(
    readonly channel: Channel,
    public network: Location[] = locations,
  ) {}

  positionOf = (sku: string, location: string) => this.positions.get(positionKey(sku, location));

  write(result: ReservationResult): ReservationResult {
    for (const p of result.positions) {
      assertPosition(p.state);
      this.positions.set(positionKey(p.sku, p.location), p.state);
    }
    this.reservations.set(result.reservation.id, result.reservation);
    return result;
  }

  stock(sku: string, location: string, qty: number, asOf = t0Ms): void {
    const key = positionKey(sku, location);
    this.positions.set(key, applyStockEvent(this.positions.get(key) ?? emptyPosition(), snapshot(`snap-${sku}-${location}-${asOf}`, qty, asOf, sku, location)).state);
  }

  hold(id: string, lines: ReservationLine[], nowMs: number, holdTtlMs = 60_000): ReservationResult {
    const request: HoldRequest = { reservationId: id, channel: this.channel.id, lines, holdTtlMs };
    return this.write(hold(request, this.reservations.get(id), { channel: this.channel, locationOf: lookup(this.network), positionOf: this.positionOf, nowMs }));
  }

  op(op: ReservationOp, id: string, nowMs: number): ReservationResult {
    const r = this.reservations.get(id);
    if (!r) throw new DomainError('unknown_reservation', `reservation ${id} does not exist`);
    return this.write(applyTransition(op, r, { positionOf: this.positionOf, nowMs }));
  }

  view(sku: string, location: string) {
    return positionView(this.positionOf(sku, location) ?? emptyPosition());
  }
}

const line = (sku: string, location: string, qty: number): ReservationLine => ({ sku, location, qty });

describe('holds', () => {
  it('a hold that fits reserves every line until its TTL', () => {
    const book = new Book(channel());
    book.stock('a', 'dc-1', 10);
    book.stock('b', 'store-a', 3);
    const { reservation, changed } = book.hold('r1', [line('a', 'dc-1', 4), line('b', 'store-a', 3)], t0Ms, 60_000);
    expect(changed).toBe(true);
    expect(reservation).toMatchObject({ state: 'held', expiresAtMs: t0Ms + 60_000, createdAtMs: t0Ms });
    expect(book.view('a', 'dc-1')).toEqual({ onHand: 10, reserved: 4 });
    expect(book.view('b', 'store-a')).toEqual({ onHand: 3, reserved: 3 });
  });

  it('all lines or none: one short line rejects the whole basket, with every shortfall', () => {
    const book = new Book(channel({ bufferByLocationType: { store: { units: 1, percent: 0 } } }));
    book.stock('a', 'dc-1', 10);
    book.stock('b', 'store-a', 3);
    const { reservation, positions } = book.hold('r1', [line('a', 'dc-1', 4), line('b', 'store-a', 3)], t0Ms);
    expect(reservation.state).toBe('rejected');
    expect(reservation.shortfalls).toEqual([{ sku: 'b', location: 'store-a', requested: 3, available: 2 }]);
    expect(positions).toEqual([]);
    expect(book.view('a', 'dc-1').reserved).toBe(0);
  });

  it('a hold at a paused location or outside the channel falls short with 0 available', () => {
    const book = new Book(channel(), [dc, { ...storeA, status: 'paused' }]);
    book.stock('a', 'store-a', 10);
    book.stock('a', 'dsv-1', 10);
    expect(book.hold('r1', [line('a', 'store-a', 1)], t0Ms).reservation.shortfalls).toEqual([{ sku: 'a', location: 'store-a', requested: 1, available: 0 }]);
    expect(book.hold('r2', [line('a', 'dsv-1', 1)], t0Ms).reservation.state).toBe('rejected');
  });

  it('holds never exceed ATP: the second buyer of the last unit is refused', () => {
    const book = new Book(channel());
    book.stock('a', 'dc-1', 1);
    expect(book.hold('r1', [line('a', 'dc-1', 1)], t0Ms).reservation.state).toBe('held');
    expect(book.hold('r2', [line('a', 'dc-1', 1)], t0Ms).reservation.state).toBe('rejected');
  });

  it('retrying a hold with the same id returns the first outcome and changes nothing', () => {
    const book = new Book(channel());
    book.stock('a', 'dc-1', 5);
    const first = book.hold('r1', [line('a', 'dc-1', 2)], t0Ms);
    const again = book.hold('r1', [line('a', 'dc-1', 5)], t0Ms + 10);
    expect(again).toEqual({ reservation: first.reservation, changed: false, positions: [] });
    expect(book.view('a', 'dc-1').reserved).toBe(2);
    // A rejection is a first outcome too: stock arriving later does not turn the retry into a hold.
    const rejected = book.hold('r2', [line('a', 'dc-1', 50)], t0Ms);
    book.stock('a', 'dc-1', 100, t0Ms + 1);
    expect(book.hold('r2', [line('a', 'dc-1', 50)], t0Ms + 2).reservation).toBe(rejected.reservation);
  });

  it('two lines on one position are a bug: requests are merged when validated', () => {
    const book = new Book(channel());
    book.stock('a', 'dc-1', 5);
    expect(() => book.hold('r1', [line('a', 'dc-1', 3), line('a', 'dc-1', 3)], t0Ms)).toThrow(InvariantError);
    const request = validateHoldRequest({ reservationId: 'r1', channel: 'web', lines: [line('a', 'dc-1', 3), line('a', 'dc-1', 3)] }, { channelExists: () => true, locationExists: () => true });
    expect(request.lines).toEqual([line('a', 'dc-1', 6)]);
  });
});

describe('transitions', () => {
  function held(qty = 3) {
    const book = new Book(channel());
    book.stock('a', 'dc-1', 10);
    book.stock('b', 'store-a', 10);
    book.hold('r1', [line('a', 'dc-1', qty), line('b', 'store-a', 1)], t0Ms, 60_000);
    return book;
  }

  it('confirm keeps the units reserved and removes the expiry', () => {
    const book = held();
    const { reservation, positions } = book.op('confirm', 'r1', t0Ms + 1);
    expect(reservation).toMatchObject({ state: 'confirmed', expiresAtMs: 0, updatedAtMs: t0Ms + 1 });
    expect(positions).toEqual([]);
    // No expiry once confirmed.
    expect(book.op('expire', 'r1', t0Ms + 10_000_000).changed).toBe(false);
    expect(book.view('a', 'dc-1').reserved).toBe(3);
  });

  it('fulfil drops reserved and on-hand by the same quantity, as an adjustment at fulfilment time', () => {
    const book = held();
    book.op('confirm', 'r1', t0Ms + 1);
    const atpBefore = positionAtp(book.view('a', 'dc-1'), dc, book.channel);
    book.op('fulfil', 'r1', t0Ms + 2);
    expect(book.view('a', 'dc-1')).toEqual({ onHand: 7, reserved: 0 });
    expect(positionAtp(book.view('a', 'dc-1'), dc, book.channel)).toBe(atpBefore);
    expect(book.positionOf('a', 'dc-1')!.adjustments).toEqual([{ eventId: fulfilEventId('r1', 0), asOfMs: t0Ms + 2, qty: -3 }]);
  });

  it('fulfil straight from held is allowed', () => {
    const book = held();
    expect(book.op('fulfil', 'r1', t0Ms + 1).reservation.state).toBe('fulfilled');
    expect(book.view('b', 'store-a')).toEqual({ onHand: 9, reserved: 0 });
  });

  it('the fulfilment adjustment is idempotent: re-delivered as an event it changes nothing', () => {
    const book = held();
    book.op('fulfil', 'r1', t0Ms + 1);
    const p = book.positionOf('a', 'dc-1')!;
    expect(applyStockEvent(p, { type: 'delta', eventId: fulfilEventId('r1', 0), sku: 'a', location: 'dc-1', qty: -3, asOf: t0Ms + 1 }).outcome).toBe('duplicate');
  });

  it('a stock count taken after the pick already includes it: the sale is not subtracted twice', () => {
    const book = held();
    book.op('fulfil', 'r1', t0Ms + 1);
    book.stock('a', 'dc-1', 7, t0Ms + 5);
    expect(book.view('a', 'dc-1')).toEqual({ onHand: 7, reserved: 0 });
  });

  it('release gives the units back, from held or confirmed', () => {
    const book = held();
    book.op('release', 'r1', t0Ms + 1);
    expect(book.view('a', 'dc-1')).toEqual({ onHand: 10, reserved: 0 });
    const other = held();
    other.op('confirm', 'r1', t0Ms + 1);
    expect(other.op('release', 'r1', t0Ms + 2).reservation.state).toBe('released');
    expect(other.view('a', 'dc-1').reserved).toBe(0);
  });

  it('a hold past its TTL expires and gives its units back', () => {
    const book = held();
    expect(book.op('expire', 'r1', t0Ms + 59_999).changed).toBe(false);
    const { reservation } = book.op('expire', 'r1', t0Ms + 60_000);
    expect(reservation).toMatchObject({ state: 'released', expired: true, expiresAtMs: 0 });
    expect(book.view('a', 'dc-1').reserved).toBe(0);
  });

  it('reads of an unswept expired hold already say released', () => {
    const book = held();
    expect(effectiveState(book.reservations.get('r1')!, t0Ms + 60_000)).toBe('released');
    expect(effectiveState(book.reservations.get('r1')!, t0Ms + 59_999)).toBe('held');
  });

  it('confirming or fulfilling an expired hold fails with hold_expired; releasing it releases it as expired', () => {
    const book = held();
    const r = book.reservations.get('r1')!;
    expect(() => confirm(r, t0Ms + 60_000)).toThrow(expect.objectContaining({ code: 'hold_expired' }));
    expect(() => fulfil(r, { positionOf: book.positionOf, nowMs: t0Ms + 60_000 })).toThrow(/its hold expired at .* place a new hold/);
    expect(book.op('release', 'r1', t0Ms + 60_000).reservation).toMatchObject({ state: 'released', expired: true });
  });

  it('an expired hold answers hold_expired whether or not the expiry sweep has run', () => {
    const book = held();
    book.op('expire', 'r1', t0Ms + 60_000);
    expect(() => book.op('confirm', 'r1', t0Ms + 60_001)).toThrow(expect.objectContaining({ code: 'hold_expired' }));
    expect(book.op('release', 'r1', t0Ms + 60_001).changed).toBe(false);
  });

  it('applying the same transition twice returns the first outcome and changes nothing', () => {
    for (const op of ['confirm', 'fulfil', 'release'] as const) {
      const book = held();
      const first = book.op(op, 'r1', t0Ms + 1);
      const positions = new Map(book.positions);
      const again = book.op(op, 'r1', t0Ms + 2);
      expect(again).toEqual({ reservation: first.reservation, changed: false, positions: [] });
      expect(book.positions).toEqual(positions);
    }
  });

  it.each([
    ['released', 'confirm'],
    ['released', 'fulfil'],
    ['fulfilled', 'confirm'],
    ['fulfilled', 'release'],
  ] as const)('a %s reservation refuses %s with a typed DomainError that says why', (state, op) => {
    const book = held();
    book.op(state === 'released' ? 'release' : 'fulfil', 'r1', t0Ms + 1);
    let error: unknown;
    try {
      book.op(op, 'r1', t0Ms + 2);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(DomainError);
    expect(error).toMatchObject({ code: 'invalid_transition', message: `cannot ${op} reservation r1: it is ${state}` });
  });

  it('a rejected hold cannot be confirmed', () => {
    const book = new Book(channel());
    book.hold('r1', [line('a', 'dc-1', 1)], t0Ms);
    expect(() => book.op('confirm', 'r1', t0Ms)).toThrow('cannot confirm reservation r1: its hold was rejected');
  });

  it('a held reservation whose position vanished is a bug', () => {
    const book = held();
    book.positions.clear();
    expect(() => release(book.reservations.get('r1')!, { positionOf: book.positionOf, nowMs: t0Ms })).toThrow(InvariantError);
    expect(() => expire(book.reservations.get('r1')!, { positionOf: book.positionOf, nowMs: t0Ms + 60_000 })).toThrow(InvariantError);
  });
});

// Random histories of stock events, holds, transitions, pauses and time passing, run against the
// core (through Book) and the reference model side by side. Like a store, the harness expires due
// holds before every step.
describe('reservations: property tests against the reference model', () => {
  const skus = ['a', 'b'];
  const locs = ['dc-1', 'store-a', 'store-b'];
  const lineArb = fc.record({ sku: fc.constantFrom(...skus), location: fc.constantFrom(...locs), qty: fc.integer({ min: 1, max: 6 }) });
  const stepArb = fc.oneof(
    fc.record({ kind: fc.constant('stock' as const), sku: fc.constantFrom(...skus), location: fc.constantFrom(...locs), snap: fc.boolean(), qty: fc.integer({ min: -5, max: 20 }), asOfOffsetMs: fc.integer({ min: -30_000, max: 1_000 }) }),
    fc.record({ kind: fc.constant('hold' as const), id: fc.integer({ min: 0, max: 12 }), lines: fc.array(lineArb, { minLength: 1, maxLength: 4 }), holdTtlMs: fc.integer({ min: 1_000, max: 90_000 }) }),
    fc.record({ kind: fc.constant('op' as const), id: fc.integer({ min: 0, max: 12 }), op: fc.constantFrom<ReservationOp>('confirm', 'fulfil', 'release', 'expire') }),
    fc.record({ kind: fc.constant('pause' as const), location: fc.constantFrom(...locs), paused: fc.boolean() }),
    fc.record({ kind: fc.constant('wait' as const), ms: fc.integer({ min: 0, max: 40_000 }) }),
  );
  const webArb = fc.record({
    minThreshold: fc.integer({ min: 0, max: 3 }),
    storeBuffer: fc.record({ units: fc.integer({ min: 0, max: 2 }), percent: fc.constantFrom(0, 10, 25) }),
    atpCap: fc.option(fc.integer({ min: 3, max: 15 }), { nil: undefined }),
  });

  it('holds, transitions, on-hand, reserved and ATP agree with the model after every step', () => {
    fc.assert(
      fc.property(webArb, fc.array(stepArb, { minLength: 1, maxLength: 60 }), (w, steps) => {
        const web: Channel = { id: 'web', locations: locs, bufferByLocationType: { store: w.storeBuffer }, minThreshold: w.minThreshold, atpCap: w.atpCap };
        let network = locations.map((l) => ({ ...l }));
        const book = new Book(web, network);
        const model = new ReferenceModel({ locations: network, channels: [web] });
        let nowMs = t0Ms;
        let eventSeq = 0;

        const sweep = () => {
          for (const [id, r] of [...book.reservations].sort(([a], [b]) => (a < b ? -1 : 1))) {
            if (r.state === 'held' && nowMs >= r.expiresAtMs) book.op('expire', id, nowMs);
          }
        };

        for (const step of steps) {
          sweep();
          if (step.kind === 'wait') {
            nowMs += step.ms;
          } else if (step.kind === 'pause') {
            network = network.map((l) => (l.id === step.location ? { ...l, status: step.paused ? 'paused' : 'active' } : l));
            book.network = network;
            model.setLocationStatus(step.location, step.paused ? 'paused' : 'active');
          } else if (step.kind === 'stock') {
            if (!step.snap && step.qty === 0) continue;
            const event = { type: step.snap ? ('snapshot' as const) : ('delta' as const), eventId: `ev${eventSeq++}`, sku: step.sku, location: step.location, qty: step.snap ? Math.abs(step.qty) : step.qty, asOf: nowMs + step.asOfOffsetMs };
            const key = positionKey(event.sku, event.location);
            book.positions.set(key, applyStockEvent(book.positions.get(key) ?? emptyPosition(), event).state);
            model.applyStockEvent(event);
          } else if (step.kind === 'hold') {
            const id = `r${step.id}`;
            const request = validateHoldRequest({ reservationId: id, channel: 'web', lines: step.lines, holdTtlMs: step.holdTtlMs }, { channelExists: () => true, locationExists: () => true });
            const atpBefore = request.lines.map((l) => model.atp(l.sku, l.location, 'web', nowMs));
            const { reservation: core, changed } = book.hold(id, [...request.lines], nowMs, request.holdTtlMs);
            const expected = model.hold(request, nowMs);
            // The model never sweeps: compare what a reader sees.
            expect(effectiveState(core, nowMs)).toBe(model.effectiveState(id, nowMs));
            expect(core.shortfalls ?? []).toEqual(expected.shortfalls);
            // No oversell: every line of a new hold fitted the ATP of that moment.
            if (changed && core.state === 'held') request.lines.forEach((l, i) => expect(l.qty).toBeLessThanOrEqual(atpBefore[i]!));
          } else {
            const id = `r${step.id}`;
            let coreOutcome: string;
            let modelOutcome: string;
            try {
              coreOutcome = book.op(step.op, id, nowMs).reservation.state;
            } catch (e) {
              if (!(e instanceof DomainError)) throw e;
              coreOutcome = e.code;
            }
            try {
              modelOutcome = model.transition(step.op, id, nowMs);
            } catch (e) {
              if (!(e instanceof DomainError)) throw e;
              modelOutcome = e.code;
            }
            expect(coreOutcome).toBe(modelOutcome);
          }

          // A store releases due holds before every read as well.
          sweep();
          for (const sku of skus) {
            for (const loc of locs) {
              const view = book.view(sku, loc);
              expect(view.onHand).toBe(model.onHand(sku, loc));
              expect(view.reserved).toBe(model.reserved(sku, loc, nowMs));
              expect(view.reserved).toBeGreaterThanOrEqual(0);
              expect(positionAtp(view, network.find((l) => l.id === loc), web)).toBe(model.atp(sku, loc, 'web', nowMs));
            }
          }
          for (const [id, r] of book.reservations) expect(effectiveState(r, nowMs)).toBe(model.effectiveState(id, nowMs));
        }
      }),
      { numRuns: 2000 },
    );
  });
});
