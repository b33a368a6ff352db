// Promise dates: when a location has an order ready, and when a carrier delivers it. Wall-clock
// rules are in each location's IANA time zone (DST included) through Intl; all results are ms
// since the epoch. Pure functions, no I/O.
//
// The rules, as a retailer's operations team states them:
// - Locations process orders Monday to Saturday from opening (08:00 local). An order taken on a
//   working day before the location's cut-off starts processing at once (at opening if it came in
//   the night); otherwise it starts on the next working day at opening. Ready = start + processing
//   time. (No holidays: a calendar per location is not configured yet.)
// - Carriers deliver Monday to Saturday, by the end of the delivery round (20:00 local).
//   `transitDays` counts delivery days after the ready day: 1 = the next delivery day.
// - Same-day (transitDays 0, express couriers) needs the parcel ready before the last pick-up
//   (18:00 local); later, it goes on the next delivery day.

const openingMinutes = 8 * 60;
const deliveryRoundEndMinutes = 20 * 60;
const sameDayLastPickupMinutes = 18 * 60;
const dayMs = 86_400_000;

export interface LocalParts {
  year: number;
  month: number;
  day: number;
  hour: number;
  minute: number;
  /** 0 = Sunday … 6 = Saturday */
  weekday: number;
}

const formatters = new Map<string, Intl.DateTimeFormat>();

function formatter(timeZone: string): Intl.DateTimeFormat {
  let f = formatters.get(timeZone);
  if (!f) {
    f = new Intl.DateTimeFormat('en-US', { timeZone, hourCycle: 'h23', year: 'numeric', month: 'numeric', day: 'numeric', hour: 'numeric', minute: 'numeric' });
    formatters.set(timeZone, f);
  }
  return f;
}

const hourMs = 3_600_000;
// UTC offsets by (zone, hour): Intl is slow (microseconds a call) and a basket asks for dozens of
// local times; offsets change only on hour boundaries in the zones retail runs in. Each zone keeps
// the offsets of `offsetSlots` hours, direct-mapped by hour (a slot holds the last hour that fell
// in it): two array reads where a Map of hours cost a fifth of a basket's promise dates. Bounded
// whatever the instants asked; the zones are those of the configuration.
const offsetSlots = 4096;

interface ZoneOffsets {
  /** The hour (since the epoch) whose offset each slot holds; NaN: none yet. */
  hours: Float64Array;
  offsets: Float64Array;
}

const zoneOffsets = new Map<string, ZoneOffsets>();
// The zone asked last: a network has one or a few, and a basket asks the same one in a row.
let lastZoneName: string | undefined;
let lastZone: ZoneOffsets | undefined;

function offsetMs(ms: number, timeZone: string): number {
  const hour = Math.floor(ms / hourMs);
  let zone = timeZone === lastZoneName ? lastZone : undefined;
  if (zone === undefined) {
    zone = zoneOffsets.get(timeZone);
    if (zone === undefined) zoneOffsets.set(timeZone, (zone = { hours: new Float64Array(offsetSlots).fill(Number.NaN), offsets: new Float64Array(offsetSlots) }));
    lastZoneName = timeZone;
    lastZone = zone;
  }
  const slot = hour & (offsetSlots - 1);
  if (zone.hours[slot] === hour) return zone.offsets[slot]!;
  const at = hour * hourMs;
  const parts: Record<string, number> = {};
  for (const part of formatter(timeZone).formatToParts(at)) if (part.type !== 'literal') parts[part.type] = Number(part.value);
  const offset = Date.UTC(parts.year!, parts.month! - 1, parts.day!, parts.hour!, parts.minute!) - at;
  zone.hours[slot] = hour;
  zone.offsets[slot] = offset;
  return offset;
}

export function localParts(ms: number, timeZone: string): LocalParts {
  const d = new Date(ms + offsetMs(ms, timeZone));
  return { year: d.getUTCFullYear(), month: d.getUTCMonth() + 1, day: d.getUTCDate(), hour: d.getUTCHours(), minute: d.getUTCMinutes(), weekday: d.getUTCDay() };
}

// Calendar arithmetic runs on local day numbers (days since 1970-01-01 in the zone's wall clock),
// so a promise costs a few offset look-ups and no Date objects.

/**
 * new Date(ms).toISOString(), three times faster (a basket's answer writes one per option). Days
 * to a civil date as in H. Hinnant's chrono algorithms; outside years 1970-9999 Date does it.
 */
export function isoUtc(ms: number): string {
  if (!(ms >= 0 && ms < 253_402_300_800_000) || !Number.isInteger(ms)) return new Date(ms).toISOString();
  const days = Math.floor(ms / dayMs);
  let rest = ms - days * dayMs;
  const z = days + 719_468;
  const era = Math.floor(z / 146_097);
  const dayOfEra = z - era * 146_097;
  const yearOfEra = Math.floor((dayOfEra - Math.floor(dayOfEra / 1460) + Math.floor(dayOfEra / 36_524) - Math.floor(dayOfEra / 146_096)) / 365);
  const dayOfYear = dayOfEra - (365 * yearOfEra + Math.floor(yearOfEra / 4) - Math.floor(yearOfEra / 100));
  const monthFromMarch = Math.floor((5 * dayOfYear + 2) / 153);
  const day = dayOfYear - Math.floor((153 * monthFromMarch + 2) / 5) + 1;
  const month = monthFromMarch < 10 ? monthFromMarch + 3 : monthFromMarch - 9;
  const year = yearOfEra + era * 400 + (month <= 2 ? 1 : 0);
  const hour = Math.floor(rest / 3_600_000);
  rest -= hour * 3_600_000;
  const minute = Math.floor(rest / 60_000);
  rest -= minute * 60_000;
  const second = Math.floor(rest / 1000);
  const milli = rest - second * 1000;
  return `${year}-${two(month)}-${two(day)}T${two(hour)}:${two(minute)}:${two(second)}.${milli < 10 ? '00' : milli < 100 ? '0' : ''}${milli}Z`;
}

