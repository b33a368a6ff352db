// The two feeds Instock itself publishes (DESIGN.md, "Wire formats"), msgpack-encoded:
//
// - ATP change, topic inventory.changes, key = sku: written by the engine after each applied batch
//   and by the gateway after reservation operations (a hold changes ATP too). Read by gateways for
//   WebSocket live stock, by the history consumer and by downstream systems.
// - Reservation transition, topic inventory.reservations, key = reservation id: written by the
//   gateway after each hold, confirm, fulfil or release. Read by the engine (velocity: what sells
//   fast is processed first) and by the history consumer.
//
// Decoders never throw: a value that is not one of these comes back as undefined and the caller
// counts it.

import { Packr } from 'msgpackr';
import type { ReservationLine } from '../core/types.js';

const packr = new Packr({ useRecords: false, int64AsType: 'number', mapsAsObjects: true });

export interface AtpChange {
  sku: string;
  location: string;
  onHand: number;
  reserved: number;
  /**
   * The position's version in the store (PositionState.version): two producers write the feed (the
   * engine for stock, gateways for reservations), so arrival order is not store order; of two
   * changes of a position, the higher version is the newer.
   */
  version: number;
  /** ATP of this position per channel id (0 where the channel does not sell the location). */
  atp: Record<string, number>;
  /** When the change became visible in the store, ms since the epoch. */
  visibleAtMs: number;
  /** Source time of the event that caused it (stock events only). */
  asOfMs?: number;
}

export type ReservationTransitionKind = 'held' | 'rejected' | 'confirmed' | 'fulfilled' | 'released' | 'expired';

export interface ReservationTransition {
  reservationId: string;
  channel: string;
  transition: ReservationTransitionKind;
  lines: ReservationLine[];
  /** When the transition happened, ms since the epoch. */
  atMs: number;
  /** For `held`: when the hold lapses. */
  expiresAtMs?: number;
}

export function encodeAtpChange(change: AtpChange): Buffer {
  return packr.pack(change);
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

export function decodeAtpChange(value: Buffer | null | undefined): AtpChange | undefined {
  if (!value || value.length === 0) return undefined;
  let v: unknown;
  try {
    v = packr.unpack(value);
  } catch {
    return undefined;
  }
  if (!isRecord(v)) return undefined;
  if (typeof v.sku !== 'string' || typeof v.location !== 'string') return undefined;
  if (typeof v.onHand !== 'number' || typeof v.reserved !== 'number' || typeof v.visibleAtMs !== 'number') return undefined;
  // Written before positions had versions (an older engine or gateway, a backlog): version 0.
  if (v.version !== undefined && typeof v.version !== 'number') return undefined;
  const atp: Record<string, number> = {};
  if (isRecord(v.atp)) for (const [k, n] of Object.entries(v.atp)) if (typeof n === 'number') atp[k] = n;
  return { sku: v.sku, location: v.location, onHand: v.onHand, reserved: v.reserved, version: typeof v.version === 'number' ? v.version : 0, atp, visibleAtMs: v.visibleAtMs, ...(typeof v.asOfMs === 'number' ? { asOfMs: v.asOfMs } : {}) };
}

export function encodeReservationTransition(t: ReservationTransition): Buffer {
  return packr.pack(t);
}

const transitionKinds = new Set<string>(['held', 'rejected', 'confirmed', 'fulfilled', 'released', 'expired']);

export function decodeReservationTransition(value: Buffer | null | undefined): ReservationTransition | undefined {
  if (!value || value.length === 0) return undefined;
  let v: unknown;
  try {
    v = packr.unpack(value);
  } catch {
    return undefined;
  }
  if (!isRecord(v)) return undefined;
  if (typeof v.reservationId !== 'string' || typeof v.channel !== 'string' || typeof v.transition !== 'string' || !transitionKinds.has(v.transition)) return undefined;
  if (typeof v.atMs !== 'number' || !Array.isArray(v.lines)) return undefined;
  const lines: ReservationLine[] = [];
  for (const l of v.lines as unknown[]) {
    if (!isRecord(l) || typeof l.sku !== 'string' || typeof l.location !== 'string' || typeof l.qty !== 'number') return undefined;
    lines.push({ sku: l.sku, location: l.location, qty: l.qty });
  }
  return {
    reservationId: v.reservationId,
    channel: v.channel,
    transition: v.transition as ReservationTransitionKind,
    lines,
    atMs: v.atMs,
    ...(typeof v.expiresAtMs === 'number' ? { expiresAtMs: v.expiresAtMs } : {}),
  };
}
