// Sourcing: turns a basket, the network and live ATP into ranked delivery and pickup options, each
// with its plan (which location serves which lines), promise date and cost. Pure: the caller reads
// ATP from the store (`atpAt`, channel rules already applied) and passes the time.
//
// Options (DESIGN.md, "HTTP API"):
// - delivery_standard: ship-capable locations (DCs, ship-from-store stores). One location for the
//   whole basket when one can; otherwise a greedy split that minimises shipments. Up to
//   `standardPlansMax` plans.
// - delivery_express: a ship-from-store store within the channel's expressMaxKm of the destination
//   holds the whole basket and can have it ready before the same-day courier's last pick-up.
// - pickup_in_store: pickup stores near the shopper (or listed) holding every line.
// - pickup_after_transfer: the basket goes from a DC to a pickup store that does not hold it.
// Ranked by fewest shipments, then promise, then cost (the order a shopper weighs them).
// Paused locations and locations outside the channel are never used (ATP is 0 there, and they are
// filtered out again here so a zero-quantity plan cannot name them).

import { DomainError } from './errors.js';
import type { LocationType } from './types.js';
import type { Carrier, CarrierService, NetworkChannel, NetworkConfig, NetworkLocation } from '../network/config.js';
import { arrivalReadyAtMs, bandDays, deliveredAtMs, haversineKm, localParts, readyAtMs } from './promise.js';

export type DeliveryMethod = 'delivery_standard' | 'delivery_express' | 'pickup_in_store' | 'pickup_after_transfer';

export interface GeoPoint {
  lat: number;
  lon: number;
}

export interface AvailabilityQuery {
  channel: string;
  lines: { sku: string; qty: number }[];
  destination?: GeoPoint;
  pickup?: { near?: GeoPoint; radiusKm?: number; max?: number; locations?: string[] };
  methods?: ('delivery' | 'pickup')[];
  nowMs: number;
}

/** ATP of sku at a location in the query's channel; 0 when paused, not in the channel, below threshold. */
export type AtpAt = (sku: string, locationId: string) => number;

export interface Shipment {
  from: string;
  lines: { sku: string; qty: number }[];
  carrier?: string;
  service?: string;
  transferTo?: string;
  readyAtMs: number;
  deliverAtMs: number;
}

export interface AvailabilityOption {
  id: string;
  rank: number;
  method: DeliveryMethod;
  shipmentCount: number;
  shipments: Shipment[];
  promiseAtMs: number;
  promiseAt: string;
  costCents: number;
  pickup?: { location: string; name: string; distanceKm: number; readyAtMs: number };
}

export interface PickupStore {
  location: string;
  name: string;
  distanceKm: number;
  atp: number;
}

export interface LineAvailability {
  sku: string;
  requested: number;
  atp: number;
  inStock: boolean;
  bestDeliveryAtMs?: number;
  pickupStores: PickupStore[];
}

export interface AvailabilityAnswer {
  channel: string;
  options: AvailabilityOption[];
  lines: LineAvailability[];
}

export interface SkuAvailability {
  sku: string;
  channel: string;
  atp: number;
  inStock: boolean;
  fastestDeliveryAtMs?: number;
  pickupStores: PickupStore[];
}

/** Standard delivery plans offered at most (the best single-location ones and one split). */
export const standardPlansMax = 3;
/** Shipments one plan may have: past it the basket is not offered for delivery (split it). */
export const shipmentsMax = 6;
/** Pickup stores examined at most per request: bounds the work whatever the radius. */
export const pickupCandidatesMax = 50;
/** Pickup stores listed per line. */
export const pickupStoresPerLineMax = 5;

interface ChannelIndex {
  channel: NetworkChannel;
  /** Active ship-capable locations of the channel. */
  shippers: NetworkLocation[];
  /** Active pickup stores of the channel. */
  pickupStores: NetworkLocation[];
  /** Active DCs (and 3PLs) that ship, for transfers to stores. */
  transferSources: NetworkLocation[];
  standard: { carrier: Carrier; service: CarrierService }[];
  express: { carrier: Carrier; service: CarrierService }[];
}

// Per network object: reloads and pauses build a new NetworkConfig, so the cache follows them.
const indexes = new WeakMap<NetworkConfig, Map<string, ChannelIndex>>();

