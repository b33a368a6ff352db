import { describe, expect, it } from 'vitest';
import { availabilitySampler } from '../../cli/start-history.js';

describe('availability samples for history (availabilitySampler)', () => {
  it('takes one request in `every`, starting with the first', () => {
    const sampled = availabilitySampler(10, 1_000);
    const taken = Array.from({ length: 35 }, (_, i) => sampled(1_000 + i)).flatMap((yes, i) => (yes ? [i] : []));
    expect(taken).toEqual([0, 10, 20, 30]);
  });

  it('takes at most `perSecond` within a second, and starts counting again the next second', () => {
    const sampled = availabilitySampler(10, 50);
    // 14,000 requests in one second: one in ten would be 1,400.
    let first = 0;
    for (let i = 0; i < 14_000; i++) if (sampled(5_000 + Math.floor(i / 14))) first += 1;
    expect(first).toBe(50);
    let next = 0;
    for (let i = 0; i < 14_000; i++) if (sampled(6_000 + Math.floor(i / 14))) next += 1;
    expect(next).toBe(50);
    // A quiet second keeps one in ten.
    let quiet = 0;
    for (let i = 0; i < 200; i++) if (sampled(7_000 + i * 4)) quiet += 1;
    expect(quiet).toBe(20);
  });
});
