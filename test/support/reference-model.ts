// A deliberately simple model of the inventory domain (DESIGN.md, "Domain semantics"), written
// apart from the stores: it keeps every event it has seen and recomputes on-hand from scratch on
// every read. Stores must agree with it after every step of a random history.

import { snapshotTie } from '../../engine/core/snapshot-order.js';
import { positionAtp } from '../../engine/store/memory-store.js';
import type { LineRule, ReservationLine, ReservationState, StockEvent } from '../../engine/store/types.js';

interface ModelReservation {
  id: string;
  state: ReservationState;
  lines: ReservationLine[];
  expiresAtMs: number;
  expired: boolean;
}

export class ModelError extends Error {
  constructor(readonly code: string) {
    super(code);
  }
}

export class ReferenceModel {
  /** "sku|location" → every distinct event (first occurrence of each eventId). */
  private readonly events = new Map<string, Map<string, StockEvent>>();
  readonly reservations = new Map<string, ModelReservation>();

  apply(event: StockEvent): void {
    const key = `${event.sku}|${event.location}`;
    let seen = this.events.get(key);
    if (!seen) this.events.set(key, (seen = new Map()));
    if (!seen.has(event.eventId)) seen.set(event.eventId, event);
  }

  onHand(sku: string, location: string): number {
    const seen = [...(this.events.get(`${sku}|${location}`)?.values() ?? [])];
    let latest: StockEvent | undefined;
    for (const e of seen) {
      if (e.type !== 'snapshot') continue;
      if (!latest || e.asOf > latest.asOf || (e.asOf === latest.asOf && snapshotTie(e.eventId) > snapshotTie(latest.eventId))) latest = e;
    }
    const base = latest ? latest.qty : 0;
    const since = latest ? latest.asOf : -Infinity;
    return base + seen.filter((e) => e.type === 'delta' && e.asOf > since).reduce((sum, e) => sum + e.qty, 0);
  }

  reserved(sku: string, location: string, nowMs: number): number {
    let total = 0;
    for (const r of this.reservations.values()) {
      const open = r.state === 'confirmed' || (r.state === 'held' && r.expiresAtMs > nowMs);
      if (!open) continue;
      for (const line of r.lines) if (line.sku === sku && line.location === location) total += line.qty;
    }
    return total;
  }

  positions(sku: string, nowMs: number): { sku: string; location: string; onHand: number; reserved: number }[] {
    return [...this.events.keys()]
      .filter((key) => key.startsWith(`${sku}|`))
      .map((key) => key.slice(sku.length + 1))
      .sort()
      .map((location) => ({ sku, location, onHand: this.onHand(sku, location), reserved: this.reserved(sku, location, nowMs) }));
  }

  private effectiveState(r: ModelReservation, nowMs: number): ReservationState {
    return r.state === 'held' && r.expiresAtMs <= nowMs ? 'released' : r.state;
  }

  hold(id: string, lines: (ReservationLine & { rule: LineRule })[], ttlMs: number, nowMs: number): ReservationState {
    const existing = this.reservations.get(id);
    if (existing) return this.effectiveState(existing, nowMs);
    const merged = new Map<string, ReservationLine & { rule: LineRule }>();
    for (const l of lines) {
      const key = `${l.sku}|${l.location}`;
      const m = merged.get(key);
      if (m) m.qty += l.qty;
      else merged.set(key, { ...l });
    }
    const fits = [...merged.values()].every((l) => l.qty <= positionAtp(this.onHand(l.sku, l.location), this.reserved(l.sku, l.location, nowMs), l.rule));
    const state: ReservationState = fits ? 'held' : 'rejected';
    this.reservations.set(id, { id, state, lines: [...merged.values()].map(({ sku, location, qty }) => ({ sku, location, qty })), expiresAtMs: nowMs + ttlMs, expired: false });
    return state;
  }

  transition(id: string, op: 'confirm' | 'fulfil' | 'release', nowMs: number): ReservationState {
    const r = this.reservations.get(id);
    if (!r) throw new ModelError('unknown_reservation');
    const state = this.effectiveState(r, nowMs);
    const expired = r.state === 'held' && state === 'released';
    const target: ReservationState = op === 'confirm' ? 'confirmed' : op === 'fulfil' ? 'fulfilled' : 'released';
    if (state === target) {
      if (expired) r.state = 'released';
      return target;
    }
    if (state === 'rejected' || state === 'released' || state === 'fulfilled') throw new ModelError('invalid_transition');
    if (op === 'fulfil') {
      // A fulfilled line leaves on-hand as an adjustment at fulfilment time.
      for (const line of r.lines) this.apply({ type: 'delta', eventId: `fulfil:${id}:${line.location}`, sku: line.sku, location: line.location, qty: -line.qty, asOf: nowMs });
    }
    r.state = target;
    return target;
  }

  reservationState(id: string, nowMs: number): ReservationState | undefined {
    const r = this.reservations.get(id);
    return r ? this.effectiveState(r, nowMs) : undefined;
  }

  expireDue(nowMs: number): number {
    let n = 0;
    for (const r of this.reservations.values()) {
      if (r.state === 'held' && r.expiresAtMs <= nowMs) {
        r.state = 'released';
        r.expired = true;
        n += 1;
      }
    }
    return n;
  }
}
