// Stock velocity: a decaying rate of units reserved or sold, per SKU and per (SKU, channel), that
// ranks SKUs into tiers so the engine applies best sellers' updates first. No clock: every call
// takes nowMs.
//
// Each counter is an exponentially decayed sum of units: value(t) = value(t0) × 2^(−(t − t0) / h)
// for half-life h. A steady flow of r units/ms converges to value = r × h / ln 2, so
// rate = value × ln 2 / h, expressed in units per minute: a steady 10 units/min reads 10 units/min.
// Updates only touch one counter (O(1)); ranking all SKUs is O(n log n) and is done by retier(),
// which the engine calls on a timer (e.g. every second), never per event.

import { invariant } from './errors.js';

/** Relative rounding slack when a SKU's value is compared with a rank cutoff (tierOfValue). */
const tieTolerance = 1e-9;

export type VelocityTier = 'hot' | 'warm' | 'cold';

export interface VelocityConfig {
  /** Time for a rate to halve with no new sale. 15 min follows a flash sale or spike within minutes. */
  halfLifeMs: number;
  /** SKUs tracked at most; beyond it the lowest rates are evicted (they are cold anyway). */
  skusTrackedMax: number;
  /** Channel counters per SKU at most; beyond it the lowest channel rate is evicted. */
  channelsPerSkuMax: number;
  /** Hot: among the top hotRankFraction of tracked SKUs by rate, and at least hotRateMinUnitsPerMin. */
  hotRankFraction: number;
  hotRateMinUnitsPerMin: number;
  /** Warm: among the top warmRankFraction, and at least warmRateMinUnitsPerMin. Others are cold. */
  warmRankFraction: number;
  warmRateMinUnitsPerMin: number;
}

export const velocityDefaults: Readonly<VelocityConfig> = Object.freeze({
  halfLifeMs: 15 * 60_000,
  skusTrackedMax: 200_000,
  channelsPerSkuMax: 32,
  // Top 1% hot keeps the priority lane short enough to stay fast under overload; the rate floors
  // keep a quiet catalogue from calling a SKU that sold twice this hour "hot".
  hotRankFraction: 0.01,
  hotRateMinUnitsPerMin: 1,
  warmRankFraction: 0.1,
  warmRateMinUnitsPerMin: 0.05,
});

/**
 * When the SKU bound is passed, evict down to this fraction of it at once, so the O(n log n)
 * eviction runs once per 10% of the bound in new SKUs rather than on every new SKU.
 */
const evictToFraction = 0.9;

/** A rate at a time: what snapshot() writes and seed() reads. channel null: the SKU's total. */
export interface VelocityEntry {
  sku: string;
  channel: string | null;
  ratePerMin: number;
  atMs: number;
}

interface Counter {
  value: number;
  atMs: number;
}

interface SkuCounters {
  total: Counter;
  channels: Map<string, Counter>;
}

export interface TierCounts {
  hot: number;
  warm: number;
  cold: number;
}

export class VelocityTracker {
  readonly config: Readonly<VelocityConfig>;
  private readonly skus = new Map<string, SkuCounters>();
  /** value → units/min */
  private readonly ratePerValue: number;
  // Rank cutoffs from the last retier(), as counter values at cutoffAtMs: they decay with the
  // counters they are compared to. Infinity until the first retier: everything is cold. The rate
  // floors are fixed values and do not decay.
  private hotRankValue = Infinity;
  private warmRankValue = Infinity;
  private cutoffAtMs = 0;
  private readonly hotFloorValue: number;
  private readonly warmFloorValue: number;

