// Basket sourcing on a small hand-made network around Paris. Every plan, promise and cost below is
// worked out by hand from the rules written at the top of engine/core/sourcing.ts and
// engine/core/promise.ts, never re-derived with the code under test:
// - locations process Mon–Sat from 08:00 local; before the cut-off an order starts at once (at
//   08:00 if it came in the night), after it at 08:00 the next working day;
// - carriers deliver Mon–Sat by 20:00 local, `days` delivery days after the ready day; same-day
//   express needs the parcel ready before 18:00;
// - a transfer arrives before opening on its arrival day: collectable at 08:00 + store processing.
// Europe/Paris is UTC+1 in November and until 29 March 2026 02:00, UTC+2 after.
//
// Distances from central Paris (48.8566, 2.3522), great circle: ST-A 0.6 km, ST-B 2.8 km,
// ST-C 10.6 km, DC-N 28.8 km, DC-S 414 km, ST-M (Marseille) 660 km. DC-N → ST-B 28.7 km,
// DC-N → ST-A 29.4 km, DC-S → ST-B 414 km.

import { describe, expect, it } from 'vitest';
import { DomainError } from '../../../engine/core/errors.js';
import { availabilityOptions, skuAvailability, type AvailabilityQuery, type AvailabilityAnswer } from '../../../engine/core/sourcing.js';
import { parseNetworkConfig, type NetworkConfig } from '../../../engine/network/config.js';

type Caps = { pickup?: boolean; shipFromStore?: boolean; ship?: boolean };
const loc = (id: string, type: 'dc' | 'store', lat: number, lon: number, caps: Caps, processingMinutes: number, cutoffLocal: string) => ({
  id,
  name: `Name of ${id}`,
  type,
  lat,
  lon,
  capabilities: { ship: false, pickup: false, shipFromStore: false, ...caps },
  processingMinutes,
  cutoffLocal,
});

const inChannel = ['DC-N', 'DC-S', 'ST-A', 'ST-B', 'ST-C', 'ST-M'];

function network(paused: string[] = []): NetworkConfig {
  const locations = [
    loc('DC-N', 'dc', 48.633, 2.55, { ship: true }, 240, '14:00'),
    loc('DC-S', 'dc', 45.643, 5.114, { ship: true }, 240, '14:00'),
    loc('ST-A', 'store', 48.8606, 2.347, { pickup: true, shipFromStore: true }, 60, '17:00'),
    loc('ST-B', 'store', 48.8422, 2.3211, { pickup: true }, 60, '17:00'),
    loc('ST-C', 'store', 48.7904, 2.4556, { pickup: true, shipFromStore: true }, 120, '17:00'),
    loc('ST-M', 'store', 43.2965, 5.3698, { pickup: true, shipFromStore: true }, 60, '18:00'),
    // Holds everything but feeds no channel: must never appear.
    loc('X-OUT', 'store', 48.85, 2.35, { pickup: true, shipFromStore: true }, 10, '23:00'),
  ].map((l) => ({ ...l, status: paused.includes(l.id) ? 'paused' : 'active', ...(l.id === 'ST-A' ? { dailyCapacityOrders: 100 } : {}) }));
  const sourcing = { expressMaxKm: 30, pickupRadiusKmDefault: 25, pickupMaxDefault: 3, locationPriority: { dc: 0, store: 2 } };
  return parseNetworkConfig(
    {
      timeZone: 'Europe/Paris',
      locations,
      channels: [
        { id: 'web', locations: inChannel, sourcing },
        { id: 'tight', locations: inChannel, sourcing: { ...sourcing, expressMaxKm: 2 } },
        { id: 'noconsol', locations: inChannel, sourcing: { ...sourcing, shipments: 0 } },
        { id: 'storesFirst', locations: inChannel, sourcing: { ...sourcing, locationPriority: { dc: 2, store: 0 } } },
        { id: 'dcOnly', locations: ['DC-N', 'DC-S'], atpCap: 5, sourcing },
      ],
      carriers: [
        { id: 'post', services: [{ id: 'standard', speed: 'standard', transitDaysByBand: [{ maxKm: 150, days: 1 }, { maxKm: 500, days: 2 }], costCents: 490 }] },
        { id: 'courier', services: [{ id: 'express', speed: 'express', transitDaysByBand: [{ maxKm: 30, days: 0 }], costCents: 1290 }] },
      ],
      transfer: { transitDaysByBand: [{ maxKm: 300, days: 1 }, { maxKm: 1500, days: 2 }] },
    },
    'test',
  );
}