const two = (n: number) => (n < 10 ? `0${n}` : `${n}`);

/** The local day number of an instant in `timeZone`. */
export function localDay(ms: number, timeZone: string): number {
  return Math.floor((ms + offsetMs(ms, timeZone)) / dayMs);
}

/** Minutes since local midnight of an instant in `timeZone`. */
function localMinutes(ms: number, timeZone: string): number {
  const wall = ms + offsetMs(ms, timeZone);
  return Math.floor((wall - Math.floor(wall / dayMs) * dayMs) / 60_000);
}

/** 0 = Sunday … 6 = Saturday; day 0 (1 Jan 1970) was a Thursday. */
function weekdayOf(day: number): number {
  return (((day + 4) % 7) + 7) % 7;
}

/** The next day after `day` that is not a Sunday. */
function nextWorkingDay(day: number): number {
  return weekdayOf(day + 1) === 0 ? day + 2 : day + 1;
}

/** Wall-clock time on a local day → ms since the epoch (the earlier instant in a DST overlap). */
function localDayToUtc(day: number, minutesOfDay: number, timeZone: string): number {
  const wall = day * dayMs + minutesOfDay * 60_000;
  // Two passes converge on the offset in force at that wall time, across DST changes.
  return wall - offsetMs(wall - offsetMs(wall, timeZone), timeZone);
}

/** Local wall-clock time in `timeZone` → ms since the epoch (the earlier instant in a DST overlap). */
export function zonedToUtc(year: number, month: number, day: number, minutesOfDay: number, timeZone: string): number {
  return localDayToUtc(Date.UTC(year, month - 1, day) / dayMs, minutesOfDay, timeZone);
}

export function cutoffMinutes(cutoffLocal: string): number {
  return Number(cutoffLocal.slice(0, 2)) * 60 + Number(cutoffLocal.slice(3, 5));
}

// Cut-offs are a handful of "HH:MM" strings from the configuration, asked for every location of
// every basket: parsed once each.
const cutoffs = new Map<string, number>();

function cutoffOf(cutoffLocal: string): number {
  let minutes = cutoffs.get(cutoffLocal);
  if (minutes === undefined) {
    minutes = cutoffMinutes(cutoffLocal);
    // Bounded like any cache of caller strings, though the configuration's are few.
    if (cutoffs.size >= 1_000) cutoffs.clear();
    cutoffs.set(cutoffLocal, minutes);
  }
  return minutes;
}

/** When an order taken at `orderMs` is ready at a location (ready to ship or to collect). */
export function readyAtMs(location: { processingMinutes: number; cutoffLocal: string; timeZone?: string }, orderMs: number, defaultTimeZone: string): number {
  const tz = location.timeZone ?? defaultTimeZone;
  // localDay and localMinutes of the order, from one offset.
  const wall = orderMs + offsetMs(orderMs, tz);
  const day = Math.floor(wall / dayMs);
  const minutes = Math.floor((wall - day * dayMs) / 60_000);
  if (weekdayOf(day) !== 0 && minutes < cutoffOf(location.cutoffLocal)) {
    // A night order waits for the team: a store cannot have a basket ready at 04:00.
    const startMs = minutes < openingMinutes ? localDayToUtc(day, openingMinutes, tz) : orderMs;
    return startMs + location.processingMinutes * 60_000;
  }
  return localDayToUtc(nextWorkingDay(day), openingMinutes, tz) + location.processingMinutes * 60_000;
}

/** When a parcel ready at `readyMs` is delivered after `transitDays` delivery days. */
export function deliveredAtMs(readyMs: number, transitDays: number, timeZone: string): number {
  let day = localDay(readyMs, timeZone);
  if (transitDays === 0) {
    if (weekdayOf(day) === 0 || localMinutes(readyMs, timeZone) >= sameDayLastPickupMinutes) day = nextWorkingDay(day);
  } else {
    for (let i = 0; i < transitDays; i++) day = nextWorkingDay(day);
  }
  return localDayToUtc(day, deliveryRoundEndMinutes, timeZone);
}

/**
 * When a transfer delivered on the local day of `arrivalDayMs` can be collected: the truck comes
 * before opening, so at opening + the store's processing time (the next working day on a Sunday).
 */
export function arrivalReadyAtMs(arrivalDayMs: number, processingMinutes: number, timeZone: string): number {
  const day = localDay(arrivalDayMs, timeZone);
  return localDayToUtc(weekdayOf(day) === 0 ? nextWorkingDay(day) : day, openingMinutes, timeZone) + processingMinutes * 60_000;
}

export function haversineKm(a: { lat: number; lon: number }, b: { lat: number; lon: number }): number {
  const rad = Math.PI / 180;
  const dLat = (b.lat - a.lat) * rad;
  const dLon = (b.lon - a.lon) * rad;
  const h = Math.sin(dLat / 2) ** 2 + Math.cos(a.lat * rad) * Math.cos(b.lat * rad) * Math.sin(dLon / 2) ** 2;
  return 2 * 6371 * Math.asin(Math.min(1, Math.sqrt(h)));
}

/** Transit days for a distance, or undefined beyond the last band. */
export function bandDays(bands: readonly { maxKm: number; days: number }[], km: number): number | undefined {
  for (const band of bands) if (km <= band.maxKm) return band.days;
  return undefined;
}
