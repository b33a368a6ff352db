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
//   holds the whole basket, takes the order before its cut-off and has it ready before the
//   same-day courier's last pick-up: delivered tonight, or not offered.
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
// Location capacity: with `ordersTodayAt`, a location at its dailyCapacityOrders is left out of
// every plan for the rest of the request (it still counts in channel ATP: the stock is there).
// Paused locations and locations outside the channel are never used (ATP is 0 there, and they are
// filtered out again here so a zero-quantity plan cannot name them).

import { DomainError } from './errors.js';
import type { LocationType } from './types.js';
import type { Carrier, CarrierService, NetworkChannel, NetworkConfig, NetworkLocation } from '../network/config.js';
import { arrivalReadyAtMs, bandDays, deliveredAtMs, haversineKm, isoUtc, localDay, readyAtMs } from './promise.js';

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
  /**
   * Orders each location has taken today, when the caller tracks them: a location that has reached
   * its dailyCapacityOrders offers nothing more (no shipment, no pickup, no transfer). Absent:
   * capacity is not checked.
   */
  ordersTodayAt?: (locationId: string) => number;
}

/** ATP of sku at a location in the query's channel; 0 when paused, not in the channel, below threshold. */
export type AtpAt = (sku: string, locationId: string) => number;

/**
 * A basket's ATP filled by the caller: row = line, column = the channel's location at that index of
 * channelColumns (row-major, lines × columns). Saves a lookup per line and location when the
 * caller already holds each SKU's positions.
 */
export type AtpMatrix = Float64Array;

export interface Shipment {
  from: string;
  /** Shipments that carry the whole basket share one list: do not change it in place. */
  lines: readonly { sku: string; qty: number }[];
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
/** Shipments one plan may have: past it the basket is not offered for delivery (the shopper can
 * split it). Six parcels for one order already cost more than most baskets' margin. */
export const shipmentsMax = 6;
/** Pickup stores examined at most per request: bounds the work whatever the radius (a dense city
 * has a few dozen stores within any radius a shopper would drive). */
export const pickupCandidatesMax = 50;
/** Pickup stores listed per line. */
export const pickupStoresPerLineMax = 5;
/** In-store (and after-transfer) pickup options at most, whatever `pickup.max` asks: the same
 * bound as the configuration's pickupMaxDefault. */
export const pickupOptionsMax = 20;
/** Options returned at most: the field's largest answer (24 options for 12 items, DESIGN.md). */
export const optionsMax = 24;

/** A location of the channel, with its column in a basket's ATP matrix. */
interface Site {
  l: NetworkLocation;
  col: number;
}

interface ChannelIndex {
  channel: NetworkChannel;
  /** The channel's location ids, one per column of a basket's ATP matrix. */
  columns: readonly string[];
  /** Daily capacity per column (Infinity: none, or not a location of the file). */
  capacity: Float64Array;
  /** Active ship-capable locations of the channel. */
  shippers: Site[];
  /** Active pickup stores of the channel. */
  pickupStores: Site[];
  /** Active DCs (and 3PLs) that ship, for transfers to stores. */
  transferSources: Site[];
  /** Active ship-from-store stores, for same-day express. */
  expressStores: Site[];
  standard: { carrier: Carrier; service: CarrierService }[];
  express: { carrier: Carrier; service: CarrierService }[];
  firstBandDays: number;
  /** km between two of the channel's locations (row-major by column), NaN until first asked. */
  kmBetween: Float64Array;
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
  const columns = [...new Set(channel.locations)];
  const col = new Map(columns.map((id, i) => [id, i]));
  const active: Site[] = [];
  for (const l of network.locations) {
    const c = col.get(l.id);
    if (c !== undefined && l.status === 'active') active.push({ l, col: c });
  }
  const services = network.carriers.flatMap((carrier) => carrier.services.map((service) => ({ carrier, service })));
  const standard = services.filter((s) => s.service.speed === 'standard');
  const capacity = new Float64Array(columns.length).fill(Infinity);
  for (const l of network.locations) {
    const c = col.get(l.id);
    if (c !== undefined && l.dailyCapacityOrders !== undefined) capacity[c] = l.dailyCapacityOrders;
  }
  index = {
    channel,
    columns,
    capacity,
    shippers: active.filter((s) => (s.l.type === 'store' ? s.l.capabilities.shipFromStore : s.l.capabilities.ship)),
    pickupStores: active.filter((s) => s.l.type === 'store' && s.l.capabilities.pickup),
    transferSources: active.filter((s) => s.l.type !== 'store' && s.l.capabilities.ship),
    expressStores: active.filter((s) => s.l.type === 'store' && s.l.capabilities.shipFromStore),
    standard,
    express: services.filter((s) => s.service.speed === 'express'),
    firstBandDays: Math.min(...standard.map((s) => s.service.transitDaysByBand[0]?.days ?? Infinity)),
    kmBetween: new Float64Array(columns.length * columns.length).fill(Number.NaN),
  };
  byChannel.set(channelId, index);
  return index;
}

/** km between two locations of the channel: the network's, so kept with its index. */
function kmBetween(index: ChannelIndex, a: Site, b: Site): number {
  const cell = a.col * index.columns.length + b.col;
  let km = index.kmBetween[cell]!;
  if (Number.isNaN(km)) index.kmBetween[cell] = km = haversineKm(a.l, b.l);
  return km;
}

/**
 * km from one point (a request's destination, or where the shopper picks up) to the channel's
 * locations, each computed on first ask: a basket asks for the same location's distance from
 * shipping, express and pickup.
 */
class DistancesFrom {
  // An array, not a Float64Array: a typed array costs more to make than the ~40 numbers it holds.
  private readonly km: number[];

