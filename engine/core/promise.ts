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
// local times; offsets change only on hour boundaries in the zones retail runs in. Bounded: the
// cache is dropped when it reaches offsetCacheMax entries.
const offsetCache = new Map<string, Map<number, number>>();
const offsetCacheMax = 100_000;

function offsetMs(ms: number, timeZone: string): number {
  const hour = Math.floor(ms / hourMs);
  let zone = offsetCache.get(timeZone);
  if (!zone) offsetCache.set(timeZone, (zone = new Map()));
  let offset = zone.get(hour);
  if (offset === undefined) {
    const at = hour * hourMs;
    const parts: Record<string, number> = {};
    for (const part of formatter(timeZone).formatToParts(at)) if (part.type !== 'literal') parts[part.type] = Number(part.value);
    offset = Date.UTC(parts.year!, parts.month! - 1, parts.day!, parts.hour!, parts.minute!) - at;
    if (zone.size >= offsetCacheMax) zone.clear();
    zone.set(hour, offset);
  }
  return offset;
}

export function localParts(ms: number, timeZone: string): LocalParts {
  const d = new Date(ms + offsetMs(ms, timeZone));
  return { year: d.getUTCFullYear(), month: d.getUTCMonth() + 1, day: d.getUTCDate(), hour: d.getUTCHours(), minute: d.getUTCMinutes(), weekday: d.getUTCDay() };
}

/** Local wall-clock time in `timeZone` → ms since the epoch (the earlier instant in a DST overlap). */
export function zonedToUtc(year: number, month: number, day: number, minutesOfDay: number, timeZone: string): number {
  const wall = Date.UTC(year, month - 1, day, 0, minutesOfDay);
  // Two passes converge on the offset in force at that wall time, across DST changes.
  let guess = wall;
  for (let i = 0; i < 2; i++) {
    const p = localParts(guess, timeZone);
    const shown = Date.UTC(p.year, p.month - 1, p.day, p.hour, p.minute);
    guess += wall - shown;
  }
  return guess;
}

interface LocalDate {
  year: number;
  month: number;
  day: number;
  weekday: number;
}

function addDays(date: LocalDate, days: number): LocalDate {
  const d = new Date(Date.UTC(date.year, date.month - 1, date.day) + days * dayMs);
  return { year: d.getUTCFullYear(), month: d.getUTCMonth() + 1, day: d.getUTCDate(), weekday: d.getUTCDay() };
}

/** The next date after `date` that is not a Sunday. */
function nextWorkingDay(date: LocalDate): LocalDate {
  let d = addDays(date, 1);
  while (d.weekday === 0) d = addDays(d, 1);
  return d;
}

export function cutoffMinutes(cutoffLocal: string): number {
  return Number(cutoffLocal.slice(0, 2)) * 60 + Number(cutoffLocal.slice(3, 5));
}

/** When an order taken at `orderMs` is ready at a location (ready to ship or to collect). */
export function readyAtMs(location: { processingMinutes: number; cutoffLocal: string; timeZone?: string }, orderMs: number, defaultTimeZone: string): number {
  const tz = location.timeZone ?? defaultTimeZone;
  const p = localParts(orderMs, tz);
  const minutes = p.hour * 60 + p.minute;
  if (p.weekday !== 0 && minutes < cutoffMinutes(location.cutoffLocal)) {
    // A night order waits for the team: a store cannot have a basket ready at 04:00.
    const startMs = minutes < openingMinutes ? zonedToUtc(p.year, p.month, p.day, openingMinutes, tz) : orderMs;
    return startMs + location.processingMinutes * 60_000;
  }
  const next = nextWorkingDay(p);
  return zonedToUtc(next.year, next.month, next.day, openingMinutes, tz) + location.processingMinutes * 60_000;
}

/** When a parcel ready at `readyMs` is delivered after `transitDays` delivery days. */
export function deliveredAtMs(readyMs: number, transitDays: number, timeZone: string): number {
  const p = localParts(readyMs, timeZone);
  let date: LocalDate = p;
  if (transitDays === 0) {
    if (p.weekday === 0 || p.hour * 60 + p.minute >= sameDayLastPickupMinutes) date = nextWorkingDay(p);
  } else {
    for (let i = 0; i < transitDays; i++) date = nextWorkingDay(date);
  }
  return zonedToUtc(date.year, date.month, date.day, deliveryRoundEndMinutes, timeZone);
}

/** A location's store-opening time on the day `ms` falls in, or the next working day if past it. */
export function arrivalReadyAtMs(arrivalDayMs: number, processingMinutes: number, timeZone: string): number {
  const p = localParts(arrivalDayMs, timeZone);
  const day = p.weekday === 0 ? nextWorkingDay(p) : p;
  return zonedToUtc(day.year, day.month, day.day, openingMinutes, timeZone) + processingMinutes * 60_000;
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
