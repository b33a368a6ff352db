import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { InvariantError } from '../../../engine/core/errors.js';
import { VelocityTracker, velocityDefaults } from '../../../engine/core/velocity.js';
import { t0Ms } from './network.js';

const minuteMs = 60_000;
const halfLifeMs = velocityDefaults.halfLifeMs;

describe('velocity: decay', () => {
  it('halves a rate after one half-life without sales', () => {
    const v = new VelocityTracker();
    v.record('a', 'web', 100, t0Ms);
    expect(v.rate('a', t0Ms + halfLifeMs)).toBeCloseTo(v.rate('a', t0Ms) / 2, 9);
    expect(v.rate('a', t0Ms + 2 * halfLifeMs)).toBeCloseTo(v.rate('a', t0Ms) / 4, 9);
  });

  it('reads a steady flow of 10 units/min as 10 units/min', () => {
    const v = new VelocityTracker();
    // One unit every 6 s for 3 hours: many half-lives, so the start no longer matters.
    for (let ms = 0; ms <= 3 * 60 * minuteMs; ms += 6_000) v.record('a', 'web', 1, t0Ms + ms);
    expect(v.rate('a', t0Ms + 3 * 60 * minuteMs)).toBeCloseTo(10, 0);
  });

  it('keeps per-channel rates that add up to the SKU rate', () => {
    const v = new VelocityTracker();
    v.record('a', 'web', 30, t0Ms);
    v.record('a', 'app', 10, t0Ms + minuteMs);
    const nowMs = t0Ms + 5 * minuteMs;
    expect(v.channelRate('a', 'web', nowMs) + v.channelRate('a', 'app', nowMs)).toBeCloseTo(v.rate('a', nowMs), 9);
    expect(v.channelRate('a', 'kiosk', nowMs)).toBe(0);
    expect(v.rate('unknown', nowMs)).toBe(0);
  });

  it('counts a sale recorded late as if it had been recorded in time', () => {
    const inTime = new VelocityTracker();
    inTime.record('a', 'web', 5, t0Ms);
    inTime.record('a', 'web', 5, t0Ms + minuteMs);
    const late = new VelocityTracker();
    late.record('a', 'web', 5, t0Ms + minuteMs);
    late.record('a', 'web', 5, t0Ms);
    expect(late.rate('a', t0Ms + 10 * minuteMs)).toBeCloseTo(inTime.rate('a', t0Ms + 10 * minuteMs), 9);
  });

  it('refuses a non-positive number of units as a bug', () => {
    expect(() => new VelocityTracker().record('a', 'web', 0, t0Ms)).toThrow(InvariantError);
  });

  it('never rises with time alone and never goes negative', () => {
    fc.assert(
      fc.property(fc.array(fc.record({ units: fc.integer({ min: 1, max: 50 }), atMs: fc.integer({ min: 0, max: 3_600_000 }) }), { minLength: 1, maxLength: 30 }), fc.integer({ min: 0, max: 7_200_000 }), (sales, laterMs) => {
        const v = new VelocityTracker();
        for (const s of sales) v.record('a', 'web', s.units, t0Ms + s.atMs);
        const nowMs = t0Ms + Math.max(...sales.map((s) => s.atMs));
        expect(v.rate('a', nowMs)).toBeGreaterThan(0);
        expect(v.rate('a', nowMs + laterMs)).toBeLessThanOrEqual(v.rate('a', nowMs) * (1 + 1e-12));
      }),
      { numRuns: 500 },
    );
  });
});

