// Sourcing: turns a basket, the network and live ATP into ranked delivery and pickup options, each
// with its plan (which location serves which lines), promise date and cost. Pure: the caller reads
// ATP from the store (`atpAt`, channel rules already applied) and passes the time.
//
// Options (DESIGN.md, "HTTP API"):
// - delivery_standard: ship-capable locations (DCs, ship-from-store stores). One location for the
//   whole basket when one can (up to `standardPlansMax` plans, one per distinct promise, cheapest
//   first); otherwise a greedy split that minimises shipments. A line is split over locations only
//   when no single location holds its quantity.
// - delivery_express: a ship-from-store store within the channel's expressMaxKm of the destination
//   holds the whole basket and can have it ready before the same-day courier's last pick-up.
// - pickup_in_store: pickup stores near the shopper (or listed) holding every line.
// - pickup_after_transfer: the basket goes from a DC to a pickup store that does not hold it. The
//   transfer truck runs on delivery days and arrives before the store opens on its arrival day
//   (transfer band days after the DC has it ready, at least 1); collectable at opening + the
//   store's processing time.
// Ranked by fewest shipments, then promise, then cost (the order a shopper weighs them).
//
// The channel's sourcing weights (SourcingRules) score a location for a split, lower is better:
//   priority × locationPriority[type] + distance × km/100 + cost × service cents/100
//   − depth × min(ATP/qty, 4)/4 (deep stock is less likely to be a stale count)
// Fewest shipments always comes first (the greedy step takes the location serving the most lines;
// the score breaks ties); `shipments` > 0 turns consolidation on: a line that must be split is
// taken from locations already in the plan when they hold enough, so it adds no shipment.
// Location capacity (dailyCapacityOrders) is not applied: it needs today's order count per
// location, which the gateway does not have yet.
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

/** Standard delivery plans offered at most: beyond three, more locations promising later dates
 * only lengthen the answer a shopper reads. */
export const standardPlansMax = 3;
/** Shipments one plan may have: past it the basket is not offered for delivery (split it). */
export const shipmentsMax = 6;
/** Pickup stores examined at most per request: bounds the work whatever the radius. */
export const pickupCandidatesMax = 50;
/** Pickup stores listed per line. */
export const pickupStoresPerLineMax = 5;
/** In-store (and after-transfer) pickup options at most, whatever `pickup.max` asks: the same
 * bound as the configuration's pickupMaxDefault. */
export const pickupOptionsMax = 20;
/** Options returned at most: the field's largest answer (24 options for 12 items, DESIGN.md). */
export const optionsMax = 24;

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
  /** Active ship-from-store stores, for same-day express. */
  expressStores: NetworkLocation[];
  /** Location ids of the channel, for channel ATP sums. */
  locationIds: readonly string[];
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
    expressStores: active.filter((l) => l.type === 'store' && l.capabilities.shipFromStore),
    locationIds: channel.locations,
  };
  byChannel.set(channelId, index);
  return index;
}

function priority(channel: NetworkChannel, type: LocationType): number {
  return channel.sourcing.locationPriority[type] ?? 9;
}