  constructor(config: Partial<VelocityConfig> = {}) {
    const c = { ...velocityDefaults, ...config };
    invariant(c.halfLifeMs > 0 && Number.isFinite(c.halfLifeMs), `velocity halfLifeMs ${c.halfLifeMs}: expected a positive number`);
    invariant(Number.isInteger(c.skusTrackedMax) && c.skusTrackedMax >= 1, `velocity skusTrackedMax ${c.skusTrackedMax}: expected a positive integer`);
    invariant(Number.isInteger(c.channelsPerSkuMax) && c.channelsPerSkuMax >= 1, `velocity channelsPerSkuMax ${c.channelsPerSkuMax}: expected a positive integer`);
    invariant(c.hotRankFraction >= 0 && c.hotRankFraction <= c.warmRankFraction && c.warmRankFraction <= 1, 'velocity rank fractions: expected 0 <= hot <= warm <= 1');
    invariant(c.hotRateMinUnitsPerMin >= 0 && c.warmRateMinUnitsPerMin >= 0, 'velocity rate floors: expected >= 0');
    this.config = Object.freeze(c);
    this.ratePerValue = (Math.LN2 / c.halfLifeMs) * 60_000;
    this.hotFloorValue = c.hotRateMinUnitsPerMin / this.ratePerValue;
    this.warmFloorValue = c.warmRateMinUnitsPerMin / this.ratePerValue;
  }

  get skusTracked(): number {
    return this.skus.size;
  }

  private decayed(counter: Counter, nowMs: number): number {
    if (nowMs <= counter.atMs) return counter.value;
    return counter.value * Math.pow(2, -(nowMs - counter.atMs) / this.config.halfLifeMs);
  }

  /** Adds units at nowMs; an update older than the counter is added decayed to the counter's time. */
  private add(counter: Counter, units: number, nowMs: number): void {
    if (nowMs >= counter.atMs) {
      counter.value = this.decayed(counter, nowMs) + units;
      counter.atMs = nowMs;
    } else {
      counter.value += units * Math.pow(2, -(counter.atMs - nowMs) / this.config.halfLifeMs);
    }
  }

  private countersFor(sku: string, nowMs: number): SkuCounters {
    let counters = this.skus.get(sku);
    if (!counters) {
      counters = { total: { value: 0, atMs: nowMs }, channels: new Map() };
      this.skus.set(sku, counters);
    }
    return counters;
  }

  private channelCounter(counters: SkuCounters, channel: string, nowMs: number): Counter {
    let counter = counters.channels.get(channel);
    if (!counter) {
      if (counters.channels.size >= this.config.channelsPerSkuMax) {
        let lowest: string | undefined;
        let lowestValue = Infinity;
        for (const [name, c] of counters.channels) {
          const v = this.decayed(c, nowMs);
          if (v < lowestValue) [lowest, lowestValue] = [name, v];
        }
        if (lowest !== undefined) counters.channels.delete(lowest);
      }
      counter = { value: 0, atMs: nowMs };
      counters.channels.set(channel, counter);
    }
    return counter;
  }

  /**
   * Past the bound, evicts the lowest rates down to evictToFraction of it. Runs after the new
   * units are counted, so a SKU that just sold competes with its real rate.
   */
  private enforceBound(nowMs: number): void {
    if (this.skus.size <= this.config.skusTrackedMax) return;
    const target = Math.max(1, Math.floor(this.config.skusTrackedMax * evictToFraction));
    const ranked = this.ranked(nowMs);
    for (let i = target; i < ranked.length; i++) this.skus.delete(ranked[i]!.sku);
  }

  /** Records units reserved or sold for a SKU in a channel at nowMs. */
  record(sku: string, channel: string, units: number, nowMs: number): void {
    invariant(Number.isFinite(units) && units > 0, `velocity record ${sku}: units ${units}, expected a positive number`);
    const counters = this.countersFor(sku, nowMs);
    this.add(counters.total, units, nowMs);
    this.add(this.channelCounter(counters, channel, nowMs), units, nowMs);
    this.enforceBound(nowMs);
  }

  /** Units per minute for the SKU over all channels; 0 if not tracked. */
  rate(sku: string, nowMs: number): number {
    const counters = this.skus.get(sku);
    return counters ? this.decayed(counters.total, nowMs) * this.ratePerValue : 0;
  }

  /** Units per minute for the SKU in one channel; 0 if not tracked. */
  channelRate(sku: string, channel: string, nowMs: number): number {
    const counter = this.skus.get(sku)?.channels.get(channel);
    return counter ? this.decayed(counter, nowMs) * this.ratePerValue : 0;
  }

  /** The top `count` SKUs by rate at nowMs, highest first (ties by SKU). */
  top(count: number, nowMs: number): { sku: string; ratePerMin: number }[] {
    return this.ranked(nowMs)
      .slice(0, count)
      .map(({ sku, value }) => ({ sku, ratePerMin: value * this.ratePerValue }));
  }

