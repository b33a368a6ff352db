// A deliberately simple model of the whole domain (DESIGN.md, "Domain semantics"), for property
// tests of position.ts, reservation.ts and of every store. It is written apart from them and
// favours being obviously right over being fast or bounded:
// - it keeps every distinct stock event it has seen (first occurrence of each eventId per
//   position) and recomputes on-hand from all of them on every read;
// - reserved is recomputed from the reservations on every read, counting holds only until their
//   expiry, so it needs no sweeper.
// It has no adjustment bound: position.ts agrees with it as long as fewer than adjustmentsMax
// adjustments accumulate after a snapshot, or events arrive in asOf order.

import { DomainError } from './errors.js';
import { snapshotTie } from './snapshot-order.js';
import type { Channel, HoldRequest, Location, LocationStatus, ReservationLine, ReservationOp, ReservationState, Shortfall, StockEvent } from './types.js';

export interface ModelReservation {
  id: string;
  channel: string;
  lines: ReservationLine[];
  /** As stored: a held reservation past its expiry stays 'held' here until expired or released. */
  state: ReservationState;
  expiresAtMs: number;
  shortfalls: Shortfall[];
}

export interface ModelPosition {
  location: string;
  onHand: number;
  reserved: number;
}

export class ReferenceModel {
  private readonly locations = new Map<string, Location>();
  private readonly channels = new Map<string, Channel>();
  /** "sku|location" → eventId → the first event seen with that id. */
  private readonly events = new Map<string, Map<string, StockEvent>>();
  private readonly reservations = new Map<string, ModelReservation>();

  constructor(network: { locations: readonly Location[]; channels: readonly Channel[] }) {
    for (const l of network.locations) this.locations.set(l.id, { ...l });
    for (const c of network.channels) this.channels.set(c.id, c);
  }

  setLocationStatus(locationId: string, status: LocationStatus): void {
    const l = this.locations.get(locationId);
    if (l) l.status = status;
  }

  applyStockEvent(event: StockEvent): void {
    const key = `${event.sku}|${event.location}`;
    let seen = this.events.get(key);
    if (!seen) {
      seen = new Map();
      this.events.set(key, seen);
    }
    if (!seen.has(event.eventId)) seen.set(event.eventId, { ...event });
  }

  onHand(sku: string, location: string): number {
    const all = [...(this.events.get(`${sku}|${location}`)?.values() ?? [])];
    // The current snapshot: greatest (asOf, tie, eventId).
    let current: StockEvent | undefined;
    for (const e of all) {
      if (e.type !== 'snapshot') continue;
      if (current === undefined || ranksAbove(e, current)) current = e;
    }
    let total = current ? current.qty : 0;
    for (const e of all) {
      if (e.type === 'delta' && (current === undefined || e.asOf > current.asOf)) total += e.qty;
    }
    return total;
  }

  private isOpen(r: ModelReservation, nowMs: number): boolean {
    return r.state === 'confirmed' || (r.state === 'held' && nowMs < r.expiresAtMs);
  }

  reserved(sku: string, location: string, nowMs: number): number {
    let total = 0;
    for (const r of this.reservations.values()) {
      if (!this.isOpen(r, nowMs)) continue;
      for (const line of r.lines) if (line.sku === sku && line.location === location) total += line.qty;
    }
    return total;
  }

  atp(sku: string, locationId: string, channelId: string, nowMs: number): number {
    const channel = this.channels.get(channelId);
    const location = this.locations.get(locationId);
    if (!channel || !location || location.status === 'paused' || !channel.locations.includes(locationId)) return 0;
    const onHand = this.onHand(sku, locationId);
    const rule = channel.bufferByLocationType[location.type] ?? { units: 0, percent: 0 };
    // ceil(percent% of on-hand) in exact integer arithmetic, the percent taken to 0.01%.
    const basisPoints = BigInt(Math.round(rule.percent * 100));
    const percentPart = Number((basisPoints * BigInt(Math.max(onHand, 0)) + 9_999n) / 10_000n);
    let atp = onHand - this.reserved(sku, locationId, nowMs) - rule.units - percentPart;
    if (atp < 0) atp = 0;
    if (atp < channel.minThreshold) atp = 0;
    if (channel.atpCap !== undefined && atp > channel.atpCap) atp = channel.atpCap;
    return atp;
  }