/** The same-day express service (cheapest) that serves the distance; undefined when none does. */
function sameDayService(services: { carrier: Carrier; service: CarrierService }[], km: number): { carrier: Carrier; service: CarrierService; days: number } | undefined {
  let best: { carrier: Carrier; service: CarrierService; days: number } | undefined;
  for (const s of services) {
    if (bandDays(s.service.transitDaysByBand, km) !== 0) continue;
    if (!best || s.service.costCents < best.service.costCents) best = { carrier: s.carrier, service: s.service, days: 0 };
  }
  return best;
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
type ShipTimes = Map<string, { carrier: string; service: string; costCents: number; km: number; readyAtMs: number; deliverAtMs: number } | null>;

function shipTimes(network: NetworkConfig, index: ChannelIndex, location: NetworkLocation, destination: GeoPoint, nowMs: number, times: ShipTimes) {
  let t = times.get(location.id);
  if (t === undefined) {
    const km = haversineKm(location, destination);
    const service = cheapestService(index.standard, km);
    if (!service) t = null;
    else {
      const ready = readyAtMs(location, nowMs, network.timeZone);
      t = { carrier: service.carrier.id, service: service.service.id, costCents: service.service.costCents, km, readyAtMs: ready, deliverAtMs: deliveredAtMs(ready, service.days, location.timeZone ?? network.timeZone) };
    }
    times.set(location.id, t);
  }
  return t;
}

function shipFrom(network: NetworkConfig, index: ChannelIndex, location: NetworkLocation, lines: { sku: string; qty: number }[], destination: GeoPoint, nowMs: number, times: ShipTimes): { shipment: Shipment; costCents: number } | undefined {
  const t = shipTimes(network, index, location, destination, nowMs, times);
  return t ? { shipment: { from: location.id, lines, carrier: t.carrier, service: t.service, readyAtMs: t.readyAtMs, deliverAtMs: t.deliverAtMs }, costCents: t.costCents } : undefined;
}

/** The channel's score of a location for a split (lower is better; formula at the top). */
function locationScore(channel: NetworkChannel, type: LocationType, km: number, costCents: number): number {
  const w = channel.sourcing;
  return w.priority * priority(channel, type) + (w.distance * km) / 100 + (w.cost * costCents) / 100;
}

/** Depth of the stock at a location for these lines: min(ATP/qty) capped at 4, scaled to 0..1. */
function depthOf(lines: readonly { sku: string; qty: number }[], locationId: string, atpAt: AtpAt): number {
  let ratio = 4;
  for (const line of lines) ratio = Math.min(ratio, atpAt(line.sku, locationId) / line.qty);
  return ratio / 4;
}

function holdsAll(lines: { sku: string; qty: number }[], locationId: string, atpAt: AtpAt): boolean {
  for (const line of lines) if (atpAt(line.sku, locationId) < line.qty) return false;
  return true;
}

/**
 * Greedy split over ship-capable locations that serve the destination: each step takes the
 * location that serves the most remaining lines whole (ties: the lower score, depth included); a
 * line no single location holds is then split over locations in score order, from the ones already
 * in the plan first when consolidation is on and they hold enough. Greedy set cover is within a
 * log factor of the fewest shipments and runs in lines × locations; for baskets of a dozen lines
 * it finds the minimum in practice.
 */
function splitPlan(network: NetworkConfig, index: ChannelIndex, lines: readonly { sku: string; qty: number }[], destination: GeoPoint, nowMs: number, atpAt: AtpAt, times: ShipTimes): Map<NetworkLocation, { sku: string; qty: number }[]> | undefined {
  const channel = index.channel;
  const candidates: { l: NetworkLocation; score: number }[] = [];
  for (const l of index.shippers) {
    const t = shipTimes(network, index, l, destination, nowMs, times);
    if (t) candidates.push({ l, score: locationScore(channel, l.type, t.km, t.costCents) });
  }
  candidates.sort((a, b) => a.score - b.score);
  const plan = new Map<NetworkLocation, { sku: string; qty: number }[]>();
  const open = lines.map(() => true);
  let openCount = lines.length;
  while (openCount > 0) {
    let best: NetworkLocation | undefined;
    let bestServed = 0;
    let bestScore = Infinity;
    for (const c of candidates) {
      let served = 0;
      let depthRatio = 4;
      for (let i = 0; i < lines.length; i++) {
        if (!open[i]) continue;
        const atp = atpAt(lines[i]!.sku, c.l.id);
        if (atp < lines[i]!.qty) continue;
        served++;
        depthRatio = Math.min(depthRatio, atp / lines[i]!.qty);
      }
      if (served === 0 || served < bestServed) continue;
      const score = c.score - (channel.sourcing.depth * depthRatio) / 4;
      if (served > bestServed || score < bestScore) {
        best = c.l;
        bestServed = served;
        bestScore = score;
      }
    }
    if (!best) break;
    const taken = plan.get(best) ?? [];
    for (let i = 0; i < lines.length; i++) {
      if (open[i] && atpAt(lines[i]!.sku, best.id) >= lines[i]!.qty) {
        taken.push({ sku: lines[i]!.sku, qty: lines[i]!.qty });
        open[i] = false;
        openCount--;
      }
    }
    plan.set(best, taken);
  }
  // What is left: lines no single location holds whole.
  for (let i = 0; i < lines.length; i++) {
    if (!open[i]) continue;
    const line = lines[i]!;
    let order = candidates;
    if (channel.sourcing.shipments > 0) {
      let inPlan = 0;
      for (const c of candidates) if (plan.has(c.l)) inPlan += atpAt(line.sku, c.l.id);
      if (inPlan >= line.qty) order = candidates.filter((c) => plan.has(c.l));
    }
    const pieces: { l: NetworkLocation; qty: number }[] = [];
    let left = line.qty;
    for (const c of order) {
      const take = Math.min(left, atpAt(line.sku, c.l.id));
      if (take <= 0) continue;
      pieces.push({ l: c.l, qty: take });
      left -= take;
      if (left === 0) break;
    }
    if (left > 0) return undefined;
    for (const piece of pieces) {
      const taken = plan.get(piece.l) ?? [];
      taken.push({ sku: line.sku, qty: piece.qty });
      plan.set(piece.l, taken);
    }
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
  const channel = index.channel;
  const methods = query.methods ?? ['delivery', 'pickup'];
  const lines = query.lines;
  const options: Omit<AvailabilityOption, 'rank' | 'promiseAt'>[] = [];
  const tz = network.timeZone;
  const times: ShipTimes = new Map();
  const copyLines = () => lines.map((x) => ({ sku: x.sku, qty: x.qty }));

  if (methods.includes('delivery') && query.destination) {
    const destination = query.destination;
    // Single-location plans, best first by promise, then cost, then the channel's score.
    const singles: { shipment: Shipment; cost: number; score: number }[] = [];
    for (const l of index.shippers) {
      if (!holdsAll(lines, l.id, atpAt)) continue;
      const t = shipTimes(network, index, l, destination, query.nowMs, times);
      if (!t) continue;
      singles.push({
        shipment: { from: l.id, lines: copyLines(), carrier: t.carrier, service: t.service, readyAtMs: t.readyAtMs, deliverAtMs: t.deliverAtMs },
        cost: t.costCents,
        score: locationScore(channel, l.type, t.km, t.costCents) - channel.sourcing.depth * depthOf(lines, l.id, atpAt),
      });
    }
    singles.sort((a, b) => a.shipment.deliverAtMs - b.shipment.deliverAtMs || a.cost - b.cost || a.score - b.score);
    let standard = 0;
    let lastPromise = Number.NaN;
    for (const s of singles) {
      // Plans with the same promise and a higher cost (or worse score) add nothing for the shopper.
      if (s.shipment.deliverAtMs === lastPromise) continue;
      lastPromise = s.shipment.deliverAtMs;
      options.push({ id: `delivery_standard:${s.shipment.from}`, method: 'delivery_standard', shipmentCount: 1, shipments: [s.shipment], promiseAtMs: s.shipment.deliverAtMs, costCents: s.cost });
      if (++standard >= standardPlansMax) break;
    }
    if (singles.length === 0 && lines.length > 0) {
      const plan = splitPlan(network, index, lines, destination, query.nowMs, atpAt, times);
      if (plan && plan.size <= shipmentsMax) {
        const shipments: Shipment[] = [];
        let costCents = 0;
        let promiseAtMs = 0;
        for (const [from, planLines] of plan) {
          const s = shipFrom(network, index, from, planLines, destination, query.nowMs, times)!; // candidates all serve the destination
          shipments.push(s.shipment);
          costCents += s.costCents;
          promiseAtMs = Math.max(promiseAtMs, s.shipment.deliverAtMs);
        }
        options.push({ id: `delivery_standard:${shipments.map((s) => s.from).join('+')}`, method: 'delivery_standard', shipmentCount: shipments.length, shipments, promiseAtMs, costCents });
      }
    }

    // Express: the nearest ship-from-store store close enough that holds everything and has it
    // ready today, before its cut-off and the courier's last pick-up, so it arrives tonight.
    const maxKm = channel.sourcing.expressMaxKm;
    let express: { l: NetworkLocation; km: number } | undefined;
    for (const l of index.expressStores) {
      const km = haversineKm(l, destination);
      if (km > maxKm || (express && km >= express.km)) continue;
      if (holdsAll(lines, l.id, atpAt)) express = { l, km };
    }
    const service = express && sameDayService(index.express, express.km);
    if (express && service) {
      const l = express.l;
      const zone = l.timeZone ?? tz;
      const ready = readyAtMs(l, query.nowMs, tz);
      const deliverAt = deliveredAtMs(ready, 0, zone);
      const orderDay = localParts(query.nowMs, zone).day;
      if (localParts(ready, zone).day === orderDay && localParts(deliverAt, zone).day === orderDay) {
        const shipment: Shipment = { from: l.id, lines: copyLines(), carrier: service.carrier.id, service: service.service.id, readyAtMs: ready, deliverAtMs: deliverAt };
        options.push({ id: `delivery_express:${l.id}`, method: 'delivery_express', shipmentCount: 1, shipments: [shipment], promiseAtMs: deliverAt, costCents: service.service.costCents });
      }
    }
  }

  const pickupCandidates = methods.includes('pickup') ? nearestPickupStores(index, query) : [];
  if (pickupCandidates.length > 0) {
    const max = Math.min(pickupOptionsMax, Math.max(1, query.pickup?.max ?? channel.sourcing.pickupMaxDefault));
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
          shipments: [{ from: c.l.id, lines: copyLines(), readyAtMs: ready, deliverAtMs: ready }],
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
    const sources = index.transferSources.filter((dc) => holdsAll(lines, dc.id, atpAt));
    for (const c of without) {
      let best: Shipment | undefined;
      for (const dc of sources) {
        const days = bandDays(network.transfer.transitDaysByBand, haversineKm(dc, c.l));
        if (days === undefined) continue;
        const ready = readyAtMs(dc, query.nowMs, tz);
        const zone = c.l.timeZone ?? tz;
        const arrival = deliveredAtMs(ready, Math.max(1, days), zone);
        const collectable = arrivalReadyAtMs(arrival, c.l.processingMinutes, zone);
        if (!best || collectable < best.deliverAtMs) best = { from: dc.id, transferTo: c.l.id, lines: copyLines(), readyAtMs: ready, deliverAtMs: collectable };
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
  if (options.length > optionsMax) options.length = optionsMax;
  const ranked: AvailabilityOption[] = options.map((o, i) => ({ ...o, rank: i + 1, promiseAt: new Date(o.promiseAtMs).toISOString() }));

  const lineAnswers: LineAvailability[] = lines.map((line) => {
    let atp = 0;
    for (const id of index.locationIds) atp += atpAt(line.sku, id);
    if (channel.atpCap !== undefined) atp = Math.min(atp, channel.atpCap);
    const answer: LineAvailability = { sku: line.sku, requested: line.qty, atp, inStock: atp >= line.qty, pickupStores: [] };
    if (query.destination && methods.includes('delivery')) {
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

  return { channel: channel.id, options: ranked, lines: lineAnswers };
}

/**
 * PDP/PLP: channel ATP, in-stock flag, fastest delivery of one unit (to `near`, or else within the
 * carriers' first distance band) and pickup stores with stock within the channel's default radius.
 */
export function skuAvailability(network: NetworkConfig, query: { channel: string; sku: string; near?: GeoPoint; nowMs: number }, atpAt: AtpAt): SkuAvailability {
  const index = channelIndex(network, query.channel);
  const channel = index.channel;
  let atp = 0;
  for (const id of index.locationIds) atp += atpAt(query.sku, id);
  if (channel.atpCap !== undefined) atp = Math.min(atp, channel.atpCap);
  const answer: SkuAvailability = { sku: query.sku, channel: channel.id, atp, inStock: atp > 0, pickupStores: [] };
  let fastest: number | undefined;
  const times: ShipTimes = new Map();
  let firstBandDays = Infinity;
  if (!query.near) for (const s of index.standard) firstBandDays = Math.min(firstBandDays, s.service.transitDaysByBand[0]?.days ?? Infinity);
  for (const l of index.shippers) {
    if (atpAt(query.sku, l.id) < 1) continue;
    let deliverAt: number | undefined;
    if (query.near) deliverAt = shipTimes(network, index, l, query.near, query.nowMs, times)?.deliverAtMs;
    else if (Number.isFinite(firstBandDays)) deliverAt = deliveredAtMs(readyAtMs(l, query.nowMs, network.timeZone), firstBandDays, l.timeZone ?? network.timeZone);
    if (deliverAt !== undefined && (fastest === undefined || deliverAt < fastest)) fastest = deliverAt;
  }
  if (fastest !== undefined) answer.fastestDeliveryAtMs = fastest;
  if (query.near) {
    const near = query.near;
    const radius = channel.sourcing.pickupRadiusKmDefault;
    for (const l of index.pickupStores) {
      const here = atpAt(query.sku, l.id);
      if (here <= 0) continue;
      const km = haversineKm(l, near);
      if (km <= radius) answer.pickupStores.push({ location: l.id, name: l.name, distanceKm: km, atp: here });
    }
    answer.pickupStores.sort((a, b) => a.distanceKm - b.distanceKm);
    if (answer.pickupStores.length > pickupStoresPerLineMax) answer.pickupStores.length = pickupStoresPerLineMax;
    for (const s of answer.pickupStores) s.distanceKm = round1(s.distanceKm);
  }
  return answer;
}
