// Sourcing on a small hand-made network, with every expected plan and time worked out by hand:
// option types, ranking, basket splits, paused locations, cut-offs and pickup choices.
// Tuesday 24 Nov 2026, Europe/Paris = UTC+1.

import { describe, expect, it } from 'vitest';
import { availabilityOptions, skuAvailability, type AvailabilityQuery } from '../../engine/core/sourcing.js';
import { parseNetworkConfig, type NetworkConfig } from '../../engine/network/config.js';

const loc = (id: string, type: 'dc' | 'store', lat: number, lon: number, caps: { ship?: boolean; pickup?: boolean; shipFromStore?: boolean }, processingMinutes: number, cutoffLocal: string, status = 'active') => ({
  id,
  name: id,
  type,
  lat,
  lon,
  capabilities: { ship: false, pickup: false, shipFromStore: false, ...caps },
  processingMinutes,
  cutoffLocal,
  status,
});

function network(paused: string[] = []): NetworkConfig {
  const locations = [
    loc('DC-N', 'dc', 48.633, 2.55, { ship: true }, 240, '14:00'),
    loc('DC-S', 'dc', 45.643, 5.114, { ship: true }, 240, '14:00'),
    loc('ST-A', 'store', 48.8606, 2.347, { pickup: true, shipFromStore: true }, 60, '17:00'),
    loc('ST-B', 'store', 48.8422, 2.3211, { pickup: true }, 60, '17:00'),
    loc('ST-L', 'store', 45.7606, 4.859, { pickup: true, shipFromStore: true }, 60, '17:00'),
  ].map((l) => (paused.includes(l.id) ? { ...l, status: 'paused' } : l));
  return parseNetworkConfig(
    {
      timeZone: 'Europe/Paris',
      locations,
      channels: [{ id: 'web', locations: locations.map((l) => l.id), sourcing: { expressMaxKm: 30, pickupRadiusKmDefault: 25, pickupMaxDefault: 3, locationPriority: { dc: 0, store: 2 } } }],
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
  A: { 'DC-N': 10, 'DC-S': 10, 'ST-A': 5, 'ST-L': 5 },
  B: { 'DC-N': 10, 'DC-S': 10, 'ST-A': 1 },
  C: { 'DC-S': 4 },
};
/** What the gateway passes: 0 at paused locations (the channel rules already applied). */
const atpFor = (n: NetworkConfig) => (sku: string, location: string) => (n.locations.find((l) => l.id === location)?.status === 'paused' ? 0 : (stock[sku]?.[location] ?? 0));

const paris = { lat: 48.8566, lon: 2.3522 };
const at = (iso: string) => Date.parse(iso);
const query = (q: Partial<AvailabilityQuery>): AvailabilityQuery => ({ channel: 'web', lines: [{ sku: 'A', qty: 2 }, { sku: 'B', qty: 1 }], destination: paris, pickup: { near: paris }, nowMs: at('2026-11-24T09:00:00Z'), ...q });
const summary = (n: NetworkConfig, q: AvailabilityQuery) =>
  availabilityOptions(n, q, atpFor(n)).options.map((o) => [o.rank, o.method, o.shipments.map((s) => s.from + (s.transferTo ? `>${s.transferTo}` : '')).join('+'), new Date(o.promiseAtMs).toISOString(), o.costCents]);

describe('sourcing', () => {
  it('ranks every option type: fewest shipments, then promise, then cost', () => {
    expect(summary(network(), query({}))).toEqual([
      // ST-A holds the basket: ready 1 h after the 10:00 order.
      [1, 'pickup_in_store', 'ST-A', '2026-11-24T10:00:00.000Z', 0],
      // ST-A is 0.5 km from the address and before its cut-off: delivered tonight by 20:00.
      [2, 'delivery_express', 'ST-A', '2026-11-24T19:00:00.000Z', 1290],
      // ST-B lacks the basket: DC-N (25 km) transfers it overnight, ready at opening + 1 h.
      [3, 'pickup_after_transfer', 'DC-N>ST-B', '2026-11-25T08:00:00.000Z', 0],
      // DC-N ready 14:00, 1-day band; ST-A would promise the same, DC-N goes first by priority.
      [4, 'delivery_standard', 'DC-N', '2026-11-25T19:00:00.000Z', 490],
      // DC-S is ~390 km away: the 2-day band.
      [5, 'delivery_standard', 'DC-S', '2026-11-26T19:00:00.000Z', 490],
    ]);
  });

  it('reports per-line availability: channel ATP, best delivery, pickup stores with stock', () => {
    const n = network();
    const answer = availabilityOptions(n, query({}), atpFor(n));
    expect(answer.lines.map((l) => [l.sku, l.requested, l.atp, l.inStock, l.bestDeliveryAtMs && new Date(l.bestDeliveryAtMs).toISOString(), l.pickupStores.map((p) => [p.location, p.atp])])).toEqual([
      ['A', 2, 30, true, '2026-11-25T19:00:00.000Z', [['ST-A', 5]]],
      ['B', 1, 21, true, '2026-11-25T19:00:00.000Z', [['ST-A', 1]]],
    ]);
  });

  it('splits a basket no single location holds into the fewest shipments', () => {
    expect(summary(network(), query({ lines: [{ sku: 'A', qty: 1 }, { sku: 'C', qty: 2 }], pickup: undefined }))).toEqual([[1, 'delivery_standard', 'DC-S', '2026-11-26T19:00:00.000Z', 490]]);
    // 12 of A fit nowhere whole: A is split (DC-N first by priority), C rides with DC-S's part.
    expect(summary(network(), query({ lines: [{ sku: 'A', qty: 12 }, { sku: 'C', qty: 2 }], pickup: undefined }))).toEqual([[1, 'delivery_standard', 'DC-S+DC-N', '2026-11-26T19:00:00.000Z', 980]]);
    // More than the whole network holds: no delivery option at all.
    expect(summary(network(), query({ lines: [{ sku: 'A', qty: 31 }], pickup: undefined }))).toEqual([]);
    const n = network();
    const split = availabilityOptions(n, query({ lines: [{ sku: 'B', qty: 12 }, { sku: 'C', qty: 1 }], pickup: undefined }), atpFor(n)).options;
    expect(split).toHaveLength(1);
    expect(split[0]!.shipmentCount).toBe(2);
    expect(split[0]!.shipments.map((s) => [s.from, s.lines])).toEqual([
      // C only at DC-S; B split nearest first: DC-N gives its 10, DC-S the other 2.
      ['DC-S', [{ sku: 'C', qty: 1 }, { sku: 'B', qty: 2 }]],
      ['DC-N', [{ sku: 'B', qty: 10 }]],
    ]);
    expect(split[0]!.costCents).toBe(980);
  });

  it('never uses a paused location: options fall back to the others', () => {
    const n = network(['DC-N']);
    const options = summary(n, query({}));
    expect(options.flatMap((o) => String(o[2]).split(/[+>]/))).not.toContain('DC-N');
    expect(options).toContainEqual([expect.any(Number), 'pickup_after_transfer', 'DC-S>ST-B', '2026-11-26T08:00:00.000Z', 0]);
    expect(options).toContainEqual([expect.any(Number), 'delivery_standard', 'ST-A', '2026-11-25T19:00:00.000Z', 490]);
  });

  it('moves promises past the cut-off and offers no express when the store cannot ship today', () => {
    // 17:30 Paris: after ST-A's 17:00 and the DCs' 14:00 cut-offs.
    const late = summary(network(), query({ nowMs: at('2026-11-24T16:30:00Z') }));
    expect(late.map((o) => o[1])).not.toContain('delivery_express');
    expect(late).toContainEqual([expect.any(Number), 'pickup_in_store', 'ST-A', '2026-11-25T08:00:00.000Z', 0]);
    expect(late).toContainEqual([expect.any(Number), 'delivery_standard', 'DC-N', '2026-11-26T19:00:00.000Z', 490]);
  });

  it('honours the pickup radius, maximum and listed stores', () => {
    const far = { lat: 43.3, lon: 5.37 }; // Marseille: no store within 25 km
    expect(summary(network(), query({ methods: ['pickup'], pickup: { near: far } }))).toEqual([]);
    const listed = summary(network(), query({ methods: ['pickup'], pickup: { locations: ['ST-L'] } }));
    // ST-L holds A but not B: DC-S, 20 km away, transfers overnight.
    expect(listed).toEqual([[1, 'pickup_after_transfer', 'DC-S>ST-L', '2026-11-25T08:00:00.000Z', 0]]);
    expect(summary(network(), query({ methods: ['pickup'], pickup: { near: paris, max: 1 } })).map((o) => o[2])).toEqual(['ST-A', 'DC-N>ST-B']);
  });

  it('answers PDP availability: channel ATP, fastest delivery, nearest pickup stores', () => {
    const n = network();
    const pdp = skuAvailability(n, { channel: 'web', sku: 'A', near: paris, nowMs: at('2026-11-24T09:00:00Z') }, atpFor(n));
    expect(pdp).toMatchObject({ sku: 'A', atp: 30, inStock: true, fastestDeliveryAtMs: at('2026-11-25T19:00:00Z') });
    expect(pdp.pickupStores.map((s) => s.location)).toEqual(['ST-A']);
    expect(() => skuAvailability(n, { channel: 'nope', sku: 'A', nowMs: 0 }, atpFor(n))).toThrow(/channel "nope" is not configured/);
  });
});