const stock: Record<string, Record<string, number>> = {
  A: { 'DC-N': 10, 'DC-S': 10, 'ST-A': 5, 'ST-B': 2, 'ST-M': 3, 'X-OUT': 99 },
  B: { 'DC-N': 10, 'DC-S': 10, 'ST-B': 4, 'ST-C': 6, 'X-OUT': 99 },
  Q: { 'DC-S': 2, 'X-OUT': 99 },
  P: { 'ST-C': 2, 'X-OUT': 99 },
  // ST-M holds R whole, but no carrier reaches Paris from Marseille (660 km > 500 km).
  R: { 'DC-N': 4, 'DC-S': 4, 'ST-C': 4, 'ST-M': 8, 'X-OUT': 99 },
  S: { 'ST-M': 1, 'X-OUT': 99 },
};

/** As the gateway does: 0 at a paused location (X-OUT's stock is returned on purpose). */
const atpFor =
  (n: NetworkConfig, extra: Record<string, Record<string, number>> = {}) =>
  (sku: string, location: string) =>
    n.locations.find((l) => l.id === location)?.status === 'paused' ? 0 : (extra[sku]?.[location] ?? stock[sku]?.[location] ?? 0);

const paris = { lat: 48.8566, lon: 2.3522 };
const marseille = { lat: 43.2965, lon: 5.3698 };
const utc = (iso: string) => Date.parse(iso);
const tuesday10 = utc('2026-11-24T09:00:00Z'); // Tuesday 24 Nov 2026, 10:00 Paris

const query = (q: Partial<AvailabilityQuery>): AvailabilityQuery => ({ channel: 'web', lines: [{ sku: 'A', qty: 3 }], destination: paris, pickup: { near: paris, radiusKm: 5 }, nowMs: tuesday10, ...q });
const answer = (q: Partial<AvailabilityQuery>, n = network(), extra = {}) => availabilityOptions(n, query(q), atpFor(n, extra));
/** [rank, method, plan, promise, cost] per option; a transfer's plan is "DC>store". */
const summary = (a: AvailabilityAnswer) => a.options.map((o) => [o.rank, o.method, o.shipments.map((s) => s.from + (s.transferTo ? `>${s.transferTo}` : '')).join('+'), o.promiseAt, o.costCents]);

