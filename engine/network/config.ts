// The network configuration: locations, channels (with their sourcing rules) and carriers, from a
// JSON or YAML file. Every problem is reported at once with its path and the value found, e.g.
// `locations[3].cutoffLocal: expected "HH:MM", got "25:00"`, so a bad file is fixed in one pass.
// A reload that fails validation keeps the previous configuration (watchNetworkFile).

import { readFileSync, watch, type FSWatcher } from 'node:fs';
import { basename, dirname, extname } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { locationTypes, type BufferRule, type Channel, type Location, type LocationType } from '../core/types.js';

export interface DistanceBand {
  /** Upper bound of the band, km (inclusive). */
  maxKm: number;
  days: number;
}

export interface CarrierService {
  id: string;
  speed: 'standard' | 'express';
  /** Ascending maxKm; a distance beyond the last band is not served by this service. */
  transitDaysByBand: DistanceBand[];
  /** Price of one shipment. */
  costCents: number;
}

export interface Carrier {
  id: string;
  name: string;
  services: CarrierService[];
}

export interface SourcingRules {
  /** Weights ranking locations when a basket is split (higher weight: that criterion counts more). */
  distance: number;
  shipments: number;
  cost: number;
  priority: number;
  depth: number;
  /** Lower is preferred, e.g. { dc: 0, store: 1 }: DCs ship before stores. */
  locationPriority: Partial<Record<LocationType, number>>;
  /** Express delivery: a ship-from-store store at most this far from the destination. */
  expressMaxKm: number;
  pickupRadiusKmDefault: number;
  pickupMaxDefault: number;
}

export interface NetworkLocation extends Location {
  name: string;
  city?: string;
}

export interface NetworkChannel extends Channel {
  name?: string;
  sourcing: SourcingRules;
}

export interface NetworkConfig {
  version: string;
  /** Default IANA time zone of locations that name none. */
  timeZone: string;
  locations: NetworkLocation[];
  channels: NetworkChannel[];
  carriers: Carrier[];
  /** DC → store transfers for pickup after transfer. */
  transfer: { transitDaysByBand: DistanceBand[] };
}

export class NetworkConfigError extends Error {
  override name = 'NetworkConfigError';
  constructor(
    readonly source: string,
    readonly problems: string[],
  ) {
    super(`network configuration ${source} is invalid (${problems.length} problem${problems.length === 1 ? '' : 's'}):\n  ${problems.join('\n  ')}`);
  }
}

/** Bounds that keep a configuration (and so every request's work) finite. */
export const locationsMax = 5_000;
export const channelsMax = 64;
export const carriersMax = 32;
export const bandsMax = 16;

const defaultSourcing: SourcingRules = {
  distance: 1,
  shipments: 10,
  cost: 1,
  priority: 5,
  depth: 1,
  locationPriority: { dc: 0, '3pl': 0, dsv: 1, store: 2 },
  expressMaxKm: 30,
  pickupRadiusKmDefault: 25,
  pickupMaxDefault: 3,
};

type Obj = Record<string, unknown>;

class Checker {
  readonly problems: string[] = [];

  fail(path: string, expected: string, got: unknown): undefined {
    let shown: string;
    try {
      shown = got === undefined ? 'nothing' : JSON.stringify(got);
    } catch {
      shown = String(got);
    }
    if (shown.length > 60) shown = `${shown.slice(0, 57)}...`;
    this.problems.push(`${path}: expected ${expected}, got ${shown}`);
    return undefined;
  }