  constructor(
    readonly point: GeoPoint,
    cols: number,
  ) {
    this.km = new Array<number>(cols).fill(Number.NaN);
  }

  to(site: Site): number {
    let km = this.km[site.col]!;
    if (Number.isNaN(km)) this.km[site.col] = km = haversineKm(site.l, this.point);
    return km;
  }

  /** These distances when `point` is the same place, else new ones from it. */
  from(point: GeoPoint): DistancesFrom {
    return point.lat === this.point.lat && point.lon === this.point.lon ? this : new DistancesFrom(point, this.km.length);
  }
}

/**
 * A basket's ATP, read once: row = line, column = channel location. Every rule below reads this
 * matrix, so the caller's atpAt runs exactly lines × channel locations times per request.
 */
interface Basket {
  lines: readonly { sku: string; qty: number }[];
  cols: number;
  atp: Float64Array;
  /** Per column: 1 when the location can still take an order today (capacity). */
  open: Uint8Array;
}

/** The channel's locations, each with its column in a basket's ATP matrix (see AtpMatrix). */
export function channelColumns(network: NetworkConfig, channelId: string): ReadonlyMap<string, number> {
  const index = channelIndex(network, channelId);
  let columns = columnMaps.get(index);
  if (!columns) columnMaps.set(index, (columns = new Map(index.columns.map((id, c) => [id, c]))));
  return columns;
}

const columnMaps = new WeakMap<ChannelIndex, ReadonlyMap<string, number>>();

function readBasket(index: ChannelIndex, lines: readonly { sku: string; qty: number }[], source: AtpAt | AtpMatrix, ordersTodayAt: ((locationId: string) => number) | undefined): Basket {
  const cols = index.columns.length;
  let atp: Float64Array;
  if (source instanceof Float64Array) {
    if (source.length !== lines.length * cols) throw new Error(`ATP matrix of ${source.length} cells for ${lines.length} lines × ${cols} locations`);
    atp = source;
  } else {
    atp = new Float64Array(lines.length * cols);
    for (let i = 0; i < lines.length; i++) {
      const sku = lines[i]!.sku;
      for (let c = 0; c < cols; c++) atp[i * cols + c] = source(sku, index.columns[c]!);
    }
  }
  const open = new Uint8Array(cols).fill(1);
  if (ordersTodayAt) for (let c = 0; c < cols; c++) if (index.capacity[c]! !== Infinity && ordersTodayAt(index.columns[c]!) >= index.capacity[c]!) open[c] = 0;
  return { lines, cols, atp, open };
}

function holdsAll(basket: Basket, site: Site): boolean {
  if (basket.open[site.col] === 0) return false;
  const { lines, cols, atp } = basket;
  for (let i = 0; i < lines.length; i++) if (atp[i * cols + site.col]! < lines[i]!.qty) return false;
  return true;
}

/** Depth of the stock at a location for the whole basket: min(ATP/qty) capped at 4, scaled to 0..1. */
function depthOf(basket: Basket, site: Site): number {
  const { lines, cols, atp } = basket;
  let ratio = 4;
  for (let i = 0; i < lines.length; i++) ratio = Math.min(ratio, atp[i * cols + site.col]! / lines[i]!.qty);
  return ratio / 4;
}

function priority(channel: NetworkChannel, type: LocationType): number {
  return channel.sourcing.locationPriority[type] ?? 9;
}

/** The same-day express service (cheapest) that serves the distance; undefined when none does. */
function sameDayService(services: { carrier: Carrier; service: CarrierService }[], km: number): { carrier: Carrier; service: CarrierService } | undefined {
  let best: { carrier: Carrier; service: CarrierService } | undefined;
  for (const s of services) {
    if (bandDays(s.service.transitDaysByBand, km) !== 0) continue;
    if (!best || s.service.costCents < best.service.costCents) best = s;
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

interface ShipTime {
  carrier: string;
  service: string;
  costCents: number;
  km: number;
  readyAtMs: number;
  deliverAtMs: number;
}

/** Per request: where each location's parcel to the destination is ready and delivered, by column
 * (null: no standard service reaches the destination from there). */
type ShipTimes = (ShipTime | null | undefined)[];

function shipTimes(network: NetworkConfig, index: ChannelIndex, site: Site, destination: DistancesFrom, nowMs: number, times: ShipTimes): ShipTime | null {
  let t = times[site.col];
  if (t === undefined) {
    const l = site.l;
    const km = destination.to(site);
    const service = cheapestService(index.standard, km);
    if (!service) t = null;
    else {
      const ready = readyAtMs(l, nowMs, network.timeZone);
      t = { carrier: service.carrier.id, service: service.service.id, costCents: service.service.costCents, km, readyAtMs: ready, deliverAtMs: deliveredAtMs(ready, service.days, l.timeZone ?? network.timeZone) };
    }
    times[site.col] = t;
  }
  return t;
}

/**
 * The earliest delivery of a line: of the shippers a standard service takes to the destination
 * that hold the line and take orders today (undefined: none). `times` holds every shipper's.
 */
function bestDeliveryAtMs(index: ChannelIndex, basket: Basket, line: number, times: ShipTimes): number | undefined {
  const { cols, atp } = basket;
  const qty = basket.lines[line]!.qty;
  let best: number | undefined;
  for (const site of index.shippers) {
    const t = times[site.col];
    if (t && atp[line * cols + site.col]! >= qty && basket.open[site.col] === 1 && (best === undefined || t.deliverAtMs < best)) best = t.deliverAtMs;
  }
  return best;
}

interface Single {
  site: Site;
  t: ShipTime;
  score: number;
}

/**
 * Adds a single-location plan to `kept`, which holds for each of the `max` earliest promises the
 * plan delivering on it at the lowest cost, then the best score, then first in network order:
 * what sorting every plan by (promise, cost, score) and keeping the first of each promise gives,
 * without sorting most of the channel's shippers for every basket.
 */
function keepEarliest(kept: Single[], plan: Single, max: number): void {
  const promise = plan.t.deliverAtMs;
  let i = 0;
  while (i < kept.length && kept[i]!.t.deliverAtMs < promise) i++;
  const same = kept[i];
  if (same !== undefined && same.t.deliverAtMs === promise) {
    if (plan.t.costCents < same.t.costCents || (plan.t.costCents === same.t.costCents && plan.score < same.score)) kept[i] = plan;
    return;
  }
  if (i >= max) return;
  kept.splice(i, 0, plan);
  if (kept.length > max) kept.pop();
}

/** The channel's score of a location for a split (lower is better; formula at the top). */
function locationScore(channel: NetworkChannel, type: LocationType, km: number, costCents: number): number {
  const w = channel.sourcing;
  return w.priority * priority(channel, type) + (w.distance * km) / 100 + (w.cost * costCents) / 100;
}

/**
 * Greedy split over ship-capable locations that serve the destination: each step takes the
 * location that serves the most remaining lines whole (ties: the lower score, depth included); a
 * line no single location holds is then split over locations in score order, from the ones already
 * in the plan only when consolidation is on and they hold enough. Greedy set cover is within a
 * log factor of the fewest shipments and runs in lines × locations; for baskets of a dozen lines
 * it finds the minimum in practice.
 */
function splitPlan(network: NetworkConfig, index: ChannelIndex, basket: Basket, destination: DistancesFrom, nowMs: number, times: ShipTimes): Map<Site, { sku: string; qty: number }[]> | undefined {
  const channel = index.channel;
  const { lines, cols, atp } = basket;
  const candidates: { site: Site; score: number }[] = [];
  for (const site of index.shippers) {
    if (basket.open[site.col] === 0) continue;
    const t = shipTimes(network, index, site, destination, nowMs, times);
    if (t) candidates.push({ site, score: locationScore(channel, site.l.type, t.km, t.costCents) });
  }
  candidates.sort((a, b) => a.score - b.score);
  const plan = new Map<Site, { sku: string; qty: number }[]>();
  const open = lines.map(() => true);
  let openCount = lines.length;
  while (openCount > 0) {
    let best: Site | undefined;
    let bestServed = 0;
    let bestScore = Infinity;
    for (const c of candidates) {
      let served = 0;
      let depthRatio = 4;
      for (let i = 0; i < lines.length; i++) {
        if (!open[i]) continue;
        const here = atp[i * cols + c.site.col]!;
        if (here < lines[i]!.qty) continue;
        served++;
        depthRatio = Math.min(depthRatio, here / lines[i]!.qty);
      }
      if (served === 0 || served < bestServed) continue;
      const score = c.score - (channel.sourcing.depth * depthRatio) / 4;
      if (served > bestServed || score < bestScore) {
        best = c.site;
        bestServed = served;
        bestScore = score;
      }
    }
    if (!best) break;
    const taken = plan.get(best) ?? [];
    for (let i = 0; i < lines.length; i++) {
      if (open[i] && atp[i * cols + best.col]! >= lines[i]!.qty) {
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
      for (const c of candidates) if (plan.has(c.site)) inPlan += atp[i * cols + c.site.col]!;
      if (inPlan >= line.qty) order = candidates.filter((c) => plan.has(c.site));
    }
    const pieces: { site: Site; qty: number }[] = [];
    let left = line.qty;
    for (const c of order) {
      const take = Math.min(left, atp[i * cols + c.site.col]!);
      if (take <= 0) continue;
      pieces.push({ site: c.site, qty: take });
      left -= take;
      if (left === 0) break;
    }
    if (left > 0) return undefined;
    for (const piece of pieces) {
      const taken = plan.get(piece.site) ?? [];
      taken.push({ sku: line.sku, qty: piece.qty });
      plan.set(piece.site, taken);
    }
  }
  return plan;
}

/** `toDestination`: the request's distances from its destination, reused when pickup is near it. */
function nearestPickupStores(index: ChannelIndex, query: AvailabilityQuery, basket: Basket, toDestination: DistancesFrom | undefined): { site: Site; km: number }[] {
  const pickup = query.pickup;
  if (!pickup) return [];
  const found: { site: Site; km: number }[] = [];
  const distancesFrom = (point: GeoPoint) => toDestination?.from(point) ?? new DistancesFrom(point, basket.cols);
  if (pickup.locations) {
    const wanted = new Set(pickup.locations);
    const origin = pickup.near ?? query.destination;
    const distances = origin && distancesFrom(origin);
    for (const site of index.pickupStores) if (basket.open[site.col] === 1 && wanted.has(site.l.id)) found.push({ site, km: distances ? distances.to(site) : 0 });
  } else if (pickup.near) {
    const radius = pickup.radiusKm ?? index.channel.sourcing.pickupRadiusKmDefault;
    const distances = distancesFrom(pickup.near);
    for (const site of index.pickupStores) {
      if (basket.open[site.col] === 0) continue;
      const km = distances.to(site);
      if (km <= radius) found.push({ site, km });
    }
  }
  found.sort((a, b) => a.km - b.km);
  if (found.length > pickupCandidatesMax) found.length = pickupCandidatesMax;
  return found;
}

const round1 = (km: number) => Math.round(km * 10) / 10;

export function availabilityOptions(network: NetworkConfig, query: AvailabilityQuery, atpAt: AtpAt | AtpMatrix): AvailabilityAnswer {
  const index = channelIndex(network, query.channel);
  const channel = index.channel;
  const methods = query.methods ?? ['delivery', 'pickup'];
  const lines = query.lines;
  const basket = readBasket(index, lines, atpAt, query.ordersTodayAt);
  const { cols, atp } = basket;
  const options: Omit<AvailabilityOption, 'rank' | 'promiseAt'>[] = [];
  const tz = network.timeZone;
  const times: ShipTimes = new Array<ShipTime | null | undefined>(cols);
  // Every shipment that carries the whole basket shares this one list (answers are read-only).
  const wholeBasket: readonly { sku: string; qty: number }[] = lines.map((x) => ({ sku: x.sku, qty: x.qty }));
  const delivery = methods.includes('delivery') && query.destination !== undefined;
  const toDestination = query.destination && new DistancesFrom(query.destination, cols);

  if (delivery && toDestination) {
    // Single-location plans, best first by promise, then cost, then the channel's score. Plans
    // with the same promise and a higher cost (or worse score) add nothing for the shopper.
    const singles: Single[] = [];
    let anySingle = false;
    for (const site of index.shippers) {
      if (!holdsAll(basket, site)) continue;
      const t = shipTimes(network, index, site, toDestination, query.nowMs, times);
      if (!t) continue;
      anySingle = true;
      keepEarliest(singles, { site, t, score: locationScore(channel, site.l.type, t.km, t.costCents) - channel.sourcing.depth * depthOf(basket, site) }, standardPlansMax);
    }
    for (const { site, t } of singles) {
      const shipment: Shipment = { from: site.l.id, lines: wholeBasket, carrier: t.carrier, service: t.service, readyAtMs: t.readyAtMs, deliverAtMs: t.deliverAtMs };
      options.push({ id: `delivery_standard:${site.l.id}`, method: 'delivery_standard', shipmentCount: 1, shipments: [shipment], promiseAtMs: t.deliverAtMs, costCents: t.costCents });
    }
    if (!anySingle && lines.length > 0) {
      const plan = splitPlan(network, index, basket, toDestination, query.nowMs, times);
      if (plan && plan.size <= shipmentsMax) {
        const shipments: Shipment[] = [];
        let costCents = 0;
        let promiseAtMs = 0;
        for (const [site, planLines] of plan) {
          const t = times[site.col]!; // the split uses only locations a service reaches
          shipments.push({ from: site.l.id, lines: planLines, carrier: t.carrier, service: t.service, readyAtMs: t.readyAtMs, deliverAtMs: t.deliverAtMs });
          costCents += t.costCents;
          promiseAtMs = Math.max(promiseAtMs, t.deliverAtMs);
        }
        options.push({ id: `delivery_standard:${shipments.map((s) => s.from).join('+')}`, method: 'delivery_standard', shipmentCount: shipments.length, shipments, promiseAtMs, costCents });
      }
    }

    // Express: the nearest ship-from-store store close enough that holds everything and has it
    // ready today, before its cut-off and the courier's last pick-up, so it arrives tonight.
    const maxKm = channel.sourcing.expressMaxKm;
    let express: { site: Site; km: number } | undefined;
    for (const site of index.expressStores) {
      const km = toDestination.to(site);
      if (km > maxKm || (express && km >= express.km)) continue;
      if (holdsAll(basket, site)) express = { site, km };
    }
    const service = express && sameDayService(index.express, express.km);
    if (express && service) {
      const l = express.site.l;
      const zone = l.timeZone ?? tz;
      const ready = readyAtMs(l, query.nowMs, tz);
      const deliverAt = deliveredAtMs(ready, 0, zone);
      if (localDay(deliverAt, zone) === localDay(query.nowMs, zone)) {
        const shipment: Shipment = { from: l.id, lines: wholeBasket, carrier: service.carrier.id, service: service.service.id, readyAtMs: ready, deliverAtMs: deliverAt };
        options.push({ id: `delivery_express:${l.id}`, method: 'delivery_express', shipmentCount: 1, shipments: [shipment], promiseAtMs: deliverAt, costCents: service.service.costCents });
      }
    }
  }

  const pickupCandidates = methods.includes('pickup') ? nearestPickupStores(index, query, basket, toDestination) : [];
  if (pickupCandidates.length > 0) {
    const max = Math.min(pickupOptionsMax, Math.max(1, query.pickup?.max ?? channel.sourcing.pickupMaxDefault));
    let inStore = 0;
    const without: { site: Site; km: number }[] = [];
    for (const c of pickupCandidates) {
      const l = c.site.l;
      if (holdsAll(basket, c.site)) {
        if (inStore >= max) continue;
        inStore++;
        const ready = readyAtMs(l, query.nowMs, tz);
        options.push({
          id: `pickup_in_store:${l.id}`,
          method: 'pickup_in_store',
          shipmentCount: 1,
          shipments: [{ from: l.id, lines: wholeBasket, readyAtMs: ready, deliverAtMs: ready }],
          promiseAtMs: ready,
          costCents: 0,
          pickup: { location: l.id, name: l.name, distanceKm: round1(c.km), readyAtMs: ready },
        });
      } else if (without.length < max) {
        without.push(c);
      }
    }
    // Pickup after transfer: for the nearest stores that cannot serve from their shelves, the DC
    // holding everything that gets it there first.
    const sources = without.length > 0 ? index.transferSources.filter((site) => holdsAll(basket, site)) : [];
    for (const c of without) {
      const store = c.site.l;
      let best: Shipment | undefined;
      for (const source of sources) {
        const dc = source.l;
        const days = bandDays(network.transfer.transitDaysByBand, kmBetween(index, source, c.site));
        if (days === undefined) continue;
        const ready = readyAtMs(dc, query.nowMs, tz);
        const zone = store.timeZone ?? tz;
        const arrival = deliveredAtMs(ready, Math.max(1, days), zone);
        const collectable = arrivalReadyAtMs(arrival, store.processingMinutes, zone);
        if (!best || collectable < best.deliverAtMs) best = { from: dc.id, transferTo: store.id, lines: wholeBasket, readyAtMs: ready, deliverAtMs: collectable };
      }
      if (!best) continue;
      options.push({
        id: `pickup_after_transfer:${best.from}>${store.id}`,
        method: 'pickup_after_transfer',
        shipmentCount: 1,
        shipments: [best],
        promiseAtMs: best.deliverAtMs,
        costCents: 0,
        pickup: { location: store.id, name: store.name, distanceKm: round1(c.km), readyAtMs: best.deliverAtMs },
      });
    }
  }

  options.sort((a, b) => a.shipmentCount - b.shipmentCount || a.promiseAtMs - b.promiseAtMs || a.costCents - b.costCents || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  if (options.length > optionsMax) options.length = optionsMax;
  const ranked = options as AvailabilityOption[];
  for (let i = 0; i < ranked.length; i++) {
    ranked[i]!.rank = i + 1;
    ranked[i]!.promiseAt = isoUtc(ranked[i]!.promiseAtMs);
  }

  if (delivery && toDestination) for (const site of index.shippers) shipTimes(network, index, site, toDestination, query.nowMs, times);
  const lineAnswers: LineAvailability[] = lines.map((line, i) => {
    let sum = 0;
    for (let c = 0; c < cols; c++) sum += atp[i * cols + c]!;
    if (channel.atpCap !== undefined) sum = Math.min(sum, channel.atpCap);
    const answer: LineAvailability = { sku: line.sku, requested: line.qty, atp: sum, inStock: sum >= line.qty, pickupStores: [] };
    if (delivery) {
      const best = bestDeliveryAtMs(index, basket, i, times);
      if (best !== undefined) answer.bestDeliveryAtMs = best;
    }
    for (const c of pickupCandidates) {
      const here = atp[i * cols + c.site.col]!;
      if (here <= 0) continue;
      answer.pickupStores.push({ location: c.site.l.id, name: c.site.l.name, distanceKm: round1(c.km), atp: here });
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
export function skuAvailability(network: NetworkConfig, query: { channel: string; sku: string; near?: GeoPoint; nowMs: number; ordersTodayAt?: (locationId: string) => number }, atpAt: AtpAt): SkuAvailability {
  const index = channelIndex(network, query.channel);
  const channel = index.channel;
  const basket = readBasket(index, [{ sku: query.sku, qty: 1 }], atpAt, query.ordersTodayAt);
  const atp = basket.atp;
  let sum = 0;
  for (let c = 0; c < basket.cols; c++) sum += atp[c]!;
  if (channel.atpCap !== undefined) sum = Math.min(sum, channel.atpCap);
  const answer: SkuAvailability = { sku: query.sku, channel: channel.id, atp: sum, inStock: sum > 0, pickupStores: [] };
  let fastest: number | undefined;
  const times: ShipTimes = new Array<ShipTime | null | undefined>(basket.cols);
  const toNear = query.near && new DistancesFrom(query.near, basket.cols);
  for (const site of index.shippers) {
    if (atp[site.col]! < 1 || basket.open[site.col] === 0) continue;
    let deliverAt: number | undefined;
    if (toNear) deliverAt = shipTimes(network, index, site, toNear, query.nowMs, times)?.deliverAtMs;
    else if (Number.isFinite(index.firstBandDays)) deliverAt = deliveredAtMs(readyAtMs(site.l, query.nowMs, network.timeZone), index.firstBandDays, site.l.timeZone ?? network.timeZone);
    if (deliverAt !== undefined && (fastest === undefined || deliverAt < fastest)) fastest = deliverAt;
  }
  if (fastest !== undefined) answer.fastestDeliveryAtMs = fastest;
  if (toNear) {
    const radius = channel.sourcing.pickupRadiusKmDefault;
    for (const site of index.pickupStores) {
      const here = atp[site.col]!;
      if (here <= 0 || basket.open[site.col] === 0) continue;
      const km = toNear.to(site);
      if (km <= radius) answer.pickupStores.push({ location: site.l.id, name: site.l.name, distanceKm: km, atp: here });
    }
    answer.pickupStores.sort((a, b) => a.distanceKm - b.distanceKm);
    if (answer.pickupStores.length > pickupStoresPerLineMax) answer.pickupStores.length = pickupStoresPerLineMax;
    for (const s of answer.pickupStores) s.distanceKm = round1(s.distanceKm);
  }
  return answer;
}