describe('basket options', () => {
  it('ranks pickup, express, transfer and standard delivery by shipments, promise, then cost', () => {
    expect(summary(answer({}))).toEqual([
      // ST-A holds 5 of A: ready at 11:00 Paris.
      [1, 'pickup_in_store', 'ST-A', '2026-11-24T10:00:00.000Z', 0],
      // ST-A is 0.6 km from the address, before its 17:00 cut-off: tonight 20:00 Paris.
      [2, 'delivery_express', 'ST-A', '2026-11-24T19:00:00.000Z', 1290],
      // ST-B holds 2 < 3: DC-N (ready 14:00) transfers it, 28.7 km = 1 day, ready Wed 09:00 Paris.
      [3, 'pickup_after_transfer', 'DC-N>ST-B', '2026-11-25T08:00:00.000Z', 0],
      // DC-N ready 14:00, 28.8 km = 1 day. ST-A promises the same: DC-N wins on location priority.
      [4, 'delivery_standard', 'DC-N', '2026-11-25T19:00:00.000Z', 490],
      // DC-S ready 14:00, 414 km = 2 days: Thursday.
      [5, 'delivery_standard', 'DC-S', '2026-11-26T19:00:00.000Z', 490],
    ]);
  });

  it('gives each option its plan, ready times, carrier and pickup store', () => {
    const options = answer({}).options;
    const byMethod = (m: string) => options.find((o) => o.method === m)!;
    expect(byMethod('pickup_in_store').pickup).toEqual({ location: 'ST-A', name: 'Name of ST-A', distanceKm: 0.6, readyAtMs: utc('2026-11-24T10:00:00Z') });
    expect(byMethod('delivery_express').shipments).toEqual([{ from: 'ST-A', lines: [{ sku: 'A', qty: 3 }], carrier: 'courier', service: 'express', readyAtMs: utc('2026-11-24T10:00:00Z'), deliverAtMs: utc('2026-11-24T19:00:00Z') }]);
    expect(byMethod('pickup_after_transfer').shipments).toEqual([{ from: 'DC-N', transferTo: 'ST-B', lines: [{ sku: 'A', qty: 3 }], readyAtMs: utc('2026-11-24T13:00:00Z'), deliverAtMs: utc('2026-11-25T08:00:00Z') }]);
    expect(byMethod('pickup_after_transfer').pickup).toMatchObject({ location: 'ST-B', distanceKm: 2.8 });
    expect(byMethod('delivery_standard').shipments[0]).toMatchObject({ from: 'DC-N', carrier: 'post', service: 'standard', readyAtMs: utc('2026-11-24T13:00:00Z') });
    expect(options.map((o) => o.id)).toEqual(['pickup_in_store:ST-A', 'delivery_express:ST-A', 'pickup_after_transfer:DC-N>ST-B', 'delivery_standard:DC-N', 'delivery_standard:DC-S']);
  });

  it('reports per-line availability from the channel locations only', () => {
    const a = answer({ lines: [{ sku: 'A', qty: 3 }, { sku: 'B', qty: 5 }, { sku: 'S', qty: 1 }], pickup: { near: paris, radiusKm: 15 } });
    expect(a.lines.map((l) => [l.sku, l.requested, l.atp, l.inStock, l.bestDeliveryAtMs === undefined ? null : new Date(l.bestDeliveryAtMs).toISOString(), l.pickupStores.map((p) => `${p.location}:${p.atp}`)])).toEqual([
      // 10+10+5+2+3 (X-OUT's 99 is not the channel's); DC-N and ST-A deliver Wednesday.
      ['A', 3, 30, true, '2026-11-25T19:00:00.000Z', ['ST-A:5', 'ST-B:2']],
      // ST-C ships B from 12:00: Wednesday too.
      ['B', 5, 30, true, '2026-11-25T19:00:00.000Z', ['ST-B:4', 'ST-C:6']],
      // Only Marseille holds S and no carrier serves 660 km: in stock, not deliverable here.
      ['S', 1, 1, true, null, []],
    ]);
  });

  it('reads the caller ATP exactly once per line and channel location', () => {
    const n = network();
    const calls: string[] = [];
    const atp = atpFor(n);
    availabilityOptions(n, query({ lines: [{ sku: 'A', qty: 1 }, { sku: 'B', qty: 1 }] }), (sku, location) => {
      calls.push(`${sku}@${location}`);
      return atp(sku, location);
    });
    expect(calls).toHaveLength(2 * inChannel.length);
    expect(calls.some((c) => c.endsWith('@X-OUT'))).toBe(false);
  });
});