  obj(v: unknown, path: string): Obj | undefined {
    return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Obj) : this.fail(path, 'an object', v);
  }

  arr(v: unknown, path: string, max: number): unknown[] | undefined {
    if (!Array.isArray(v)) return this.fail(path, 'a list', v);
    if (v.length > max) return this.fail(path, `at most ${max} entries`, `${v.length} entries`);
    return v;
  }

  str(v: unknown, path: string, pattern = /^[A-Za-z0-9_.:-]{1,64}$/, expected = 'an id of 1-64 letters, digits, _ . : or -'): string | undefined {
    return typeof v === 'string' && pattern.test(v) ? v : this.fail(path, expected, v);
  }

  text(v: unknown, path: string): string | undefined {
    return typeof v === 'string' && v.length > 0 && v.length <= 200 ? v : this.fail(path, 'a non-empty text of at most 200 characters', v);
  }

  num(v: unknown, path: string, min: number, max: number, integer = false): number | undefined {
    const ok = typeof v === 'number' && Number.isFinite(v) && v >= min && v <= max && (!integer || Number.isInteger(v));
    return ok ? (v as number) : this.fail(path, `${integer ? 'an integer' : 'a number'} from ${min} to ${max}`, v);
  }

  bool(v: unknown, path: string): boolean | undefined {
    return typeof v === 'boolean' ? v : this.fail(path, 'true or false', v);
  }

  timeZone(v: unknown, path: string): string | undefined {
    if (typeof v !== 'string') return this.fail(path, 'an IANA time zone such as "Europe/Paris"', v);
    try {
      new Intl.DateTimeFormat('en-US', { timeZone: v });
      return v;
    } catch {
      return this.fail(path, 'an IANA time zone such as "Europe/Paris"', v);
    }
  }

  bands(v: unknown, path: string): DistanceBand[] | undefined {
    const list = this.arr(v, path, bandsMax);
    if (!list) return undefined;
    if (list.length === 0) return this.fail(path, 'at least one distance band', v);
    const out: DistanceBand[] = [];
    list.forEach((b, i) => {
      const o = this.obj(b, `${path}[${i}]`);
      if (!o) return;
      const maxKm = this.num(o.maxKm, `${path}[${i}].maxKm`, 0, 40_000);
      const days = this.num(o.days, `${path}[${i}].days`, 0, 60, true);
      if (maxKm === undefined || days === undefined) return;
      const previous = out[out.length - 1];
      if (previous && maxKm <= previous.maxKm) this.fail(`${path}[${i}].maxKm`, `a distance above the previous band's ${previous.maxKm}`, maxKm);
      out.push({ maxKm, days });
    });
    return out;
  }
}

function parseLocation(c: Checker, raw: unknown, path: string, timeZone: string): NetworkLocation | undefined {
  const o = c.obj(raw, path);
  if (!o) return undefined;
  const id = c.str(o.id, `${path}.id`);
  const name = c.text(o.name ?? o.id, `${path}.name`);
  const type = (locationTypes as readonly unknown[]).includes(o.type) ? (o.type as LocationType) : c.fail(`${path}.type`, `one of ${locationTypes.join(', ')}`, o.type);
  const lat = c.num(o.lat, `${path}.lat`, -90, 90);
  const lon = c.num(o.lon, `${path}.lon`, -180, 180);
  const caps = c.obj(o.capabilities, `${path}.capabilities`);
  const ship = caps ? c.bool(caps.ship ?? false, `${path}.capabilities.ship`) : undefined;
  const pickup = caps ? c.bool(caps.pickup ?? false, `${path}.capabilities.pickup`) : undefined;
  const shipFromStore = caps ? c.bool(caps.shipFromStore ?? false, `${path}.capabilities.shipFromStore`) : undefined;
  const processingMinutes = c.num(o.processingMinutes, `${path}.processingMinutes`, 0, 7 * 24 * 60, true);
  const cutoffLocal = typeof o.cutoffLocal === 'string' && /^([01]\d|2[0-3]):[0-5]\d$/.test(o.cutoffLocal) ? o.cutoffLocal : c.fail(`${path}.cutoffLocal`, '"HH:MM" (00:00 to 23:59)', o.cutoffLocal);
  const tz = o.timeZone === undefined ? timeZone : c.timeZone(o.timeZone, `${path}.timeZone`);
  const capacity = o.dailyCapacityOrders === undefined ? undefined : c.num(o.dailyCapacityOrders, `${path}.dailyCapacityOrders`, 1, 10_000_000, true);
  const status = o.status === undefined ? 'active' : o.status === 'active' || o.status === 'paused' ? o.status : c.fail(`${path}.status`, '"active" or "paused"', o.status);
  if (caps && type === 'store' && ship) c.fail(`${path}.capabilities.ship`, 'false for a store (a store that ships parcels sets shipFromStore)', ship);
  if (id === undefined || name === undefined || type === undefined || lat === undefined || lon === undefined || ship === undefined || pickup === undefined || shipFromStore === undefined) return undefined;
  if (processingMinutes === undefined || cutoffLocal === undefined || tz === undefined || status === undefined) return undefined;
  return {
    id,
    name,
    ...(typeof o.city === 'string' ? { city: o.city } : {}),
    type,
    lat,
    lon,
    capabilities: { ship, pickup, shipFromStore },
    processingMinutes,
    cutoffLocal,
    timeZone: tz,
    ...(capacity !== undefined ? { dailyCapacityOrders: capacity } : {}),
    status,
  };
}

