// Reservation transitions as pure rules. Each function takes the reservation and read access to
// the positions its lines touch, and returns the new reservation with the positions it changed;
// the caller (a store) writes both atomically. Nothing here reads a clock: nowMs is passed in.
//
//   hold     (none)             → held, or rejected with shortfalls: every line fits or none is held
//   confirm  held               → confirmed (no expiry from then on)
//   fulfil   held | confirmed   → fulfilled: reserved drops by each line's qty and on-hand drops by
//                                 the same qty, as an adjustment at nowMs (eventId fulfilEventId)
//   release  held | confirmed   → released
//   expire   held, past expiry  → released (expired: true); anything else is left as it is
//
// Idempotency: repeating a transition that already happened returns the reservation unchanged
// (changed: false), and a hold whose id exists returns the first outcome. A hold is expired when
// nowMs >= expiresAtMs: confirm and fulfil of an expired hold fail with hold_expired (its units
// are, or are about to be, back on sale), before and after the sweep alike, and release of one
// releases it as an expiry.
//
// Callers expire due holds before a hold or a transition (as the stores do), so that reserved on
// a position only counts open reservations; if they do not, ATP is understated, never overstated.

import { DomainError, invariant } from './errors.js';
import { positionAtp } from './atp.js';
import { applyAdjustment, emptyPosition, positionKey, positionView, reserve, unreserve, type PositionState } from './position.js';
import type { Channel, HoldRequest, Location, Reservation, ReservationOp, ReservationState, Shortfall } from './types.js';

export interface PositionUpdate {
  sku: string;
  location: string;
  state: PositionState;
}

export interface ReservationResult {
  reservation: Reservation;
  /** False when the request repeated an earlier one: nothing to write. */
  changed: boolean;
  /** Positions to write, one per (sku, location) changed. */
  positions: PositionUpdate[];
}

export type PositionLookup = (sku: string, location: string) => PositionState | undefined;

export interface HoldContext {
  channel: Channel;
  locationOf: (locationId: string) => Location | undefined;
  positionOf: PositionLookup;
  nowMs: number;
}

export interface TransitionContext {
  positionOf: PositionLookup;
  nowMs: number;
}

/** The eventId of the on-hand adjustment of a fulfilled line: re-applying it is a duplicate. */
export function fulfilEventId(reservationId: string, lineIndex: number): string {
  return `fulfil:${reservationId}:${lineIndex}`;
}

export function isExpired(reservation: Reservation, nowMs: number): boolean {
  return reservation.state === 'held' && nowMs >= reservation.expiresAtMs;
}

/** The state a reader should see: a held reservation past its expiry is released, swept or not. */
export function effectiveState(reservation: Reservation, nowMs: number): ReservationState {
  return isExpired(reservation, nowMs) ? 'released' : reservation.state;
}

/** Whether a reservation in this state holds units on its positions. */
export function holdsUnits(state: ReservationState): boolean {
  return state === 'held' || state === 'confirmed';
}

const noChange = (reservation: Reservation): ReservationResult => ({ reservation, changed: false, positions: [] });

export function hold(request: HoldRequest, existing: Reservation | undefined, context: HoldContext): ReservationResult {
  // Same id: the first outcome, whatever this request says (the id is the idempotency key).
  if (existing) return noChange(existing);
  invariant(request.channel === context.channel.id, `hold ${request.reservationId} for channel ${request.channel} checked against channel ${context.channel.id}`);
  invariant(request.lines.length > 0, `hold ${request.reservationId} reached the core with no lines`);
  const { nowMs } = context;

  const shortfalls: Shortfall[] = [];
  const seen = new Set<string>();
  for (const line of request.lines) {
    const key = positionKey(line.sku, line.location);
    // Validation merges lines per position; two lines on one position would each see the full ATP.
    invariant(!seen.has(key), `hold ${request.reservationId} has two lines on ${key}: lines must be merged`);
    seen.add(key);
    invariant(Number.isSafeInteger(line.qty) && line.qty > 0, `hold ${request.reservationId} line ${key} has qty ${line.qty}`);
    const state = context.positionOf(line.sku, line.location);
    const available = positionAtp(state && positionView(state), context.locationOf(line.location), context.channel);
    if (line.qty > available) shortfalls.push({ sku: line.sku, location: line.location, requested: line.qty, available });
  }

  const base = { id: request.reservationId, channel: request.channel, lines: request.lines.map((l) => ({ ...l })), createdAtMs: nowMs, updatedAtMs: nowMs };
  if (shortfalls.length > 0) {
    return { reservation: { ...base, state: 'rejected', expiresAtMs: 0, shortfalls }, changed: true, positions: [] };
  }
  const positions = request.lines.map((line) => ({ sku: line.sku, location: line.location, state: reserve(context.positionOf(line.sku, line.location) ?? emptyPosition(), line.qty) }));
  return { reservation: { ...base, state: 'held', expiresAtMs: nowMs + request.holdTtlMs }, changed: true, positions };
}

