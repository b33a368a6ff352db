// Request bodies and query strings checked field by field. Every message names the field, what
// was sent and what is expected, so a storefront developer can fix the call from the answer alone.
// The limits are named and documented in the OpenAPI spec.

import { basketLinesMax, channelIdLengthMax, locationIdLengthMax, qtyMax, skuLengthMax } from '../engine/core/validate.js';
import { HttpProblem } from './http.js';

/** SKUs per PLP call: a listing page shows a few dozen; a few hundred covers infinite scroll. */
export const plpSkusMax = 500;
/** Pickup stores a shopper may list by id. */
export const pickupLocationsMax = 50;
/** A pickup radius beyond this is not "near" any more. */
export const pickupRadiusKmMax = 500;
/** Pickup options returned at most. */
export const pickupMaxMax = 20;

export type Method = 'delivery' | 'pickup';

export interface GeoPoint {
  lat: number;
  lon: number;
}

export interface AvailabilityBody {
  channel: string;
  lines: { sku: string; qty: number }[];
  destination?: GeoPoint;
  pickup?: { near?: GeoPoint; radiusKm?: number; max?: number; locations?: string[] };
  methods: Method[];
}

function bad(detail: string): HttpProblem {
  return new HttpProblem(400, 'Bad Request', detail);
}

function shown(value: unknown): string {
  if (value === undefined) return 'missing';
  const text = JSON.stringify(value);
  return text === undefined ? String(value) : text.length > 60 ? `${text.slice(0, 57)}...` : text;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

export function requireObject(value: unknown, what: string): Record<string, unknown> {
  if (!isRecord(value)) throw bad(`${what} is ${shown(value)}: expected a JSON object`);
  return value;
}

export function id(value: unknown, field: string, lengthMax: number): string {
  if (typeof value !== 'string' || value.length === 0 || value.length > lengthMax) {
    throw bad(`${field} is ${shown(value)}: expected a non-empty string of at most ${lengthMax} characters`);
  }
  return value;
}

function int(value: unknown, field: string, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw bad(`${field} is ${shown(value)}: expected an integer from ${min} to ${max}`);
  }
  return value;
}

function num(value: unknown, field: string, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < min || value > max) {
    throw bad(`${field} is ${shown(value)}: expected a number from ${min} to ${max}`);
  }
  return value;
}

export function geoPoint(value: unknown, field: string): GeoPoint {
  const o = isRecord(value) ? value : undefined;
  if (!o) throw bad(`${field} is ${shown(value)}: expected {"lat": number, "lon": number}`);
  return { lat: num(o.lat, `${field}.lat`, -90, 90), lon: num(o.lon, `${field}.lon`, -180, 180) };
}