function channelIndex(network: NetworkConfig, channelId: string): ChannelIndex {
  let byChannel = indexes.get(network);
  if (!byChannel) {
    byChannel = new Map();
    indexes.set(network, byChannel);
  }
  let index = byChannel.get(channelId);
  if (index) return index;
  const channel = network.channels.find((c) => c.id === channelId);
  if (!channel) throw new DomainError('unknown_channel', `channel ${JSON.stringify(channelId)} is not configured: known channels are ${network.channels.map((c) => c.id).join(', ')}`);
  const inChannel = new Set(channel.locations);
  const active = network.locations.filter((l) => l.status === 'active' && inChannel.has(l.id));
  const services = network.carriers.flatMap((carrier) => carrier.services.map((service) => ({ carrier, service })));
  index = {
    channel,
    shippers: active.filter((l) => (l.type === 'store' ? l.capabilities.shipFromStore : l.capabilities.ship)),
    pickupStores: active.filter((l) => l.type === 'store' && l.capabilities.pickup),
    transferSources: active.filter((l) => l.type !== 'store' && l.capabilities.ship),
    standard: services.filter((s) => s.service.speed === 'standard'),
    express: services.filter((s) => s.service.speed === 'express'),
  };
  byChannel.set(channelId, index);
  return index;
}

function priority(channel: NetworkChannel, type: LocationType): number {
  return channel.sourcing.locationPriority[type] ?? 9;
}

/** The cheapest service (then fastest) that serves the distance; undefined when none does. */
function cheapestService(services: { carrier: Carrier; service: CarrierService }[], km: number): { carrier: Carrier; service: CarrierService; days: number } | undefined {
  let best: { carrier: Carrier; service: CarrierService; days: number } | undefined;
  for (const s of services) {
    const days = bandDays(s.service.transitDaysByBand, km);
    if (days === undefined) continue;
    if (!best || s.service.costCents < best.service.costCents || (s.service.costCents === best.service.costCents && days < best.days)) best = { carrier: s.carrier, service: s.service, days };
  }
  return best;
}

/** Per request: where a location's parcel to the destination is ready and delivered, by location id. */
type ShipTimes = Map<string, { carrier: string; service: string; readyAtMs: number; deliverAtMs: number } | null>;

function shipTimes(network: NetworkConfig, index: ChannelIndex, location: NetworkLocation, destination: GeoPoint, nowMs: number, times: ShipTimes) {
  let t = times.get(location.id);
  if (t === undefined) {
    const km = haversineKm(location, destination);
    const service = cheapestService(index.standard, km);
    if (!service) t = null;
    else {
      const ready = readyAtMs(location, nowMs, network.timeZone);
      t = { carrier: service.carrier.id, service: service.service.id, readyAtMs: ready, deliverAtMs: deliveredAtMs(ready, service.days, location.timeZone ?? network.timeZone) };
    }
    times.set(location.id, t);
  }
  return t;
}

function shipFrom(network: NetworkConfig, index: ChannelIndex, location: NetworkLocation, lines: { sku: string; qty: number }[], destination: GeoPoint, nowMs: number, times: ShipTimes): Shipment | undefined {
  const t = shipTimes(network, index, location, destination, nowMs, times);
  return t ? { from: location.id, lines, carrier: t.carrier, service: t.service, readyAtMs: t.readyAtMs, deliverAtMs: t.deliverAtMs } : undefined;
}

function costOf(index: ChannelIndex, shipment: Shipment): number {
  for (const s of [...index.standard, ...index.express]) if (s.carrier.id === shipment.carrier && s.service.id === shipment.service) return s.service.costCents;
  return 0;
}

function holdsAll(lines: { sku: string; qty: number }[], locationId: string, atpAt: AtpAt): boolean {
  for (const line of lines) if (atpAt(line.sku, locationId) < line.qty) return false;
  return true;
}

/**
 * Greedy split over ship-capable locations: each step takes the location that serves the most
 * remaining lines whole (ties: priority, then distance); a line no single location can serve is
 * split over locations in the same order. Greedy set cover is within a log factor of the fewest
 * shipments and runs in lines × locations; baskets are small, so it is exact in practice.
 */