  private ranked(nowMs: number): { sku: string; value: number }[] {
    const ranked = [...this.skus].map(([sku, c]) => ({ sku, value: this.decayed(c.total, nowMs) }));
    ranked.sort((a, b) => b.value - a.value || (a.sku < b.sku ? -1 : a.sku > b.sku ? 1 : 0));
    return ranked;
  }

  /**
   * Re-ranks every SKU and moves the tier cutoffs: hot = the top ceil(hotRankFraction × n) SKUs
   * with at least hotRateMinUnitsPerMin, warm likewise. Between calls tier() compares a SKU's
   * current rate with these cutoffs (decayed with it), so a SKU that takes off is promoted at once.
   */
  retier(nowMs: number): TierCounts {
    const ranked = this.ranked(nowMs);
    const n = ranked.length;
    const rankValueAt = (fraction: number): number => {
      const rankCount = Math.ceil(fraction * n);
      return rankCount === 0 ? Infinity : ranked[rankCount - 1]!.value;
    };
    this.hotRankValue = rankValueAt(this.config.hotRankFraction);
    this.warmRankValue = rankValueAt(this.config.warmRankFraction);
    this.cutoffAtMs = nowMs;
    const counts: TierCounts = { hot: 0, warm: 0, cold: 0 };
    for (const { value } of ranked) counts[this.tierOfValue(value, nowMs)] += 1;
    return counts;
  }

  private tierOfValue(value: number, nowMs: number): VelocityTier {
    // A value of 0 is never hot or warm, even with rate floors of 0.
    if (value <= 0) return 'cold';
    // The cutoff decayed one way and the SKU's value the other are equal in exact arithmetic for a
    // SKU at the cutoff, but not always in floating point: without the tolerance, SKUs tied at the
    // cutoff (same units at the same time, as history seeds them) flickered out of their tier at
    // about one millisecond in six between two retiers.
    const age = (nowMs > this.cutoffAtMs ? Math.pow(2, -(nowMs - this.cutoffAtMs) / this.config.halfLifeMs) : 1) * (1 - tieTolerance);
    if (value >= this.hotFloorValue && value >= this.hotRankValue * age) return 'hot';
    if (value >= this.warmFloorValue && value >= this.warmRankValue * age) return 'warm';
    return 'cold';
  }

  /** The SKU's tier at nowMs against the last retier()'s cutoffs; untracked SKUs are cold. */
  tier(sku: string, nowMs: number): VelocityTier {
    const counters = this.skus.get(sku);
    return counters ? this.tierOfValue(this.decayed(counters.total, nowMs), nowMs) : 'cold';
  }

  /**
   * Loads rates, e.g. from history at start-up or from a snapshot(). Entries add to what is
   * tracked (decayed sums merge by addition); channel null sets the SKU's total, a channel entry
   * only that channel's counter, so history giving both does not count units twice. Call
   * retier() afterwards.
   */
  seed(entries: Iterable<VelocityEntry>): void {
    for (const e of entries) {
      invariant(Number.isFinite(e.ratePerMin) && e.ratePerMin >= 0 && Number.isFinite(e.atMs), `velocity seed ${e.sku}: rate ${e.ratePerMin} at ${e.atMs}`);
      if (e.ratePerMin === 0) continue;
      const counters = this.countersFor(e.sku, e.atMs);
      const counter = e.channel === null ? counters.total : this.channelCounter(counters, e.channel, e.atMs);
      this.add(counter, e.ratePerMin / this.ratePerValue, e.atMs);
      this.enforceBound(e.atMs);
    }
  }

  /** Every tracked rate at nowMs, SKU totals and channels, for persistence; seed() reads it back. */
  snapshot(nowMs: number): VelocityEntry[] {
    const out: VelocityEntry[] = [];
    for (const [sku, counters] of this.skus) {
      out.push({ sku, channel: null, ratePerMin: this.decayed(counters.total, nowMs) * this.ratePerValue, atMs: nowMs });
      for (const [channel, c] of counters.channels) out.push({ sku, channel, ratePerMin: this.decayed(c, nowMs) * this.ratePerValue, atMs: nowMs });
    }
    return out;
  }
}
