// The position state machine: what one (sku, location) knows, and how a stock event changes it.
//
// Rule (DESIGN.md): on-hand = the current snapshot + every adjustment (delta, fulfilled sale) whose
// asOf is strictly later than the snapshot's asOf. Hence:
// - a snapshot ranking below the current one (snapshot-order.ts) is stale and changes nothing;
// - an adjustment with asOf <= the snapshot's asOf is stale: a count taken at that time already
//   includes it. Equal counts as included because a source's snapshot "as of t" is the state after
//   everything it knows at t;
// - a duplicate eventId changes nothing;
// - a newer snapshot drops the adjustments at or before its asOf and keeps the later ones, so a
//   delta that arrived before the snapshot still counts if it happened after it.
// State is a value: every function returns a new state and never mutates its argument.

import { invariant } from './errors.js';
import { compareSnapshots } from './snapshot-order.js';
import type { StockEvent } from './types.js';

/**
 * Most adjustments kept since the current snapshot. Sources send a snapshot every few minutes to
 * hours; 64 covers a busy store between counts and keeps a position small in every store.
 *
 * At the bound the oldest adjustments (all those sharing the oldest asOf) are folded into the base,
 * exactly as if a snapshot of the then on-hand had been taken at their asOf (F). On-hand and
 * dedupe stay exact for every later event with asOf > F, and duplicates of folded events are
 * stale, so nothing is ever counted twice. The residual risk, accepted: an event that arrives
 * after the fold with asOf in (S, F] (S = the real snapshot's asOf) is treated as stale, so a
 * never-seen delta that late is lost and a snapshot that late is ignored. This needs more than
 * adjustmentsMax newer adjustments to have arrived first; the next real snapshot heals it.
 */
export const adjustmentsMax = 64;

/** snapshotAsOfMs before any snapshot: below every valid asOf (validate.ts: asOf >= year 2000). */
export const noSnapshotAsOfMs = -1;

export interface Adjustment {
  readonly eventId: string;
  readonly asOfMs: number;
  /** Signed change of on-hand, never 0. */
  readonly qty: number;
}

export interface PositionState {
  /** On-hand of the current snapshot; 0 before any. */
  readonly snapshotQty: number;
  /** Source time of the current snapshot; noSnapshotAsOfMs before any. */
  readonly snapshotAsOfMs: number;
  /** null before any snapshot, and for a base folded from adjustments at the bound. */
  readonly snapshotEventId: string | null;
  /** Adjustments after the snapshot, sorted by (asOfMs, eventId), all asOfMs > snapshotAsOfMs. */
  readonly adjustments: readonly Adjustment[];
  /** Units of open reservation lines on this position. Never negative. */
  readonly reserved: number;
}

export type ApplyOutcome = 'applied' | 'duplicate' | 'stale';

export interface ApplyResult {
  state: PositionState;
  outcome: ApplyOutcome;
  /** True iff outcome is 'applied'; then `state` is a new object. */
  changed: boolean;
}

const emptyState: PositionState = Object.freeze({ snapshotQty: 0, snapshotAsOfMs: noSnapshotAsOfMs, snapshotEventId: null, adjustments: Object.freeze([]), reserved: 0 });

export function emptyPosition(): PositionState {
  return emptyState;
}

/** The key of a position in maps: '|' never occurs in ids (validate.ts). */
export function positionKey(sku: string, location: string): string {
  return `${sku}|${location}`;
}

export function onHand(state: PositionState): number {
  let total = state.snapshotQty;
  for (const a of state.adjustments) total += a.qty;
  return total;
}

/** What ATP and API responses need from a position. */
export function positionView(state: PositionState): { onHand: number; reserved: number } {
  return { onHand: onHand(state), reserved: state.reserved };
}

/** True when the base is a snapshot folded from adjustments at the bound rather than a real one. */
export function isFoldedBase(state: PositionState): boolean {
  return state.snapshotEventId === null && state.snapshotAsOfMs !== noSnapshotAsOfMs;
}

function unchanged(state: PositionState, outcome: 'duplicate' | 'stale'): ApplyResult {
  return { state, outcome, changed: false };
}

function adjustmentBefore(a: Adjustment, b: Adjustment): boolean {
  return a.asOfMs < b.asOfMs || (a.asOfMs === b.asOfMs && a.eventId < b.eventId);
}