function refuse(op: ReservationOp, reservation: Reservation, nowMs: number): never {
  // Same answer whether or not the expiry sweep has run yet.
  if (isExpired(reservation, nowMs)) {
    throw new DomainError('hold_expired', `cannot ${op} reservation ${reservation.id}: its hold expired at ${new Date(reservation.expiresAtMs).toISOString()} and its units went back on sale; place a new hold`);
  }
  if (reservation.state === 'released' && reservation.expired) {
    throw new DomainError('hold_expired', `cannot ${op} reservation ${reservation.id}: its hold expired and its units went back on sale; place a new hold`);
  }
  const why = reservation.state === 'rejected' ? 'its hold was rejected' : `it is ${reservation.state}`;
  throw new DomainError('invalid_transition', `cannot ${op} reservation ${reservation.id}: ${why}`);
}

/** Takes the reservation's units off its positions; `fulfilled` also takes them off on-hand. */
function releaseLines(reservation: Reservation, context: TransitionContext, sold: boolean): PositionUpdate[] {
  const updates = new Map<string, PositionUpdate>();
  reservation.lines.forEach((line, i) => {
    const key = positionKey(line.sku, line.location);
    const current = updates.get(key)?.state ?? context.positionOf(line.sku, line.location);
    invariant(current !== undefined, `reservation ${reservation.id} is ${reservation.state} on ${key} but that position does not exist`);
    let state = unreserve(current, line.qty);
    if (sold) {
      // If a snapshot at or after nowMs is already in, the adjustment is stale: that count saw the
      // pick. This is the position rule, applied to sales like any other adjustment.
      state = applyAdjustment(state, { eventId: fulfilEventId(reservation.id, i), asOfMs: context.nowMs, qty: -line.qty }).state;
    }
    updates.set(key, { sku: line.sku, location: line.location, state });
  });
  return [...updates.values()];
}

export function confirm(reservation: Reservation, nowMs: number): ReservationResult {
  if (reservation.state === 'confirmed') return noChange(reservation);
  if (reservation.state !== 'held' || isExpired(reservation, nowMs)) refuse('confirm', reservation, nowMs);
  return { reservation: { ...reservation, state: 'confirmed', expiresAtMs: 0, updatedAtMs: nowMs }, changed: true, positions: [] };
}

export function fulfil(reservation: Reservation, context: TransitionContext): ReservationResult {
  if (reservation.state === 'fulfilled') return noChange(reservation);
  if (!holdsUnits(reservation.state) || isExpired(reservation, context.nowMs)) refuse('fulfil', reservation, context.nowMs);
  const positions = releaseLines(reservation, context, true);
  return { reservation: { ...reservation, state: 'fulfilled', expiresAtMs: 0, updatedAtMs: context.nowMs }, changed: true, positions };
}

export function release(reservation: Reservation, context: TransitionContext): ReservationResult {
  if (reservation.state === 'released') return noChange(reservation);
  if (!holdsUnits(reservation.state)) refuse('release', reservation, context.nowMs);
  const positions = releaseLines(reservation, context, false);
  const next: Reservation = { ...reservation, state: 'released', expiresAtMs: 0, updatedAtMs: context.nowMs };
  if (isExpired(reservation, context.nowMs)) next.expired = true;
  return { reservation: next, changed: true, positions };
}

/** Releases a hold whose TTL passed; anything else (not held, or not yet due) is left unchanged. */
export function expire(reservation: Reservation, context: TransitionContext): ReservationResult {
  if (!isExpired(reservation, context.nowMs)) return noChange(reservation);
  return release(reservation, context);
}

export function applyTransition(op: ReservationOp, reservation: Reservation, context: TransitionContext): ReservationResult {
  switch (op) {
    case 'confirm':
      return confirm(reservation, context.nowMs);
    case 'fulfil':
      return fulfil(reservation, context);
    case 'release':
      return release(reservation, context);
    case 'expire':
      return expire(reservation, context);
  }
}
