// Promise-date rules not covered by test/unit/promise.test.ts: night orders, the autumn DST change,
// locations in another time zone than the network's, Sundays for same-day and transfers. Every
// expected instant is worked out by hand (Paris: UTC+2 until 25 Oct 2026 03:00, then UTC+1;
// New York: UTC−5 in November).

import { describe, expect, it } from 'vitest';
import { arrivalReadyAtMs, deliveredAtMs, localDay, readyAtMs } from '../../../engine/core/promise.js';

const utc = (iso: string) => Date.parse(iso);
const dc = { processingMinutes: 240, cutoffLocal: '14:00', timeZone: 'Europe/Paris' };

describe('promise rules', () => {
  it('an order before opening starts at 08:00 local', () => {
    // Tuesday 24 Nov 2026 05:00 Paris = 04:00Z → 08:00 Paris (07:00Z) + 4 h.
    expect(readyAtMs(dc, utc('2026-11-24T04:00:00Z'), 'UTC')).toBe(utc('2026-11-24T11:00:00Z'));
    // 00:30 Paris on Wednesday is still Wednesday's work.
    expect(readyAtMs(dc, utc('2026-11-24T23:30:00Z'), 'UTC')).toBe(utc('2026-11-25T11:00:00Z'));
  });

  it('follows the change back to winter time', () => {
    // Saturday 24 Oct 2026 15:00 Paris (UTC+2) = 13:00Z, after the cut-off → Monday 26 Oct 08:00
    // Paris (UTC+1) = 07:00Z, + 4 h; delivered Tuesday 20:00 Paris = 19:00Z.
    const ready = readyAtMs(dc, utc('2026-10-24T13:00:00Z'), 'UTC');
    expect(ready).toBe(utc('2026-10-26T11:00:00Z'));
    expect(deliveredAtMs(ready, 1, 'Europe/Paris')).toBe(utc('2026-10-27T19:00:00Z'));
    // Ready Saturday 24 Oct 10:00Z (12:00 UTC+2), 1 day → Monday 20:00 UTC+1.
    expect(deliveredAtMs(utc('2026-10-24T10:00:00Z'), 1, 'Europe/Paris')).toBe(utc('2026-10-26T19:00:00Z'));
  });

  it("a location's own time zone wins over the network's", () => {
    const ny = { processingMinutes: 240, cutoffLocal: '14:00', timeZone: 'America/New_York' };
    // 13:30 New York (18:30Z): before the cut-off.
    expect(readyAtMs(ny, utc('2026-11-24T18:30:00Z'), 'Europe/Paris')).toBe(utc('2026-11-24T22:30:00Z'));
    // 14:30 New York: Wednesday 08:00 New York = 13:00Z, + 4 h.
    expect(readyAtMs(ny, utc('2026-11-24T19:30:00Z'), 'Europe/Paris')).toBe(utc('2026-11-25T17:00:00Z'));
  });

  it('same-day and transfers skip Sunday', () => {
    // Ready Sunday 29 Nov 10:00 Paris: same-day courier → Monday 20:00.
    expect(deliveredAtMs(utc('2026-11-29T09:00:00Z'), 0, 'Europe/Paris')).toBe(utc('2026-11-30T19:00:00Z'));
    // A transfer arriving on Sunday is collectable Monday 08:00 + 1 h.
    expect(arrivalReadyAtMs(utc('2026-11-29T19:00:00Z'), 60, 'Europe/Paris')).toBe(utc('2026-11-30T08:00:00Z'));
    // Arriving Wednesday: Wednesday 08:00 + 2 h.
    expect(arrivalReadyAtMs(utc('2026-11-25T19:00:00Z'), 120, 'Europe/Paris')).toBe(utc('2026-11-25T09:00:00Z'));
  });

  it('local days change at local midnight', () => {
    // 23:30Z on 24 Nov is already 25 Nov in Paris, still 24 Nov in New York.
    const t = utc('2026-11-24T23:30:00Z');
    expect(localDay(t, 'Europe/Paris') - localDay(t, 'America/New_York')).toBe(1);
    expect(localDay(utc('2026-11-25T00:00:00Z'), 'UTC')).toBe(Date.UTC(2026, 10, 25) / 86_400_000);
  });
});