function parseBuffer(c: Checker, raw: unknown, path: string): BufferRule | undefined {
  const o = c.obj(raw, path);
  if (!o) return undefined;
  const units = c.num(o.units ?? 0, `${path}.units`, 0, 1_000_000, true);
  const percent = c.num(o.percent ?? 0, `${path}.percent`, 0, 100);
  return units === undefined || percent === undefined ? undefined : { units, percent };
}

function parseChannel(c: Checker, raw: unknown, path: string, locationIds: Set<string>): NetworkChannel | undefined {
  const o = c.obj(raw, path);
  if (!o) return undefined;
  const id = c.str(o.id, `${path}.id`);
  const list = c.arr(o.locations, `${path}.locations`, locationsMax);
  const locations: string[] = [];
  const listed = new Set<string>();
  list?.forEach((l, i) => {
    if (typeof l !== 'string' || !locationIds.has(l)) c.fail(`${path}.locations[${i}]`, 'the id of a location of this file', l);
    else if (listed.has(l)) c.fail(`${path}.locations[${i}]`, 'a location not already listed in this channel', l);
    else {
      listed.add(l);
      locations.push(l);
    }
  });
  const buffers: Partial<Record<LocationType, BufferRule>> = {};
  if (o.bufferByLocationType !== undefined) {
    const b = c.obj(o.bufferByLocationType, `${path}.bufferByLocationType`);
    for (const [type, rule] of Object.entries(b ?? {})) {
      if (!(locationTypes as readonly string[]).includes(type)) c.fail(`${path}.bufferByLocationType.${type}`, `a location type (${locationTypes.join(', ')})`, type);
      else {
        const parsed = parseBuffer(c, rule, `${path}.bufferByLocationType.${type}`);
        if (parsed) buffers[type as LocationType] = parsed;
      }
    }
  }
  const minThreshold = c.num(o.minThreshold ?? 0, `${path}.minThreshold`, 0, 1_000_000, true);
  const atpCap = o.atpCap === undefined ? undefined : c.num(o.atpCap, `${path}.atpCap`, 1, 1_000_000_000, true);
  const s = o.sourcing === undefined ? {} : (c.obj(o.sourcing, `${path}.sourcing`) ?? {});
  const weight = (k: keyof SourcingRules) => c.num(s[k] ?? defaultSourcing[k], `${path}.sourcing.${k}`, 0, 1000);
  const priorities: Partial<Record<LocationType, number>> = { ...defaultSourcing.locationPriority };
  if (s.locationPriority !== undefined) {
    const p = c.obj(s.locationPriority, `${path}.sourcing.locationPriority`);
    for (const [type, value] of Object.entries(p ?? {})) {
      if (!(locationTypes as readonly string[]).includes(type)) c.fail(`${path}.sourcing.locationPriority.${type}`, 'a location type', type);
      else {
        const n = c.num(value, `${path}.sourcing.locationPriority.${type}`, 0, 100, true);
        if (n !== undefined) priorities[type as LocationType] = n;
      }
    }
  }
  const sourcing: SourcingRules = {
    distance: weight('distance') ?? 0,
    shipments: weight('shipments') ?? 0,
    cost: weight('cost') ?? 0,
    priority: weight('priority') ?? 0,
    depth: weight('depth') ?? 0,
    locationPriority: priorities,
    expressMaxKm: c.num(s.expressMaxKm ?? defaultSourcing.expressMaxKm, `${path}.sourcing.expressMaxKm`, 0, 500) ?? 0,
    pickupRadiusKmDefault: c.num(s.pickupRadiusKmDefault ?? defaultSourcing.pickupRadiusKmDefault, `${path}.sourcing.pickupRadiusKmDefault`, 0.1, 500) ?? 0,
    pickupMaxDefault: c.num(s.pickupMaxDefault ?? defaultSourcing.pickupMaxDefault, `${path}.sourcing.pickupMaxDefault`, 1, 20, true) ?? 1,
  };
  if (id === undefined || minThreshold === undefined || !list) return undefined;
  return { id, ...(typeof o.name === 'string' ? { name: o.name } : {}), locations, bufferByLocationType: buffers, minThreshold, ...(atpCap !== undefined ? { atpCap } : {}), sourcing };
}