  channelAtp(sku: string, channelId: string, nowMs: number): number {
    const channel = this.channels.get(channelId);
    if (!channel) return 0;
    let total = 0;
    for (const locationId of new Set(channel.locations)) total += this.atp(sku, locationId, channelId, nowMs);
    if (channel.atpCap !== undefined && total > channel.atpCap) total = channel.atpCap;
    return total;
  }

  /** Every location with an event or an open reservation line for the SKU, sorted by location. */
  positions(sku: string, nowMs: number): ModelPosition[] {
    const locations = new Set<string>();
    for (const key of this.events.keys()) if (key.startsWith(`${sku}|`)) locations.add(key.slice(sku.length + 1));
    for (const r of this.reservations.values()) for (const l of r.lines) if (l.sku === sku) locations.add(l.location);
    return [...locations].sort().map((location) => ({ location, onHand: this.onHand(sku, location), reserved: this.reserved(sku, location, nowMs) }));
  }

  /** Holds every line or none; an existing id returns its first outcome and changes nothing. */
  hold(request: HoldRequest, nowMs: number): ModelReservation {
    const existing = this.reservations.get(request.reservationId);
    if (existing) return existing;
    const merged = new Map<string, ReservationLine>();
    for (const l of request.lines) {
      const key = `${l.sku}|${l.location}`;
      const m = merged.get(key);
      if (m) m.qty += l.qty;
      else merged.set(key, { sku: l.sku, location: l.location, qty: l.qty });
    }
    const lines = [...merged.values()];
    const shortfalls: Shortfall[] = [];
    for (const l of lines) {
      const available = this.atp(l.sku, l.location, request.channel, nowMs);
      if (l.qty > available) shortfalls.push({ sku: l.sku, location: l.location, requested: l.qty, available });
    }
    const held = shortfalls.length === 0;
    const r: ModelReservation = { id: request.reservationId, channel: request.channel, lines, state: held ? 'held' : 'rejected', expiresAtMs: held ? nowMs + request.holdTtlMs : 0, shortfalls };
    this.reservations.set(r.id, r);
    return r;
  }

  reservation(id: string): ModelReservation | undefined {
    return this.reservations.get(id);
  }

  /** The state a reader sees: a held reservation past its expiry reads as released. */
  effectiveState(id: string, nowMs: number): ReservationState | undefined {
    const r = this.reservations.get(id);
    if (!r) return undefined;
    return r.state === 'held' && nowMs >= r.expiresAtMs ? 'released' : r.state;
  }

  /** Applies a transition; returns the state after it, or throws a DomainError with the core's code. */
  transition(op: ReservationOp, id: string, nowMs: number): ReservationState {
    const r = this.reservations.get(id);
    if (!r) throw new DomainError('unknown_reservation', `reservation ${id} does not exist`);
    const expired = r.state === 'held' && nowMs >= r.expiresAtMs;
    if (op === 'expire') {
      if (expired) r.state = 'released';
      return r.state;
    }
    const target: ReservationState = op === 'confirm' ? 'confirmed' : op === 'fulfil' ? 'fulfilled' : 'released';
    if (r.state === target) return r.state;
    const allowedFrom: ReservationState[] = op === 'confirm' ? ['held'] : ['held', 'confirmed'];
    if (!allowedFrom.includes(r.state)) throw new DomainError('invalid_transition', `cannot ${op} a ${r.state} reservation`);
    if (expired && op !== 'release') throw new DomainError('hold_expired', `cannot ${op} an expired hold`);
    if (op === 'fulfil') {
      // The sale leaves on-hand as an adjustment at fulfilment time.
      r.lines.forEach((l, i) => this.applyStockEvent({ type: 'delta', eventId: `fulfil:${r.id}:${i}`, sku: l.sku, location: l.location, qty: -l.qty, asOf: nowMs }));
    }
    r.state = target;
    return r.state;
  }

  /** Holds past their expiry at nowMs, in id order. */
  dueHolds(nowMs: number): string[] {
    return [...this.reservations.values()]
      .filter((r) => r.state === 'held' && nowMs >= r.expiresAtMs)
      .map((r) => r.id)
      .sort();
  }
}

function ranksAbove(a: StockEvent, b: StockEvent): boolean {
  if (a.asOf !== b.asOf) return a.asOf > b.asOf;
  const tieA = snapshotTie(a.eventId);
  const tieB = snapshotTie(b.eventId);
  if (tieA !== tieB) return tieA > tieB;
  return a.eventId > b.eventId;
}