function splitPlan(index: ChannelIndex, lines: { sku: string; qty: number }[], destination: GeoPoint, atpAt: AtpAt): Map<string, { sku: string; qty: number }[]> | undefined {
  const candidates = index.shippers.map((l) => ({ l, km: haversineKm(l, destination), p: priority(index.channel, l.type) }));
  const order = (a: (typeof candidates)[number], b: (typeof candidates)[number]) => a.p - b.p || a.km - b.km;
  candidates.sort(order);
  const plan = new Map<string, { sku: string; qty: number }[]>();
  let remaining = [...lines];
  while (remaining.length > 0) {
    let best: (typeof candidates)[number] | undefined;
    let bestServed: { sku: string; qty: number }[] = [];
    for (const c of candidates) {
      const served = remaining.filter((line) => atpAt(line.sku, c.l.id) >= line.qty);
      if (served.length > bestServed.length) {
        best = c;
        bestServed = served;
      }
    }
    if (!best) break;
    plan.set(best.l.id, [...(plan.get(best.l.id) ?? []), ...bestServed]);
    const servedSkus = new Set(bestServed.map((l) => l.sku));
    remaining = remaining.filter((l) => !servedSkus.has(l.sku));
  }
  for (const line of remaining) {
    let left = line.qty;
    for (const c of candidates) {
      const take = Math.min(left, atpAt(line.sku, c.l.id));
      if (take <= 0) continue;
      plan.set(c.l.id, [...(plan.get(c.l.id) ?? []), { sku: line.sku, qty: take }]);
      left -= take;
      if (left === 0) break;
    }
    if (left > 0) return undefined;
  }
  return plan;
}

function nearestPickupStores(index: ChannelIndex, query: AvailabilityQuery): { l: NetworkLocation; km: number }[] {
  const pickup = query.pickup;
  if (!pickup) return [];
  if (pickup.locations) {
    const wanted = new Set(pickup.locations);
    const origin = pickup.near ?? query.destination;
    return index.pickupStores.filter((l) => wanted.has(l.id)).map((l) => ({ l, km: origin ? haversineKm(l, origin) : 0 })).sort((a, b) => a.km - b.km).slice(0, pickupCandidatesMax);
  }
  if (!pickup.near) return [];
  const radius = pickup.radiusKm ?? index.channel.sourcing.pickupRadiusKmDefault;
  const near = pickup.near;
  return index.pickupStores
    .map((l) => ({ l, km: haversineKm(l, near) }))
    .filter((c) => c.km <= radius)
    .sort((a, b) => a.km - b.km)
    .slice(0, pickupCandidatesMax);
}

const round1 = (km: number) => Math.round(km * 10) / 10;

