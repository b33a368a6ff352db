// The shipped sample: a French network that validates, and a deterministic catalogue of stock with
// a retail shape, on which a first request returns real options (what `npm start` prints to try).

import { describe, expect, it } from 'vitest';
import { positionAtp } from '../../../engine/core/atp.js';
import { availabilityOptions } from '../../../engine/core/sourcing.js';
import type { StockEvent } from '../../../engine/core/types.js';
import type { NetworkConfig } from '../../../engine/network/config.js';
import { sampleNetwork, sampleSku, sampleStockEvents } from '../../../engine/network/sample.js';

const paris = { lat: 48.8566, lon: 2.3522 };
const tuesday10 = Date.parse('2026-11-24T09:00:00Z'); // 10:00 Paris

/** Channel ATP per location from snapshot events, as the store would compute it (nothing reserved). */
function atpOf(network: NetworkConfig, channelId: string, events: StockEvent[]) {
  const channel = network.channels.find((c) => c.id === channelId)!;
  const onHand = new Map(events.map((e) => [`${e.sku}@${e.location}`, e.qty]));
  const byId = new Map(network.locations.map((l) => [l.id, l]));
  return (sku: string, location: string) => {
    const qty = onHand.get(`${sku}@${location}`);
    return qty === undefined ? 0 : positionAtp({ onHand: qty, reserved: 0 }, byId.get(location), channel);
  };
}

describe('sample network', () => {
  it('has 2 DCs and 40 stores in real French cities, 2 channels and 2 carriers, and validates', () => {
    const n = sampleNetwork();
    expect(n.timeZone).toBe('Europe/Paris');
    expect(n.locations.filter((l) => l.type === 'dc').map((l) => l.id)).toEqual(['DC-PARIS', 'DC-LYON']);
    expect(n.locations.filter((l) => l.type === 'store')).toHaveLength(40);
    // Spot checks of coordinates against the cities' centres (to 0.1°).
    const at = (id: string) => n.locations.find((l) => l.id === id)!;
    expect([at('ST-01').city, Math.round(at('ST-01').lat * 10) / 10, Math.round(at('ST-01').lon * 10) / 10]).toEqual(['Paris', 48.9, 2.3]);
    expect([at('ST-28').city, Math.round(at('ST-28').lat * 10) / 10, Math.round(at('ST-28').lon * 10) / 10]).toEqual(['Lille', 50.6, 3.1]);
    expect([at('ST-09').city, Math.round(at('ST-09').lat * 10) / 10, Math.round(at('ST-09').lon * 10) / 10]).toEqual(['Marseille', 43.3, 5.4]);
    const [web, marketplace] = n.channels;
    expect(web!.locations).toHaveLength(42);
    expect(web!.minThreshold).toBeGreaterThan(0);
    expect(Object.keys(web!.bufferByLocationType).sort()).toEqual(['dc', 'store']);
    expect(marketplace!.locations).toEqual(['DC-PARIS', 'DC-LYON']);
    expect(marketplace!.atpCap).toBe(50);
    expect(n.carriers.flatMap((c) => c.services.map((s) => `${c.id}/${s.id}:${s.speed}`))).toEqual(['parcelpost/standard:standard', 'citycourier/express:express', 'citycourier/standard:standard']);
  });

  it('names SKUs with six digits', () => {
    expect([sampleSku(1), sampleSku(42), sampleSku(5_000)]).toEqual(['SKU-000001', 'SKU-000042', 'SKU-005000']);
  });
});