describe('velocity: tiers', () => {
  // 200 SKUs selling i units per minute over the last hour: sku-199 is the best seller.
  function catalogue(config = {}) {
    const v = new VelocityTracker(config);
    for (let i = 0; i < 200; i++) {
      for (let m = 0; m < 60; m += 5) v.record(`sku-${i}`, 'web', i * 5 * 0.01 + 0.001, t0Ms + m * minuteMs);
    }
    return v;
  }
  const nowMs = t0Ms + 60 * minuteMs;

  it('ranks the top 1% hot and the top 10% warm, above the rate floors', () => {
    const v = catalogue({ hotRateMinUnitsPerMin: 0, warmRateMinUnitsPerMin: 0 });
    expect(v.retier(nowMs)).toEqual({ hot: 2, warm: 18, cold: 180 });
    expect(v.tier('sku-199', nowMs)).toBe('hot');
    expect(v.tier('sku-198', nowMs)).toBe('hot');
    expect(v.tier('sku-197', nowMs)).toBe('warm');
    expect(v.tier('sku-180', nowMs)).toBe('warm');
    expect(v.tier('sku-179', nowMs)).toBe('cold');
    expect(v.tier('never-sold', nowMs)).toBe('cold');
  });

  it('does not call a slow seller hot just because the whole catalogue is slow', () => {
    const v = catalogue({ hotRateMinUnitsPerMin: 1_000, warmRateMinUnitsPerMin: 0 });
    const counts = v.retier(nowMs);
    expect(counts.hot).toBe(0);
    expect(v.tier('sku-199', nowMs)).toBe('warm');
  });

  it('is all cold before the first retier', () => {
    const v = catalogue();
    expect(v.tier('sku-199', nowMs)).toBe('cold');
  });

  it('promotes a SKU that takes off between two retiers at once', () => {
    const v = catalogue({ hotRateMinUnitsPerMin: 0, warmRateMinUnitsPerMin: 0 });
    v.retier(nowMs);
    expect(v.tier('sku-5', nowMs + 1_000)).toBe('cold');
    v.record('sku-5', 'web', 10_000, nowMs + 1_000);
    expect(v.tier('sku-5', nowMs + 1_000)).toBe('hot');
  });

  it('keeps tiers stable as everything decays together between retiers', () => {
    const v = catalogue({ hotRateMinUnitsPerMin: 0, warmRateMinUnitsPerMin: 0 });
    v.retier(nowMs);
    expect(v.tier('sku-199', nowMs + 30 * minuteMs)).toBe('hot');
    expect(v.tier('sku-179', nowMs + 30 * minuteMs)).toBe('cold');
  });

  it('keeps SKUs tied at the cutoff in their tier at every millisecond between retiers', () => {
    // 200 hot SKUs with the same units at the same time, 1,800 warm ones likewise: every one of
    // them sits at its tier's rank cutoff. Rounding used to drop them out of it about 1 ms in 6.
    const v = new VelocityTracker();
    for (let i = 0; i < 20_000; i++) v.record(`sku-${i}`, 'web', i < 200 ? 100 : i < 2_000 ? 10 : 0.001, t0Ms);
    const wrong = { hot: 0, warm: 0 };
    for (let dt = 0; dt < 30_000; dt++) {
      if (dt % 5_000 === 0) v.retier(t0Ms + dt);
      if (v.tier('sku-0', t0Ms + dt) !== 'hot') wrong.hot += 1;
      if (v.tier('sku-500', t0Ms + dt) !== 'warm') wrong.warm += 1;
    }
    expect(wrong).toEqual({ hot: 0, warm: 0 });
    expect(v.tier('sku-2000', t0Ms + 30_000)).toBe('cold');
  });

  it('lists the top sellers highest first', () => {
    expect(catalogue().top(3, nowMs).map((t) => t.sku)).toEqual(['sku-199', 'sku-198', 'sku-197']);
  });
});

describe('velocity: bounds and persistence', () => {
  it('tracks a bounded number of SKUs, evicting the lowest rates at the bound', () => {
    const v = new VelocityTracker({ skusTrackedMax: 10 });
    for (let i = 1; i <= 10; i++) v.record(`sku-${i}`, 'web', i, t0Ms);
    expect(v.skusTracked).toBe(10);
    v.record('sku-new', 'web', 100, t0Ms);
    // Down to 90% of the bound at once: the two lowest go.
    expect(v.skusTracked).toBe(9);
    expect(v.rate('sku-1', t0Ms)).toBe(0);
    expect(v.rate('sku-2', t0Ms)).toBe(0);
    expect(v.rate('sku-new', t0Ms)).toBeGreaterThan(0);
  });

  it('a new SKU with the lowest rate is the one evicted at the bound', () => {
    const v = new VelocityTracker({ skusTrackedMax: 10 });
    for (let i = 1; i <= 10; i++) v.record(`sku-${i}`, 'web', 10 + i, t0Ms);
    v.record('sku-tiny', 'web', 1, t0Ms);
    expect(v.rate('sku-tiny', t0Ms)).toBe(0);
    expect(v.rate('sku-10', t0Ms)).toBeGreaterThan(0);
  });

  it('keeps a bounded number of channels per SKU without changing the SKU rate', () => {
    const bounded = new VelocityTracker({ channelsPerSkuMax: 2 });
    const unbounded = new VelocityTracker();
    for (const v of [bounded, unbounded]) {
      v.record('a', 'web', 10, t0Ms);
      v.record('a', 'app', 1, t0Ms);
      v.record('a', 'kiosk', 5, t0Ms);
    }
    expect(bounded.channelRate('a', 'app', t0Ms)).toBe(0);
    expect(bounded.channelRate('a', 'kiosk', t0Ms)).toBeGreaterThan(0);
    expect(bounded.rate('a', t0Ms)).toBe(unbounded.rate('a', t0Ms));
  });

  it('restores every rate from its snapshot', () => {
    const v = new VelocityTracker();
    v.record('a', 'web', 10, t0Ms);
    v.record('a', 'app', 4, t0Ms + minuteMs);
    v.record('b', 'web', 1, t0Ms + 2 * minuteMs);
    const restored = new VelocityTracker();
    restored.seed(v.snapshot(t0Ms + 3 * minuteMs));
    const later = t0Ms + 20 * minuteMs;
    for (const sku of ['a', 'b']) expect(restored.rate(sku, later)).toBeCloseTo(v.rate(sku, later), 9);
    expect(restored.channelRate('a', 'app', later)).toBeCloseTo(v.channelRate('a', 'app', later), 9);
  });

  it('seeds from history as rates at a time, decaying from then on', () => {
    const v = new VelocityTracker();
    v.seed([
      { sku: 'a', channel: null, ratePerMin: 12, atMs: t0Ms },
      { sku: 'a', channel: 'web', ratePerMin: 12, atMs: t0Ms },
    ]);
    expect(v.rate('a', t0Ms)).toBeCloseTo(12, 9);
    expect(v.channelRate('a', 'web', t0Ms + halfLifeMs)).toBeCloseTo(6, 9);
  });
});