describe('promise dates through the options', () => {
  it('a night order waits for opening: pickup at 09:00, express tonight', () => {
    // 05:30 Paris: ST-A starts at 08:00, ready 09:00; DC-N starts 08:00, ready 12:00.
    const a = answer({ nowMs: utc('2026-11-24T04:30:00Z') });
    expect(summary(a)).toEqual([
      [1, 'pickup_in_store', 'ST-A', '2026-11-24T08:00:00.000Z', 0],
      [2, 'delivery_express', 'ST-A', '2026-11-24T19:00:00.000Z', 1290],
      [3, 'pickup_after_transfer', 'DC-N>ST-B', '2026-11-25T08:00:00.000Z', 0],
      [4, 'delivery_standard', 'DC-N', '2026-11-25T19:00:00.000Z', 490],
      [5, 'delivery_standard', 'DC-S', '2026-11-26T19:00:00.000Z', 490],
    ]);
    expect(a.options[3]!.shipments[0]!.readyAtMs).toBe(utc('2026-11-24T11:00:00Z'));
  });

  it('an order at 13:59 beats the DC cut-off at 14:00; at 14:01 it ships a day later', () => {
    const b = (nowMs: number) => summary(answer({ lines: [{ sku: 'B', qty: 1 }], methods: ['delivery'], nowMs }));
    // 13:59: DC-N ready 17:59 → Wed; DC-S ready 17:59 → Thu; ST-C (ready 15:59) ties with DC-N.
    expect(b(utc('2026-11-24T12:59:00Z'))).toEqual([
      [1, 'delivery_express', 'ST-C', '2026-11-24T19:00:00.000Z', 1290],
      [2, 'delivery_standard', 'DC-N', '2026-11-25T19:00:00.000Z', 490],
      [3, 'delivery_standard', 'DC-S', '2026-11-26T19:00:00.000Z', 490],
    ]);
    // 14:01: the DCs start Wed 08:00 (ready 12:00) → DC-N Thu, DC-S Fri; ST-C (17:00 cut-off) Wed.
    expect(b(utc('2026-11-24T13:01:00Z'))).toEqual([
      [1, 'delivery_express', 'ST-C', '2026-11-24T19:00:00.000Z', 1290],
      [2, 'delivery_standard', 'ST-C', '2026-11-25T19:00:00.000Z', 490],
      [3, 'delivery_standard', 'DC-N', '2026-11-26T19:00:00.000Z', 490],
      [4, 'delivery_standard', 'DC-S', '2026-11-27T19:00:00.000Z', 490],
    ]);
  });

  it('on a Saturday: pickup and express the same day, parcels on Monday (no Sunday rounds)', () => {
    expect(summary(answer({ nowMs: utc('2026-11-28T09:00:00Z') }))).toEqual([
      [1, 'pickup_in_store', 'ST-A', '2026-11-28T10:00:00.000Z', 0],
      [2, 'delivery_express', 'ST-A', '2026-11-28T19:00:00.000Z', 1290],
      [3, 'pickup_after_transfer', 'DC-N>ST-B', '2026-11-30T08:00:00.000Z', 0],
      [4, 'delivery_standard', 'DC-N', '2026-11-30T19:00:00.000Z', 490],
      // 2 delivery days after Saturday: Monday, Tuesday.
      [5, 'delivery_standard', 'DC-S', '2026-12-01T19:00:00.000Z', 490],
    ]);
  });

  it('on a Sunday nothing is processed: Monday pickup, no express', () => {
    expect(summary(answer({ nowMs: utc('2026-11-29T09:00:00Z') }))).toEqual([
      [1, 'pickup_in_store', 'ST-A', '2026-11-30T08:00:00.000Z', 0],
      [2, 'pickup_after_transfer', 'DC-N>ST-B', '2026-12-01T08:00:00.000Z', 0],
      [3, 'delivery_standard', 'DC-N', '2026-12-01T19:00:00.000Z', 490],
      [4, 'delivery_standard', 'DC-S', '2026-12-02T19:00:00.000Z', 490],
    ]);
  });

  it('across the change to summer time: Saturday evening order, Monday and Tuesday in UTC+2', () => {
    // Saturday 28 March 2026 17:30 Paris (UTC+1) = 16:30Z, after every cut-off. Monday 09:00
    // Paris is then 07:00Z and 20:00 Paris is 18:00Z.
    expect(summary(answer({ nowMs: utc('2026-03-28T16:30:00Z') }))).toEqual([
      [1, 'pickup_in_store', 'ST-A', '2026-03-30T07:00:00.000Z', 0],
      [2, 'pickup_after_transfer', 'DC-N>ST-B', '2026-03-31T07:00:00.000Z', 0],
      [3, 'delivery_standard', 'DC-N', '2026-03-31T18:00:00.000Z', 490],
      [4, 'delivery_standard', 'DC-S', '2026-04-01T18:00:00.000Z', 490],
    ]);
  });
});