describe('sample stock', () => {
  const network = sampleNetwork();
  const events = sampleStockEvents(network, { skus: 5_000, asOfMs: 1_000 });
  const bySku = new Map<string, StockEvent[]>();
  for (const e of events) bySku.set(e.sku, [...(bySku.get(e.sku) ?? []), e]);

  it('is deterministic per seed, with unique event ids, snapshots only', () => {
    expect(sampleStockEvents(network, { skus: 300, asOfMs: 1_000 })).toEqual(events.filter((e) => Number(e.sku.slice(4)) <= 300));
    expect(sampleStockEvents(network, { skus: 300, seed: 7, asOfMs: 1_000 })).not.toEqual(sampleStockEvents(network, { skus: 300, asOfMs: 1_000 }));
    expect(new Set(events.map((e) => e.eventId)).size).toBe(events.length);
    expect(events.every((e) => e.type === 'snapshot' && e.asOf === 1_000 && Number.isInteger(e.qty) && e.qty > 0)).toBe(true);
    expect(bySku.size).toBe(5_000);
  });

  it('stocks the best sellers everywhere and the long tail in depth at DCs, thinly in stores', () => {
    for (let i = 1; i <= 20; i++) expect(bySku.get(sampleSku(i))!.map((e) => e.location).sort()).toEqual(network.locations.map((l) => l.id).sort());
    const tail = events.filter((e) => Number(e.sku.slice(4)) > 200);
    const tailSkus = 4_800;
    const dcShare = tail.filter((e) => e.location === 'DC-PARIS').length / tailSkus;
    const storeShare = tail.filter((e) => e.location === 'ST-01').length / tailSkus;
    expect(dcShare).toBeGreaterThan(0.8);
    expect(storeShare).toBeGreaterThan(0.1);
    expect(storeShare).toBeLessThan(0.3);
    const qty = (sku: number, location: string) => bySku.get(sampleSku(sku))!.find((e) => e.location === location)?.qty ?? 0;
    expect(qty(1, 'DC-PARIS')).toBeGreaterThan(900);
    expect(Math.max(...tail.filter((e) => e.location.startsWith('ST-')).map((e) => e.qty))).toBeLessThanOrEqual(17);
  });

  it('answers the first curl with pickup, express and standard delivery in Paris', () => {
    const atpAt = atpOf(network, 'web', events);
    const answer = availabilityOptions(network, { channel: 'web', lines: [{ sku: sampleSku(1), qty: 1 }, { sku: sampleSku(2), qty: 2 }], destination: paris, pickup: { near: paris, radiusKm: 30 }, nowMs: tuesday10 }, atpAt);
    const methods = new Set(answer.options.map((o) => o.method));
    expect([...methods].sort()).toEqual(['delivery_express', 'delivery_standard', 'pickup_in_store']);
    // DC-PARIS (29 km) ready 14:00 before its 15:00 cut-off; ParcelPost's 1-day band is cheapest.
    expect(answer.options.find((o) => o.id === 'delivery_standard:DC-PARIS')).toMatchObject({ promiseAt: '2026-11-25T19:00:00.000Z', costCents: 490, shipments: [{ carrier: 'parcelpost', service: 'standard' }] });
    expect(answer.options.find((o) => o.method === 'delivery_express')).toMatchObject({ promiseAt: '2026-11-24T19:00:00.000Z', costCents: 1290 });
    // Paris stores process in 1 or 2 hours: collect by noon.
    const pickup = answer.options.filter((o) => o.method === 'pickup_in_store');
    expect(pickup).toHaveLength(3);
    expect(pickup.every((o) => o.pickup!.distanceKm <= 30 && o.promiseAtMs <= Date.parse('2026-11-24T11:00:00Z'))).toBe(true);
    expect(answer.options[0]!.method).toBe('pickup_in_store');
    expect(answer.lines.every((l) => l.inStock && l.pickupStores.length > 0)).toBe(true);
  });

  it('falls back when DC-PARIS is paused: standard delivery moves to a store, nothing from the DC', () => {
    const paused: NetworkConfig = { ...network, locations: network.locations.map((l) => (l.id === 'DC-PARIS' ? { ...l, status: 'paused' as const } : l)) };
    const atp = atpOf(paused, 'web', events);
    const answer = availabilityOptions(paused, { channel: 'web', lines: [{ sku: sampleSku(1), qty: 1 }, { sku: sampleSku(2), qty: 2 }], destination: paris, nowMs: tuesday10 }, (sku, location) => (location === 'DC-PARIS' ? 0 : atp(sku, location)));
    expect(answer.options.flatMap((o) => o.shipments.map((s) => s.from))).not.toContain('DC-PARIS');
    const standard = answer.options.filter((o) => o.method === 'delivery_standard');
    expect(standard[0]!.shipments[0]!.from).toMatch(/^ST-/);
    expect(standard[0]!.promiseAt).toBe('2026-11-25T19:00:00.000Z');
  });
});