function parseCarrier(c: Checker, raw: unknown, path: string): Carrier | undefined {
  const o = c.obj(raw, path);
  if (!o) return undefined;
  const id = c.str(o.id, `${path}.id`);
  const name = c.text(o.name ?? o.id, `${path}.name`);
  const list = c.arr(o.services, `${path}.services`, 8);
  const services: CarrierService[] = [];
  list?.forEach((raw, i) => {
    const p = `${path}.services[${i}]`;
    const s = c.obj(raw, p);
    if (!s) return;
    const sid = c.str(s.id, `${p}.id`);
    const speed = s.speed === 'standard' || s.speed === 'express' ? s.speed : c.fail(`${p}.speed`, '"standard" or "express"', s.speed);
    const bands = c.bands(s.transitDaysByBand, `${p}.transitDaysByBand`);
    const costCents = c.num(s.costCents, `${p}.costCents`, 0, 1_000_000, true);
    if (sid !== undefined && services.some((other) => other.id === sid)) c.fail(`${p}.id`, `a service id not already used by carrier ${JSON.stringify(o.id)}`, sid);
    else if (sid !== undefined && speed !== undefined && bands !== undefined && costCents !== undefined) services.push({ id: sid, speed, transitDaysByBand: bands, costCents });
  });
  if (list && list.length === 0) c.fail(`${path}.services`, 'at least one service', []);
  return id === undefined || name === undefined ? undefined : { id, name, services };
}

/** Duplicate ids, with the indexes of the file (invalid entries included, so paths stay true). */
function unique(c: Checker, raw: unknown, path: string): Set<string> {
  const seen = new Map<string, number>();
  if (!Array.isArray(raw)) return new Set();
  raw.forEach((item: unknown, i) => {
    const id = typeof item === 'object' && item !== null ? (item as Obj).id : undefined;
    if (typeof id !== 'string') return;
    const first = seen.get(id);
    if (first !== undefined) c.fail(`${path}[${i}].id`, `an id not already used (by ${path}[${first}])`, id);
    else seen.set(id, i);
  });
  return new Set(seen.keys());
}