describe('express delivery', () => {
  const methods: ('delivery' | 'pickup')[] = ['delivery'];
  const express = (a: AvailabilityAnswer) => a.options.filter((o) => o.method === 'delivery_express').map((o) => [o.shipments[0]!.from, o.promiseAt]);

  it('needs one nearby ship-from-store store holding the whole basket', () => {
    // ST-A lacks B; ST-B holds A and B but does not ship; ST-C lacks A: no express.
    expect(express(answer({ lines: [{ sku: 'A', qty: 1 }, { sku: 'B', qty: 1 }], methods }))).toEqual([]);
    // Give ST-C one A: it ships (10.6 km), ready 12:00 Paris, tonight.
    expect(express(answer({ lines: [{ sku: 'A', qty: 1 }, { sku: 'B', qty: 1 }], methods }, network(), { A: { 'ST-C': 1 } }))).toEqual([['ST-C', '2026-11-24T19:00:00.000Z']]);
  });

  it('only within the channel expressMaxKm of the address', () => {
    expect(express(answer({ channel: 'tight', lines: [{ sku: 'A', qty: 1 }], methods }))).toEqual([['ST-A', '2026-11-24T19:00:00.000Z']]);
    // From ST-B's address ST-A is 2.8 km away, beyond 2 km.
    expect(express(answer({ channel: 'tight', lines: [{ sku: 'A', qty: 1 }], methods, destination: { lat: 48.8422, lon: 2.3211 } }))).toEqual([]);
  });

  it('only before the store cut-off and when ready before the courier last pick-up (18:00)', () => {
    const a1 = [{ sku: 'A', qty: 1 }];
    // 16:59 Paris: ST-A ready 17:59.
    expect(express(answer({ lines: a1, methods, nowMs: utc('2026-11-24T15:59:00Z') }))).toEqual([['ST-A', '2026-11-24T19:00:00.000Z']]);
    // 17:01 Paris: after ST-A's 17:00 cut-off.
    expect(express(answer({ lines: a1, methods, nowMs: utc('2026-11-24T16:01:00Z') }))).toEqual([]);
    // 16:30 Paris: ST-C (2 h processing) would be ready 18:30, after the last pick-up.
    expect(express(answer({ lines: [{ sku: 'B', qty: 1 }], methods, nowMs: utc('2026-11-24T15:30:00Z') }))).toEqual([]);
  });

  it('the nearest store can ship a basket to Marseille even when Paris cannot be served from there', () => {
    expect(summary(answer({ lines: [{ sku: 'S', qty: 1 }], destination: marseille, methods }))).toEqual([
      [1, 'delivery_express', 'ST-M', '2026-11-24T19:00:00.000Z', 1290],
      [2, 'delivery_standard', 'ST-M', '2026-11-25T19:00:00.000Z', 490],
    ]);
    expect(summary(answer({ lines: [{ sku: 'S', qty: 1 }], methods }))).toEqual([]);
  });
});

describe('split baskets', () => {
  const lines = [{ sku: 'Q', qty: 1 }, { sku: 'P', qty: 1 }, { sku: 'R', qty: 8 }];
  const plan = (a: AvailabilityAnswer) => a.options.map((o) => [o.method, o.shipmentCount, o.shipments.map((s) => `${s.from}:${s.lines.map((l) => `${l.sku}${l.qty}`).join(',')}`), o.promiseAt, o.costCents]);

  it('takes a line no location holds whole from locations already shipping, so it adds no shipment', () => {
    // Q only at DC-S, P only at ST-C; R×8 nowhere whole (ST-M is out of reach): DC-S and ST-C
    // each give 4 of R. DC-S takes 2 days (Thu), ST-C 1 (Wed).
    expect(plan(answer({ lines, methods: ['delivery'] }))).toEqual([['delivery_standard', 2, ['DC-S:Q1,R4', 'ST-C:P1,R4'], '2026-11-26T19:00:00.000Z', 980]]);
  });

  it('without consolidation (shipments weight 0) the split line goes to the best-scored locations', () => {
    // DC-N scores best (priority 0, 29 km): it gives 4, DC-S the other 4: a third shipment.
    expect(plan(answer({ channel: 'noconsol', lines, methods: ['delivery'] }))).toEqual([['delivery_standard', 3, ['DC-S:Q1,R4', 'ST-C:P1', 'DC-N:R4'], '2026-11-26T19:00:00.000Z', 1470]]);
  });

  it('prefers one location for the whole basket and never splits a line a location holds', () => {
    expect(plan(answer({ lines: [{ sku: 'P', qty: 1 }, { sku: 'R', qty: 4 }], methods: ['delivery'] }))).toEqual([
      ['delivery_express', 1, ['ST-C:P1,R4'], '2026-11-24T19:00:00.000Z', 1290],
      ['delivery_standard', 1, ['ST-C:P1,R4'], '2026-11-25T19:00:00.000Z', 490],
    ]);
  });

  it('offers no delivery when the reachable network holds too little', () => {
    expect(plan(answer({ lines: [{ sku: 'R', qty: 13 }], methods: ['delivery'] }))).toEqual([]);
  });
});

