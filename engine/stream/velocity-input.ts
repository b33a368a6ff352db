// Velocity input of the engine: reservation transitions feed the VelocityTracker (created by the
// caller, possibly seeded from history before start), and a timer re-ranks it into tiers.
//
// Units are counted once per reservation: on `held` (the demand signal, as soon as a cart takes
// the units), and on `confirmed` only when this process never saw that reservation held (an
// order placed without a hold, or a hold seen before the engine started). `fulfilled`,
// `released`, `expired` and `rejected` add nothing: the units were counted when taken, and a
// rejected hold took nothing. The memory of held ids is bounded (oldest forgotten first), so a
// confirm of a hold forgotten long ago counts again: rare, and only over-ranks a SKU a little.

import type { VelocityTracker } from '../core/velocity.js';
import type { EngineMetrics } from './metrics.js';
import type { ReservationTransition } from './wire.js';

/** Reservation ids remembered as held (for "confirmed only when never held"). */
export const heldIdsMax = 200_000;
/**
 * Re-ranking sorts every tracked SKU (O(n log n), n ≤ the tracker's skusTrackedMax, 200k by
 * default: ~100 ms). Every 5 s keeps it under ~2% of one core; between retiers a SKU that takes
 * off is promoted at once anyway (tier() compares its live rate with the cutoffs).
 */
export const retierIntervalMs = 5_000;

export class VelocityInput {
  private readonly heldIds = new Set<string>();

  constructor(
    private readonly velocity: VelocityTracker,
    private readonly metrics?: EngineMetrics,
  ) {}

  record(t: ReservationTransition): void {
    this.metrics?.reservationTransitions.inc({ transition: t.transition });
    let count = false;
    if (t.transition === 'held') {
      count = true;
      this.heldIds.add(t.reservationId);
      if (this.heldIds.size > heldIdsMax) {
        // A Set iterates in insertion order: the first is the oldest.
        const oldest = this.heldIds.values().next().value;
        if (oldest !== undefined) this.heldIds.delete(oldest);
      }
    } else if (t.transition === 'confirmed') {
      count = !this.heldIds.delete(t.reservationId);
    } else if (t.transition === 'fulfilled' || t.transition === 'released' || t.transition === 'expired') {
      this.heldIds.delete(t.reservationId);
    }
    if (!count) return;
    for (const line of t.lines) if (line.qty > 0) this.velocity.record(line.sku, t.channel, line.qty, t.atMs);
  }
}

/** Retiers now and every retierIntervalMs; returns the stop function. */
export function startVelocityRetier(velocity: VelocityTracker, metrics?: EngineMetrics, intervalMs = retierIntervalMs): () => void {
  const retier = () => {
    const counts = velocity.retier(Date.now());
    if (metrics) for (const [tier, n] of Object.entries(counts)) metrics.velocitySkus.set({ tier }, n);
  };
  retier();
  const timer = setInterval(retier, intervalMs);
  timer.unref();
  return () => clearInterval(timer);
}