/** Validates a parsed file; throws NetworkConfigError listing every problem. */
export function parseNetworkConfig(input: unknown, source: string): NetworkConfig {
  const c = new Checker();
  const o = c.obj(input, '(top level)') ?? {};
  const version = o.version === undefined ? '1' : typeof o.version === 'string' || typeof o.version === 'number' ? String(o.version) : (c.fail('version', 'a text', o.version) ?? '1');
  const timeZone = c.timeZone(o.timeZone ?? 'UTC', 'timeZone') ?? 'UTC';
  const locations = (c.arr(o.locations, 'locations', locationsMax) ?? []).map((l, i) => parseLocation(c, l, `locations[${i}]`, timeZone)).filter((l): l is NetworkLocation => l !== undefined);
  if (Array.isArray(o.locations) && o.locations.length === 0) c.fail('locations', 'at least one location', []);
  // Channels are checked against every declared id, so one bad location is one problem, not many.
  const ids = unique(c, o.locations, 'locations');
  const channels = (c.arr(o.channels, 'channels', channelsMax) ?? []).map((ch, i) => parseChannel(c, ch, `channels[${i}]`, ids)).filter((ch): ch is NetworkChannel => ch !== undefined);
  if (Array.isArray(o.channels) && o.channels.length === 0) c.fail('channels', 'at least one channel', []);
  unique(c, o.channels, 'channels');
  const carriers = (c.arr(o.carriers ?? [], 'carriers', carriersMax) ?? []).map((ca, i) => parseCarrier(c, ca, `carriers[${i}]`)).filter((ca): ca is Carrier => ca !== undefined);
  unique(c, o.carriers, 'carriers');
  const t = o.transfer === undefined ? { transitDaysByBand: [{ maxKm: 40_000, days: 2 }] } : c.obj(o.transfer, 'transfer');
  const transferBands = t ? c.bands(t.transitDaysByBand, 'transfer.transitDaysByBand') : undefined;
  if (c.problems.length > 0) throw new NetworkConfigError(source, c.problems);
  return { version, timeZone, locations, channels, carriers, transfer: { transitDaysByBand: transferBands ?? [] } };
}

/** Parses and validates the text of a JSON or YAML file (YAML by a .yaml/.yml name, else JSON). */
export function parseNetworkText(text: string, path: string): NetworkConfig {
  const ext = extname(path).toLowerCase();
  const yaml = ext === '.yaml' || ext === '.yml';
  let parsed: unknown;
  try {
    parsed = yaml ? parseYaml(text) : JSON.parse(text);
  } catch (error) {
    throw new NetworkConfigError(path, [`not valid ${yaml ? 'YAML' : 'JSON'}: ${error instanceof Error ? error.message : String(error)}`]);
  }
  return parseNetworkConfig(parsed, path);
}

function readText(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (error) {
    throw new NetworkConfigError(path, [`cannot read the file: ${error instanceof Error ? error.message : String(error)}`]);
  }
}

/** Reads and validates a JSON or YAML file (by extension; anything else is read as JSON). */
export function loadNetworkFile(path: string): NetworkConfig {
  return parseNetworkText(readText(path), path);
}

/** Editors write files in several steps: wait this long after the last change before reading. */
export const reloadDebounceMs = 200;

/**
 * Calls onReload with each new valid configuration after the file changes; a file that does not
 * validate (or is missing for a moment) calls onError and leaves the caller on its previous
 * configuration. The folder is watched rather than the file, so editors that replace the file
 * (write a temporary file, rename it over) or delete and recreate it are followed. A change that
 * leaves the text as it was at the last good load reloads nothing.
 */
export function watchNetworkFile(path: string, onReload: (network: NetworkConfig) => void, onError: (error: Error) => void): { close(): void } {
  const name = basename(path);
  let timer: NodeJS.Timeout | undefined;
  let lastGoodText: string | undefined;
  let closed = false;
  const reload = () => {
    if (closed) return;
    try {
      const text = readText(path);
      if (text === lastGoodText) return;
      const network = parseNetworkText(text, path);
      lastGoodText = text;
      onReload(network);
    } catch (error) {
      onError(error instanceof Error ? error : new Error(String(error)));
    }
  };
  const watcher: FSWatcher = watch(dirname(path), { persistent: false }, (_event, file) => {
    // Some platforms omit the name: then any change in the folder is a candidate.
    if (file !== null && file !== name) return;
    clearTimeout(timer);
    timer = setTimeout(reload, reloadDebounceMs);
  });
  watcher.on('error', (error) => onError(new NetworkConfigError(path, [`cannot watch the file: ${error.message}`])));
  return {
    close: () => {
      closed = true;
      clearTimeout(timer);
      watcher.close();
    },
  };
}