export function parseAvailabilityBody(input: unknown): AvailabilityBody {
  const body = requireObject(input, 'the body');
  const channel = id(body.channel, 'channel', channelIdLengthMax);
  const rawLines = body.lines;
  if (!Array.isArray(rawLines) || rawLines.length === 0) throw bad(`lines is ${shown(rawLines)}: expected a non-empty array of {sku, qty}`);
  if (rawLines.length > basketLinesMax) throw bad(`lines has ${rawLines.length} entries: at most ${basketLinesMax} per basket`);
  const merged = new Map<string, { sku: string; qty: number }>();
  rawLines.forEach((raw: unknown, i) => {
    const line = isRecord(raw) ? raw : undefined;
    if (!line) throw bad(`lines[${i}] is ${shown(raw)}: expected {sku, qty}`);
    const sku = id(line.sku, `lines[${i}].sku`, skuLengthMax);
    const qty = int(line.qty, `lines[${i}].qty`, 1, qtyMax);
    const existing = merged.get(sku);
    if (existing) existing.qty = Math.min(qtyMax, existing.qty + qty);
    else merged.set(sku, { sku, qty });
  });
  let methods: Method[] = ['delivery', 'pickup'];
  if (body.methods !== undefined) {
    if (!Array.isArray(body.methods) || body.methods.length === 0 || body.methods.some((m) => m !== 'delivery' && m !== 'pickup')) {
      throw bad(`methods is ${shown(body.methods)}: expected a non-empty array of "delivery" and/or "pickup"`);
    }
    methods = [...new Set(body.methods as Method[])];
  }
  const out: AvailabilityBody = { channel, lines: [...merged.values()], methods };
  if (body.destination !== undefined) out.destination = geoPoint(body.destination, 'destination');
  if (body.pickup !== undefined) {
    const p = requireObject(body.pickup, 'pickup');
    const pickup: NonNullable<AvailabilityBody['pickup']> = {};
    if (p.near !== undefined) pickup.near = geoPoint(p.near, 'pickup.near');
    if (p.radiusKm !== undefined) pickup.radiusKm = num(p.radiusKm, 'pickup.radiusKm', 0.1, pickupRadiusKmMax);
    if (p.max !== undefined) pickup.max = int(p.max, 'pickup.max', 1, pickupMaxMax);
    if (p.locations !== undefined) {
      if (!Array.isArray(p.locations) || p.locations.length === 0 || p.locations.length > pickupLocationsMax) {
        throw bad(`pickup.locations is ${shown(p.locations)}: expected 1 to ${pickupLocationsMax} location ids`);
      }
      pickup.locations = p.locations.map((l: unknown, i) => id(l, `pickup.locations[${i}]`, locationIdLengthMax));
    }
    if (!pickup.near && !pickup.locations) throw bad('pickup needs "near" {lat, lon} or "locations" [ids]');
    out.pickup = pickup;
  }
  if (methods.includes('delivery') && !out.destination && !(methods.includes('pickup') && out.pickup)) {
    throw bad('delivery options need "destination" {lat, lon}; send it, or ask for methods ["pickup"] with "pickup"');
  }
  if (methods.includes('pickup') && !out.pickup && !(methods.includes('delivery') && out.destination)) {
    throw bad('pickup options need "pickup" {near: {lat, lon}} or {locations: [...]}');
  }
  return out;
}

export interface SkusBody {
  channel: string;
  skus: string[];
  near?: GeoPoint;
}

export function parseSkusBody(input: unknown): SkusBody {
  const body = requireObject(input, 'the body');
  const channel = id(body.channel, 'channel', channelIdLengthMax);
  if (!Array.isArray(body.skus) || body.skus.length === 0) throw bad(`skus is ${shown(body.skus)}: expected a non-empty array of SKU ids`);
  if (body.skus.length > plpSkusMax) throw bad(`skus has ${body.skus.length} entries: at most ${plpSkusMax} per call`);
  const skus = [...new Set(body.skus.map((s: unknown, i) => id(s, `skus[${i}]`, skuLengthMax)))];
  const out: SkusBody = { channel, skus };
  if (body.near !== undefined) out.near = geoPoint(body.near, 'near');
  return out;
}

/** GET /v1/availability/{sku}?channel=web[&lat=&lon=] */
export function parseSkuQuery(sku: string, query: Map<string, string>): { sku: string; channel: string; near?: GeoPoint } {
  const skuId = id(sku, 'the sku in the path', skuLengthMax);
  const channel = query.get('channel');
  if (!channel) throw bad('query parameter "channel" is missing: e.g. ?channel=web');
  const out: { sku: string; channel: string; near?: GeoPoint } = { sku: skuId, channel: id(channel, 'channel', channelIdLengthMax) };
  const lat = query.get('lat');
  const lon = query.get('lon');
  if (lat !== undefined || lon !== undefined) out.near = geoPoint({ lat: lat === undefined ? undefined : Number(lat), lon: lon === undefined ? undefined : Number(lon) }, 'lat/lon');
  return out;
}

export function parseLocationStatus(input: unknown): 'active' | 'paused' {
  const body = requireObject(input, 'the body');
  if (body.status !== 'active' && body.status !== 'paused') throw bad(`status is ${shown(body.status)}: expected "active" or "paused"`);
  return body.status;
}