export function availabilityOptions(network: NetworkConfig, query: AvailabilityQuery, atpAt: AtpAt): AvailabilityAnswer {
  const index = channelIndex(network, query.channel);
  const methods = query.methods ?? ['delivery', 'pickup'];
  const lines = query.lines;
  const options: Omit<AvailabilityOption, 'rank' | 'promiseAt'>[] = [];
  const tz = network.timeZone;
  const times: ShipTimes = new Map();

  if (methods.includes('delivery') && query.destination) {
    const destination = query.destination;
    // Single-location plans, best first by promise then cost then priority.
    const singles: { shipment: Shipment; cost: number; p: number }[] = [];
    for (const l of index.shippers) {
      if (!holdsAll(lines, l.id, atpAt)) continue;
      const shipment = shipFrom(network, index, l, lines.map((x) => ({ ...x })), destination, query.nowMs, times);
      if (shipment) singles.push({ shipment, cost: costOf(index, shipment), p: priority(index.channel, l.type) });
    }
    singles.sort((a, b) => a.shipment.deliverAtMs - b.shipment.deliverAtMs || a.cost - b.cost || a.p - b.p);
    const seenPromise = new Set<number>();
    for (const s of singles) {
      // Plans with the same promise and a higher cost add nothing for the shopper.
      if (seenPromise.has(s.shipment.deliverAtMs)) continue;
      seenPromise.add(s.shipment.deliverAtMs);
      options.push({ id: `delivery_standard:${s.shipment.from}`, method: 'delivery_standard', shipmentCount: 1, shipments: [s.shipment], promiseAtMs: s.shipment.deliverAtMs, costCents: s.cost });
      if (options.length >= standardPlansMax) break;
    }
    if (singles.length === 0) {
      const plan = splitPlan(index, lines, destination, atpAt);
      if (plan && plan.size <= shipmentsMax) {
        const shipments: Shipment[] = [];
        for (const [from, planLines] of plan) {
          const s = shipFrom(network, index, index.shippers.find((l) => l.id === from)!, planLines, destination, query.nowMs, times);
          if (!s) {
            shipments.length = 0;
            break;
          }
          shipments.push(s);
        }
        if (shipments.length === plan.size) {
          options.push({
            id: `delivery_standard:${shipments.map((s) => s.from).join('+')}`,
            method: 'delivery_standard',
            shipmentCount: shipments.length,
            shipments,
            promiseAtMs: Math.max(...shipments.map((s) => s.deliverAtMs)),
            costCents: shipments.reduce((n, s) => n + costOf(index, s), 0),
          });
        }
      }
    }

    // Express: the nearest ship-from-store store close enough, holding everything, ready in time.
    const maxKm = index.channel.sourcing.expressMaxKm;
    const nearby = index.shippers
      .filter((l) => l.type === 'store')
      .map((l) => ({ l, km: haversineKm(l, destination) }))
      .filter((c) => c.km <= maxKm)
      .sort((a, b) => a.km - b.km);
    for (const { l, km } of nearby) {
      if (!holdsAll(lines, l.id, atpAt)) continue;
      const service = cheapestService(index.express, km);
      if (!service || service.days !== 0) continue;
      const ready = readyAtMs(l, query.nowMs, tz);
      const deliverAt = deliveredAtMs(ready, 0, l.timeZone ?? tz);
      // Express means today: processing starts now (before the store's cut-off) and the parcel is
      // ready before the courier's last pick-up, so it is delivered the same local day.
      if (ready - query.nowMs !== l.processingMinutes * 60_000) continue;
      if (localParts(ready, l.timeZone ?? tz).day !== localParts(deliverAt, l.timeZone ?? tz).day) continue;
      const shipment: Shipment = { from: l.id, lines: lines.map((x) => ({ ...x })), carrier: service.carrier.id, service: service.service.id, readyAtMs: ready, deliverAtMs: deliverAt };
      options.push({ id: `delivery_express:${l.id}`, method: 'delivery_express', shipmentCount: 1, shipments: [shipment], promiseAtMs: deliverAt, costCents: service.service.costCents });
      break;
    }
  }

  const pickupCandidates = methods.includes('pickup') ? nearestPickupStores(index, query) : [];
  if (pickupCandidates.length > 0) {
    const max = query.pickup?.max ?? index.channel.sourcing.pickupMaxDefault;
    let inStore = 0;
    const without: { l: NetworkLocation; km: number }[] = [];
    for (const c of pickupCandidates) {
      if (holdsAll(lines, c.l.id, atpAt)) {
        if (inStore >= max) continue;
        inStore++;
        const ready = readyAtMs(c.l, query.nowMs, tz);
        options.push({
          id: `pickup_in_store:${c.l.id}`,
          method: 'pickup_in_store',
          shipmentCount: 1,
          shipments: [{ from: c.l.id, lines: lines.map((x) => ({ ...x })), readyAtMs: ready, deliverAtMs: ready }],
          promiseAtMs: ready,
          costCents: 0,
          pickup: { location: c.l.id, name: c.l.name, distanceKm: round1(c.km), readyAtMs: ready },
        });
      } else if (without.length < max) {
        without.push(c);
      }
    }
    // Pickup after transfer: for the nearest stores that cannot serve from their shelves, the DC
    // holding everything that gets it there first.
    for (const c of without) {
      let best: Shipment | undefined;
      for (const dc of index.transferSources) {
        if (!holdsAll(lines, dc.id, atpAt)) continue;
        const days = bandDays(network.transfer.transitDaysByBand, haversineKm(dc, c.l));
        if (days === undefined) continue;
        const ready = readyAtMs(dc, query.nowMs, tz);
        const arrival = deliveredAtMs(ready, Math.max(1, days), c.l.timeZone ?? tz);
        const collectable = arrivalReadyAtMs(arrival, c.l.processingMinutes, c.l.timeZone ?? tz);
        if (!best || collectable < best.deliverAtMs) best = { from: dc.id, transferTo: c.l.id, lines: lines.map((x) => ({ ...x })), readyAtMs: ready, deliverAtMs: collectable };
      }
      if (!best) continue;
      options.push({
        id: `pickup_after_transfer:${best.from}>${c.l.id}`,
        method: 'pickup_after_transfer',
        shipmentCount: 1,
        shipments: [best],
        promiseAtMs: best.deliverAtMs,
        costCents: 0,
        pickup: { location: c.l.id, name: c.l.name, distanceKm: round1(c.km), readyAtMs: best.deliverAtMs },
      });
    }
  }

  options.sort((a, b) => a.shipmentCount - b.shipmentCount || a.promiseAtMs - b.promiseAtMs || a.costCents - b.costCents || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  const ranked: AvailabilityOption[] = options.map((o, i) => ({ ...o, rank: i + 1, promiseAt: new Date(o.promiseAtMs).toISOString() }));

  const lineAnswers: LineAvailability[] = lines.map((line) => {
    let atp = 0;
    for (const id of index.channel.locations) atp += atpAt(line.sku, id);
    if (index.channel.atpCap !== undefined) atp = Math.min(atp, index.channel.atpCap);
    const answer: LineAvailability = { sku: line.sku, requested: line.qty, atp, inStock: atp >= line.qty, pickupStores: [] };
    if (query.destination) {
      let best: number | undefined;
      for (const l of index.shippers) {
        if (atpAt(line.sku, l.id) < line.qty) continue;
        const t = shipTimes(network, index, l, query.destination, query.nowMs, times);
        if (t && (best === undefined || t.deliverAtMs < best)) best = t.deliverAtMs;
      }
      if (best !== undefined) answer.bestDeliveryAtMs = best;
    }
    for (const c of pickupCandidates) {
      const here = atpAt(line.sku, c.l.id);
      if (here <= 0) continue;
      answer.pickupStores.push({ location: c.l.id, name: c.l.name, distanceKm: round1(c.km), atp: here });
      if (answer.pickupStores.length >= pickupStoresPerLineMax) break;
    }
    return answer;
  });

  return { channel: index.channel.id, options: ranked, lines: lineAnswers };
}

/** PDP/PLP: channel ATP, in-stock flag, fastest delivery (to `near`, or the nearest band) and pickup stores near the shopper. */
export function skuAvailability(network: NetworkConfig, query: { channel: string; sku: string; near?: GeoPoint; nowMs: number }, atpAt: AtpAt): SkuAvailability {
  const index = channelIndex(network, query.channel);
  let atp = 0;
  for (const id of index.channel.locations) atp += atpAt(query.sku, id);
  if (index.channel.atpCap !== undefined) atp = Math.min(atp, index.channel.atpCap);
  const answer: SkuAvailability = { sku: query.sku, channel: index.channel.id, atp, inStock: atp > 0, pickupStores: [] };
  let fastest: number | undefined;
  for (const l of index.shippers) {
    if (atpAt(query.sku, l.id) < 1) continue;
    let deliverAt: number | undefined;
    if (query.near) deliverAt = shipFrom(network, index, l, [{ sku: query.sku, qty: 1 }], query.near, query.nowMs, new Map())?.deliverAtMs;
    else {
      const firstBand = Math.min(...index.standard.map((s) => s.service.transitDaysByBand[0]?.days ?? Infinity));
      if (Number.isFinite(firstBand)) deliverAt = deliveredAtMs(readyAtMs(l, query.nowMs, network.timeZone), firstBand, l.timeZone ?? network.timeZone);
    }
    if (deliverAt !== undefined && (fastest === undefined || deliverAt < fastest)) fastest = deliverAt;
  }
  if (fastest !== undefined) answer.fastestDeliveryAtMs = fastest;
  if (query.near) {
    const near = query.near;
    const radius = index.channel.sourcing.pickupRadiusKmDefault;
    answer.pickupStores = index.pickupStores
      .map((l) => ({ l, km: haversineKm(l, near), atp: atpAt(query.sku, l.id) }))
      .filter((c) => c.km <= radius && c.atp > 0)
      .sort((a, b) => a.km - b.km)
      .slice(0, pickupStoresPerLineMax)
      .map((c) => ({ location: c.l.id, name: c.l.name, distanceKm: round1(c.km), atp: c.atp }));
  }
  return answer;
}