/** Applies a validated stock event to the position of its (sku, location). */
export function applyStockEvent(state: PositionState, event: StockEvent): ApplyResult {
  invariant(Number.isSafeInteger(event.qty) && Number.isSafeInteger(event.asOf) && event.asOf >= 0, () => `event ${event.eventId} reached a position unvalidated: qty ${event.qty} asOf ${event.asOf}`);
  if (event.type === 'delta') return applyAdjustment(state, { eventId: event.eventId, asOfMs: event.asOf, qty: event.qty });
  invariant(event.qty >= 0, () => `snapshot ${event.eventId} with negative qty ${event.qty} reached a position unvalidated`);

  if (event.eventId === state.snapshotEventId) return unchanged(state, 'duplicate');
  // One eventId names one event: a snapshot reusing an adjustment's id is a re-delivery, not news.
  if (state.adjustments.some((a) => a.eventId === event.eventId)) return unchanged(state, 'duplicate');
  const rank = { asOfMs: event.asOf, eventId: event.eventId };
  if (compareSnapshots(rank, { asOfMs: state.snapshotAsOfMs, eventId: state.snapshotEventId }) < 0) return unchanged(state, 'stale');

  const next: PositionState = {
    snapshotQty: event.qty,
    snapshotAsOfMs: event.asOf,
    snapshotEventId: event.eventId,
    adjustments: state.adjustments.filter((a) => a.asOfMs > event.asOf),
    reserved: state.reserved,
  };
  return { state: next, outcome: 'applied', changed: true };
}

/** Applies an adjustment (a delta, or a fulfilled sale from reservation.ts). */
export function applyAdjustment(state: PositionState, adjustment: Adjustment): ApplyResult {
  invariant(Number.isSafeInteger(adjustment.qty) && adjustment.qty !== 0, () => `adjustment ${adjustment.eventId} has qty ${adjustment.qty}: expected a non-zero integer`);
  if (adjustment.eventId === state.snapshotEventId) return unchanged(state, 'duplicate');
  if (state.adjustments.some((a) => a.eventId === adjustment.eventId)) return unchanged(state, 'duplicate');
  if (adjustment.asOfMs <= state.snapshotAsOfMs) return unchanged(state, 'stale');

  // Sorted insert from the end: adjustments mostly arrive in time order.
  const list = state.adjustments.slice();
  let i = list.length;
  while (i > 0 && adjustmentBefore(adjustment, list[i - 1]!)) i -= 1;
  list.splice(i, 0, { eventId: adjustment.eventId, asOfMs: adjustment.asOfMs, qty: adjustment.qty });

  let snapshotQty = state.snapshotQty;
  let snapshotAsOfMs = state.snapshotAsOfMs;
  let snapshotEventId = state.snapshotEventId;
  let kept = list;
  if (list.length > adjustmentsMax) {
    // Fold every adjustment sharing the oldest asOf, so all kept ones stay strictly after the base.
    let folded = 0;
    while (kept.length > adjustmentsMax) {
      const foldAsOfMs = kept[0]!.asOfMs;
      let n = 0;
      while (n < kept.length && kept[n]!.asOfMs === foldAsOfMs) {
        folded += kept[n]!.qty;
        n += 1;
      }
      kept = kept.slice(n);
      snapshotAsOfMs = foldAsOfMs;
    }
    snapshotQty += folded;
    snapshotEventId = null;
  }
  const next: PositionState = { snapshotQty, snapshotAsOfMs, snapshotEventId, adjustments: kept, reserved: state.reserved };
  return { state: next, outcome: 'applied', changed: true };
}

/** Adds held units. The caller has checked ATP (reservation.ts). */
export function reserve(state: PositionState, qty: number): PositionState {
  invariant(Number.isSafeInteger(qty) && qty > 0, () => `reserve qty ${qty}: expected a positive integer`);
  return { ...state, reserved: state.reserved + qty };
}

/** Removes held units on release, expiry or fulfilment. */
export function unreserve(state: PositionState, qty: number): PositionState {
  invariant(Number.isSafeInteger(qty) && qty > 0, () => `unreserve qty ${qty}: expected a positive integer`);
  invariant(state.reserved >= qty, () => `unreserve ${qty} with only ${state.reserved} reserved: reserved would go negative`);
  return { ...state, reserved: state.reserved - qty };
}

/** Checks every invariant of a position; for boundaries (loading from a store, after a batch). */
export function assertPosition(state: PositionState): void {
  invariant(Number.isSafeInteger(state.reserved) && state.reserved >= 0, () => `reserved ${state.reserved}: expected a non-negative integer`);
  invariant(Number.isSafeInteger(state.snapshotQty), () => `snapshotQty ${state.snapshotQty}: expected an integer`);
  invariant(state.snapshotEventId === null || state.snapshotQty >= 0, () => `snapshot ${state.snapshotEventId} has negative qty ${state.snapshotQty}`);
  invariant(state.adjustments.length <= adjustmentsMax, () => `${state.adjustments.length} adjustments: at most ${adjustmentsMax}`);
  const ids = new Set<string>();
  state.adjustments.forEach((a, i) => {
    invariant(a.asOfMs > state.snapshotAsOfMs, () => `adjustment ${a.eventId} at ${a.asOfMs} is not after the snapshot at ${state.snapshotAsOfMs}`);
    invariant(a.qty !== 0 && Number.isSafeInteger(a.qty), () => `adjustment ${a.eventId} has qty ${a.qty}`);
    invariant(!ids.has(a.eventId) && a.eventId !== state.snapshotEventId, () => `eventId ${a.eventId} appears twice`);
    ids.add(a.eventId);
    const previous = state.adjustments[i - 1];
    invariant(previous === undefined || adjustmentBefore(previous, a), () => `adjustments out of order at ${a.eventId}`);
  });
}