describe('channel rules and paused locations', () => {
  it('location priority weights choose between plans with the same promise and cost', () => {
    const standard = (channel: string) => answer({ channel, lines: [{ sku: 'A', qty: 1 }], methods: ['delivery'] }).options.filter((o) => o.method === 'delivery_standard').map((o) => o.shipments[0]!.from);
    expect(standard('web')).toEqual(['DC-N', 'DC-S']);
    expect(standard('storesFirst')).toEqual(['ST-A', 'DC-S']);
  });

  it('pausing the DC moves delivery to the store and transfers to the other DC', () => {
    expect(summary(answer({}, network(['DC-N'])))).toEqual([
      [1, 'pickup_in_store', 'ST-A', '2026-11-24T10:00:00.000Z', 0],
      [2, 'delivery_express', 'ST-A', '2026-11-24T19:00:00.000Z', 1290],
      [3, 'delivery_standard', 'ST-A', '2026-11-25T19:00:00.000Z', 490],
      // DC-S → ST-B is 414 km: 2 transfer days, Thursday.
      [4, 'pickup_after_transfer', 'DC-S>ST-B', '2026-11-26T08:00:00.000Z', 0],
      [5, 'delivery_standard', 'DC-S', '2026-11-26T19:00:00.000Z', 490],
    ]);
  });

  it('a paused store offers nothing even when the caller still reports stock there', () => {
    const n = network(['ST-A']);
    const a = availabilityOptions(n, query({}), (sku, location) => stock[sku]?.[location] ?? 0);
    expect(a.options.flatMap((o) => o.shipments.flatMap((s) => [s.from, s.transferTo]))).not.toContain('ST-A');
  });

  it('a location that has taken its daily capacity of orders offers nothing more today', () => {
    const n = network();
    const full = (orders: number) => summary(availabilityOptions(n, query({ ordersTodayAt: (id) => (id === 'ST-A' ? orders : 0) }), atpFor(n)));
    expect(full(99)).toHaveLength(5);
    // ST-A (capacity 100) is full: no pickup or express there; no other store nearby holds 3 of A.
    expect(full(100)).toEqual([
      [1, 'pickup_after_transfer', 'DC-N>ST-B', '2026-11-25T08:00:00.000Z', 0],
      [2, 'delivery_standard', 'DC-N', '2026-11-25T19:00:00.000Z', 490],
      [3, 'delivery_standard', 'DC-S', '2026-11-26T19:00:00.000Z', 490],
    ]);
  });

  it('a DC-only channel with a cap: no store, no pickup, no express, capped ATP', () => {
    const a = answer({ channel: 'dcOnly', lines: [{ sku: 'A', qty: 1 }], pickup: { near: paris } });
    expect(summary(a)).toEqual([
      [1, 'delivery_standard', 'DC-N', '2026-11-25T19:00:00.000Z', 490],
      [2, 'delivery_standard', 'DC-S', '2026-11-26T19:00:00.000Z', 490],
    ]);
    expect(a.lines).toEqual([{ sku: 'A', requested: 1, atp: 5, inStock: true, bestDeliveryAtMs: utc('2026-11-25T19:00:00Z'), pickupStores: [] }]);
  });

  it('an unknown channel is a domain error with its code', () => {
    const n = network();
    let error: unknown;
    try {
      availabilityOptions(n, query({ channel: 'shop' }), atpFor(n));
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(DomainError);
    expect((error as DomainError).code).toBe('unknown_channel');
    expect((error as DomainError).message).toBe('channel "shop" is not configured: known channels are web, tight, noconsol, storesFirst, dcOnly');
  });
});

describe('pickup choices', () => {
  it('keeps to the radius and the maximum, nearest first', () => {
    // Radius 15 km: ST-B (2.8) and ST-C (10.6) hold B, ST-A (0.6) does not.
    const b1 = [{ sku: 'B', qty: 1 }];
    expect(summary(answer({ lines: b1, methods: ['pickup'], pickup: { near: paris, radiusKm: 15 } }))).toEqual([
      [1, 'pickup_in_store', 'ST-B', '2026-11-24T10:00:00.000Z', 0],
      // ST-C: 2 h processing.
      [2, 'pickup_in_store', 'ST-C', '2026-11-24T11:00:00.000Z', 0],
      [3, 'pickup_after_transfer', 'DC-N>ST-A', '2026-11-25T08:00:00.000Z', 0],
    ]);
    expect(summary(answer({ lines: b1, methods: ['pickup'], pickup: { near: paris, radiusKm: 15, max: 1 } }))).toEqual([
      [1, 'pickup_in_store', 'ST-B', '2026-11-24T10:00:00.000Z', 0],
      [2, 'pickup_after_transfer', 'DC-N>ST-A', '2026-11-25T08:00:00.000Z', 0],
    ]);
    // 2 km: only ST-A, which lacks B.
    expect(summary(answer({ lines: b1, methods: ['pickup'], pickup: { near: paris, radiusKm: 2 } }))).toEqual([[1, 'pickup_after_transfer', 'DC-N>ST-A', '2026-11-25T08:00:00.000Z', 0]]);
  });

  it('listed stores are used whatever their distance; stores outside the channel are ignored', () => {
    const a = answer({ lines: [{ sku: 'B', qty: 1 }], methods: ['pickup'], pickup: { near: paris, locations: ['ST-C', 'X-OUT'] } });
    expect(summary(a)).toEqual([[1, 'pickup_in_store', 'ST-C', '2026-11-24T11:00:00.000Z', 0]]);
    expect(a.options[0]!.pickup!.distanceKm).toBe(10.6);
  });

  it('methods choose what is computed', () => {
    const delivery = answer({ methods: ['delivery'] });
    expect(delivery.options.map((o) => o.method)).toEqual(['delivery_express', 'delivery_standard', 'delivery_standard']);
    expect(delivery.lines[0]!.pickupStores).toEqual([]);
    const pickup = answer({ methods: ['pickup'] });
    expect(pickup.options.map((o) => o.method)).toEqual(['pickup_in_store', 'pickup_after_transfer']);
    expect(pickup.lines[0]!.bestDeliveryAtMs).toBeUndefined();
  });
});

describe('PDP availability', () => {
  it('channel ATP, fastest delivery of one unit and nearest pickup stores with stock', () => {
    const n = network();
    const pdp = skuAvailability(n, { channel: 'web', sku: 'B', near: paris, nowMs: tuesday10 }, atpFor(n));
    expect(pdp).toEqual({
      sku: 'B',
      channel: 'web',
      atp: 30,
      inStock: true,
      fastestDeliveryAtMs: utc('2026-11-25T19:00:00Z'),
      pickupStores: [
        { location: 'ST-B', name: 'Name of ST-B', distanceKm: 2.8, atp: 4 },
        { location: 'ST-C', name: 'Name of ST-C', distanceKm: 10.6, atp: 6 },
      ],
    });
    // Without a place, the first band (1 day) from the earliest ready location: Wednesday.
    expect(skuAvailability(n, { channel: 'web', sku: 'S', nowMs: tuesday10 }, atpFor(n))).toEqual({ sku: 'S', channel: 'web', atp: 1, inStock: true, fastestDeliveryAtMs: utc('2026-11-25T19:00:00Z'), pickupStores: [] });
    expect(skuAvailability(n, { channel: 'dcOnly', sku: 'P', nowMs: tuesday10 }, atpFor(n))).toEqual({ sku: 'P', channel: 'dcOnly', atp: 0, inStock: false, pickupStores: [] });
  });
});
