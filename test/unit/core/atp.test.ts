import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { atpUnderRule, bufferUnits, channelAtp, compiledAtp, compileRule, lineRule, positionAtp } from '../../../engine/core/atp.js';
import { InvariantError } from '../../../engine/core/errors.js';
import { ReferenceModel } from '../../../engine/core/reference-model.js';
import type { Channel, Location } from '../../../engine/core/types.js';
import { channel, dc, location, locations, lookup, snapshot, storeA, storeB, supplier, t0Ms } from './network.js';

const at = (onHand: number, reserved = 0) => ({ onHand, reserved });

describe('ATP of one position', () => {
  it('is on-hand minus reserved when the channel has no buffer', () => {
    expect(positionAtp(at(10, 3), dc, channel())).toBe(7);
  });

  it('is 0 at a paused location, whatever its stock', () => {
    expect(positionAtp(at(100), { ...dc, status: 'paused' }, channel())).toBe(0);
  });

  it('is 0 at a location the channel does not sell from, and at an unknown location', () => {
    expect(positionAtp(at(100), supplier, channel())).toBe(0);
    expect(positionAtp(at(100), undefined, channel())).toBe(0);
  });

  it('is 0 where no stock was ever reported', () => {
    expect(positionAtp(undefined, dc, channel())).toBe(0);
  });

  it('never goes below 0 when reservations or a negative on-hand exceed the stock', () => {
    expect(positionAtp(at(5, 8), dc, channel())).toBe(0);
    expect(positionAtp(at(-4), dc, channel())).toBe(0);
  });

  it('holds back the buffer in units of the location type', () => {
    const web = channel({ bufferByLocationType: { store: { units: 2, percent: 0 } } });
    expect(positionAtp(at(10), storeA, web)).toBe(8);
    expect(positionAtp(at(10), dc, web)).toBe(10);
  });

  it('rounds the percent buffer up: 10% of 33 holds back 4 units', () => {
    const web = channel({ bufferByLocationType: { dc: { units: 0, percent: 10 } } });
    expect(positionAtp(at(33), dc, web)).toBe(29);
    expect(positionAtp(at(30), dc, web)).toBe(27);
  });

  it('adds units and percent buffers', () => {
    const web = channel({ bufferByLocationType: { dc: { units: 5, percent: 20 } } });
    expect(positionAtp(at(100, 10), dc, web)).toBe(100 - 10 - 5 - 20);
  });

  it('computes percent buffers exactly, without float residue rounding up a whole number', () => {
    // 0.07 × 10000 / 100 is 7.000000000000001 in floating point: a naive ceil gives 8.
    expect(bufferUnits({ units: 0, percent: 0.07 }, 10_000)).toBe(7);
    expect(bufferUnits({ units: 0, percent: 12.5 }, 8)).toBe(1);
    expect(bufferUnits({ units: 0, percent: 12.5 }, 9)).toBe(2);
  });

  it('takes no percent buffer from a negative on-hand', () => {
    expect(bufferUnits({ units: 1, percent: 50 }, -10)).toBe(1);
  });

  it('shows 0 below the channel threshold and the ATP itself at the threshold', () => {
    const web = channel({ minThreshold: 3 });
    expect(positionAtp(at(2), storeA, web)).toBe(0);
    expect(positionAtp(at(3), storeA, web)).toBe(3);
  });

  it('applies the threshold after the buffer', () => {
    const web = channel({ minThreshold: 3, bufferByLocationType: { store: { units: 2, percent: 0 } } });
    expect(positionAtp(at(4), storeA, web)).toBe(0);
    expect(positionAtp(at(5), storeA, web)).toBe(3);
  });

  it('is capped by the channel cap', () => {
    expect(positionAtp(at(100), dc, channel({ atpCap: 20 }))).toBe(20);
  });

  it('rejects a buffer rule outside 0..100 percent as a configuration bug', () => {
    expect(() => bufferUnits({ units: 0, percent: 120 }, 10)).toThrow(InvariantError);
  });

  it('resolves to the line rule a store script checks, with the same result', () => {
    const web = channel({ minThreshold: 2, bufferByLocationType: { store: { units: 1, percent: 10 } } });
    expect(lineRule(storeA, web)).toEqual({ sellable: true, bufferUnits: 1, bufferPercent: 10, minThreshold: 2 });
    expect(lineRule({ ...storeA, status: 'paused' }, web).sellable).toBe(false);
    expect(atpUnderRule(at(20, 3), lineRule(storeA, web))).toBe(positionAtp(at(20, 3), storeA, web));
  });
});

