// Promise dates, with every expected time worked out by hand from the rules in
// engine/core/promise.ts (Europe/Paris is UTC+1 in November, UTC+2 from 29 March 2026).

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { bandDays, deliveredAtMs, haversineKm, isoUtc, readyAtMs, zonedToUtc } from '../../engine/core/promise.js';

const dc = { processingMinutes: 240, cutoffLocal: '14:00', timeZone: 'Europe/Paris' };
const utc = (iso: string) => Date.parse(iso);

describe('ready time at a location', () => {
  it('starts processing at once before the cut-off', () => {
    // Tuesday 24 Nov 2026, 13:59 Paris = 12:59Z → ready 4 h later.
    expect(readyAtMs(dc, utc('2026-11-24T12:59:00Z'), 'UTC')).toBe(utc('2026-11-24T16:59:00Z'));
  });

  it('waits for the next working day at opening after the cut-off', () => {
    // 14:01 Paris → Wednesday 08:00 Paris (07:00Z) + 4 h.
    expect(readyAtMs(dc, utc('2026-11-24T13:01:00Z'), 'UTC')).toBe(utc('2026-11-25T11:00:00Z'));
  });

  it('skips Sunday: an order on Saturday after the cut-off or on Sunday is processed on Monday', () => {
    expect(readyAtMs(dc, utc('2026-11-28T14:00:00Z'), 'UTC')).toBe(utc('2026-11-30T11:00:00Z'));
    expect(readyAtMs(dc, utc('2026-11-29T09:00:00Z'), 'UTC')).toBe(utc('2026-11-30T11:00:00Z'));
  });

  it('follows the change to summer time', () => {
    // Saturday 28 Mar 2026 15:00 Paris (UTC+1); Monday 30 Mar 08:00 Paris is 06:00Z (UTC+2).
    expect(readyAtMs(dc, utc('2026-03-28T14:00:00Z'), 'UTC')).toBe(utc('2026-03-30T10:00:00Z'));
  });

  it('uses the network time zone when the location names none', () => {
    // 13:30 in UTC is before a 14:00 cut-off in UTC, but 14:30 in Paris is after it.
    const noZone = { processingMinutes: 60, cutoffLocal: '14:00' };
    expect(readyAtMs(noZone, utc('2026-11-24T13:30:00Z'), 'UTC')).toBe(utc('2026-11-24T14:30:00Z'));
    expect(readyAtMs(noZone, utc('2026-11-24T13:30:00Z'), 'Europe/Paris')).toBe(utc('2026-11-25T08:00:00Z'));
  });
});

describe('delivery time', () => {
  it('delivers by 20:00 local after the transit days, never on Sunday', () => {
    expect(deliveredAtMs(utc('2026-11-24T16:59:00Z'), 1, 'Europe/Paris')).toBe(utc('2026-11-25T19:00:00Z'));
    // Ready Friday: Saturday is day 1, Monday day 2.
    expect(deliveredAtMs(utc('2026-11-27T10:00:00Z'), 2, 'Europe/Paris')).toBe(utc('2026-11-30T19:00:00Z'));
  });

  it('delivers the same day only when ready before the last pick-up (18:00)', () => {
    expect(deliveredAtMs(utc('2026-11-24T16:00:00Z'), 0, 'Europe/Paris')).toBe(utc('2026-11-24T19:00:00Z'));
    expect(deliveredAtMs(utc('2026-11-24T17:30:00Z'), 0, 'Europe/Paris')).toBe(utc('2026-11-25T19:00:00Z'));
  });

  it('converts local wall time across DST', () => {
    expect(zonedToUtc(2026, 3, 29, 20 * 60, 'Europe/Paris')).toBe(utc('2026-03-29T18:00:00Z'));
    expect(zonedToUtc(2026, 3, 28, 20 * 60, 'Europe/Paris')).toBe(utc('2026-03-28T19:00:00Z'));
  });
});

describe('distances and bands', () => {
  it('measures great-circle distance and picks the band', () => {
    // Paris → Lyon is about 392 km as the crow flies.
    const km = haversineKm({ lat: 48.8566, lon: 2.3522 }, { lat: 45.764, lon: 4.8357 });
    expect(km).toBeGreaterThan(385);
    expect(km).toBeLessThan(400);
    const bands = [{ maxKm: 150, days: 1 }, { maxKm: 500, days: 2 }];
    expect(bandDays(bands, 150)).toBe(1);
    expect(bandDays(bands, km)).toBe(2);
    expect(bandDays(bands, 501)).toBeUndefined();
  });
});

describe('ISO dates', () => {
  it('writes what Date.toISOString writes, at every kind of instant', () => {
    const leap = [Date.parse('2028-02-29T23:59:59.999Z'), Date.parse('2100-03-01T00:00:00.000Z'), Date.parse('2000-02-29T12:00:00.010Z'), 0, 253_402_300_799_999];
    fc.assert(fc.property(fc.integer({ min: -10_000_000_000_000, max: 260_000_000_000_000 }), (ms) => isoUtc(ms) === new Date(ms).toISOString()));
    for (const ms of leap) expect(isoUtc(ms)).toBe(new Date(ms).toISOString());
    expect(isoUtc(1.5)).toBe(new Date(1.5).toISOString());
  });
});