describe('channel ATP', () => {
  const byLocation = new Map([
    ['dc-1', at(10)],
    ['store-a', at(5, 1)],
    ['store-b', at(2)],
    ['dsv-1', at(1000)],
  ]);
  const positionAt = (id: string) => byLocation.get(id);
  const locationOf = lookup(locations);

  it("is the sum over the channel's locations only", () => {
    expect(channelAtp(channel(), locationOf, positionAt)).toBe(10 + 4 + 2);
  });

  it('drops a paused location from the sum', () => {
    expect(channelAtp(channel(), lookup([dc, { ...storeA, status: 'paused' }, storeB]), positionAt)).toBe(12);
  });

  it('counts a location listed twice once', () => {
    expect(channelAtp(channel({ locations: ['dc-1', 'dc-1'] }), locationOf, positionAt)).toBe(10);
  });

  it('is capped in total', () => {
    expect(channelAtp(channel({ atpCap: 12 }), locationOf, positionAt)).toBe(12);
  });
});

describe('ATP: properties', () => {
  const percent = fc.integer({ min: 0, max: 10_000 }).map((bp) => bp / 100);
  const ruleArb = fc.record({ units: fc.integer({ min: 0, max: 20 }), percent });
  const channelArb = fc.record({
    buffer: ruleArb,
    minThreshold: fc.integer({ min: 0, max: 10 }),
    atpCap: fc.option(fc.integer({ min: 0, max: 200 }), { nil: undefined }),
  });

  it('is never negative, never above on-hand minus reserved, and agrees with the reference model', () => {
    fc.assert(
      fc.property(channelArb, fc.integer({ min: 0, max: 500 }), fc.integer({ min: -50, max: 50 }), fc.integer({ min: 0, max: 300 }), fc.boolean(), (c, snapQty, adjust, reserved, paused) => {
        const store: Location = location('s', 'store', { status: paused ? 'paused' : 'active' });
        const web: Channel = { id: 'web', locations: ['s'], bufferByLocationType: { store: c.buffer }, minThreshold: c.minThreshold, atpCap: c.atpCap };
        const model = new ReferenceModel({ locations: [store], channels: [web] });
        model.applyStockEvent(snapshot('s1', snapQty, t0Ms, 'k', 's'));
        if (adjust !== 0) model.applyStockEvent({ type: 'delta', eventId: 'd1', sku: 'k', location: 's', qty: adjust, asOf: t0Ms + 1 });
        const onHand = snapQty + adjust;
        const atp = positionAtp(at(onHand, reserved), store, web);
        expect(atp).toBeGreaterThanOrEqual(0);
        expect(atp).toBeLessThanOrEqual(Math.max(0, onHand - reserved));
        // The model derives reserved from its reservations (compared in reservation.test.ts): none here.
        expect(positionAtp(at(onHand, 0), store, web)).toBe(model.atp('k', 's', 'web', t0Ms));
      }),
      { numRuns: 3000 },
    );
  });

  it('never falls when on-hand rises, and never rises when reserved rises', () => {
    fc.assert(
      fc.property(channelArb, fc.integer({ min: -20, max: 500 }), fc.integer({ min: 0, max: 100 }), (c, onHand, reserved) => {
        const web: Channel = { id: 'web', locations: ['dc-1'], bufferByLocationType: { dc: c.buffer }, minThreshold: c.minThreshold, atpCap: c.atpCap };
        expect(positionAtp(at(onHand + 1, reserved), dc, web)).toBeGreaterThanOrEqual(positionAtp(at(onHand, reserved), dc, web));
        expect(positionAtp(at(onHand, reserved + 1), dc, web)).toBeLessThanOrEqual(positionAtp(at(onHand, reserved), dc, web));
      }),
      { numRuns: 3000 },
    );
  });

  it('gives the same ATP from a compiled rule as from the rule (the availability hot path), capped', () => {
    fc.assert(
      fc.property(channelArb, fc.boolean(), fc.integer({ min: -50, max: 100_000 }), fc.integer({ min: 0, max: 300 }), (c, paused, onHand, reserved) => {
        const store: Location = location('s', 'store', { status: paused ? 'paused' : 'active' });
        const web: Channel = { id: 'web', locations: ['s'], bufferByLocationType: { store: c.buffer }, minThreshold: c.minThreshold, atpCap: c.atpCap };
        const rule = lineRule(store, web);
        const cap = c.atpCap ?? Number.MAX_SAFE_INTEGER;
        const compiled = compileRule(rule, cap);
        expect(compiled === undefined).toBe(paused);
        expect(compiled === undefined ? 0 : compiledAtp(onHand, reserved, compiled)).toBe(Math.min(atpUnderRule(at(onHand, reserved), rule), cap));
        expect(compiled === undefined ? 0 : compiledAtp(onHand, reserved, compiled)).toBe(positionAtp(at(onHand, reserved), store, web));
      }),
      { numRuns: 3000 },
    );
    const rule = compileRule(lineRule(location('s', 'store'), { id: 'web', locations: ['s'], bufferByLocationType: {}, minThreshold: 0 }), 10)!;
    expect(() => compiledAtp(5, -1, rule)).toThrow(InvariantError);
  });
});
