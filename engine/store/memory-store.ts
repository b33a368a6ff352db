// The in-memory store of the embedded default: the Redis store's semantics (same rules as
// lua/includes/position.lua and the reservation scripts) in one process, without I/O. Operations
// run to completion synchronously, so each is atomic like a Redis script.

import { InvariantError, InventoryError, invariant } from './errors.js';
import { snapshotTie } from '../core/snapshot-order.js';
import { atpUnderRule } from '../core/atp.js';
import { KeptRows } from './kept-rows.js';
import type { ApplyOutcome, ApplyResult, HeldReservation, HoldRequest, LineRule, InventoryStore, LocationStatus, PositionState, PositionVisitor, Reservation, ReservationLine, ReservationState, RowCells, Shortfall, StockEvent, Transition } from './types.js';
import { assertValidEvent, checkHold, checkId } from './validate.js';

/** Same bound as ADJUSTMENTS_MAX in lua/includes/position.lua: folding starts past twice this. */
export const adjustmentsMax = 64;

interface Adjustment {
  eventId: string;
  asOf: number;
  qty: number;
}

interface Position {
  /** Also the key of the SKU's map: reads iterate the positions, not the map's entries. */
  location: string;
  snap: number;
  adj: number;
  reserved: number;
  asOf: number;
  tie: number;
  adjustments: Adjustment[];
  /** The columns map forEachPosition saw last, and this position's column in it (-1: absent). */
  columnsSeen: ReadonlyMap<string, number> | undefined;
  column: number;
  /** The version callers last saw, and the onHand and reserved it stood for (see stateOf). */
  ver: number;
  seenOnHand: number;
  seenReserved: number;
}

/** The position's location's column in `columns` (-1: absent). */
function columnIn(p: Position, columns: ReadonlyMap<string, number>): number {
  // A Map lookup per position was a fifth of reading a basket: the caller's map rarely changes.
  if (p.columnsSeen !== columns) {
    p.columnsSeen = columns;
    p.column = columns.get(p.location) ?? -1;
  }
  return p.column;
}

/** A SKU's positions: by location, and in location order for reads (positions are never removed). */
interface SkuPositions {
  byLocation: Map<string, Position>;
  /** Iterating an array is several times cheaper than a Map's values: a basket reads ~500 positions. */
  inOrder: Position[];
  /**
   * Rows derived from the positions as they stand (readRows), dropped by any change to them or to
   * the SKU's held lines (touched): ~340 bytes per channel read, beside ~8 KB of positions.
   */
  rows: KeptRows | undefined;
}

interface Line {
  qty: number;
  state: 'h' | 'c';
  expiresAtMs: number;
}

/** A position's cells as a watcher sees them (watch): onHand is snap + adj. */
export interface PositionCells {
  readonly location: string;
  readonly snap: number;
  readonly adj: number;
  readonly reserved: number;
}

/**
 * Told, when an operation ends, of each SKU whose positions or held lines it changed: its positions
 * (the store's own, to read at once, not to keep) and the earliest expiry of its held lines
 * (Infinity: none), after which a read releases them and the positions change.
 */
export type PositionsWatcher = (sku: string, positions: readonly PositionCells[], holdsDueAtMs: number) => void;

/** The stored record is the reservation itself; callers get copies (see view). */
type StoredReservation = Reservation;

const emptyPosition = (location: string): Position => ({ columnsSeen: undefined, column: -1, location, snap: 0, adj: 0, reserved: 0, asOf: -1, tie: -1, adjustments: [], ver: 0, seenOnHand: Number.NaN, seenReserved: Number.NaN });

/**
 * The position as callers see it. Its version rises when onHand or reserved differ from what the
 * last caller was shown (a new position's first showing is version 1, as its first write is in
 * Redis): the same order as Redis's count of writes (position.lua), without a counter at every
 * place that changes a position.
 */
function stateOf(sku: string, location: string, p: Position): PositionState {
  const onHand = p.snap + p.adj;
  if (onHand !== p.seenOnHand || p.reserved !== p.seenReserved) {
    p.ver += 1;
    p.seenOnHand = onHand;
    p.seenReserved = p.reserved;
  }
  return { sku, location, onHand, reserved: p.reserved, version: p.ver };
}

/** ATP of one position under a line rule: the core's rule (engine/core/atp.ts), as atpOf in Lua. */
export function positionAtp(onHand: number, reserved: number, rule: LineRule): number {
  const atp = atpUnderRule({ onHand, reserved }, rule);
  return rule.capUnits === undefined ? atp : Math.min(atp, rule.capUnits);
}

export class MemoryStore implements InventoryStore {
  readonly kind = 'memory' as const;
  private readonly positionsBySku = new Map<string, SkuPositions>();
  private readonly statuses = new Map<string, LocationStatus>();
  /** sku → "reservationId|location" → line */
  private readonly linesBySku = new Map<string, Map<string, Line>>();
  private readonly reservations = new Map<string, StoredReservation>();
  /** Reservations whose expiry was published (claimExpiryNotice); kept as long as the reservations. */
  private readonly expiryNoticed = new Set<string>();
  /** SKUs the running operation changed, while someone watches (watch). */
  private changed: Set<string> | undefined;
  private readonly watchers: PositionsWatcher[] = [];

  /**
   * Calls `watcher` for every SKU the store holds now, then for each SKU an operation changes, as
   * the operation ends (before its promise resolves): gateway threads read a copy of the positions
   * kept this way (gateway/positions-mirror.ts).
   */
  watch(watcher: PositionsWatcher): void {
    this.watchers.push(watcher);
    this.changed ??= new Set();
    for (const [sku, { inOrder }] of this.positionsBySku) watcher(sku, inOrder, this.holdsDueAt(sku));
  }

  /** The earliest expiry of the SKU's held lines (Infinity: none). */
  private holdsDueAt(sku: string): number {
    let due = Number.POSITIVE_INFINITY;
    const lines = this.linesBySku.get(sku);
    if (lines) for (const line of lines.values()) if (line.state === 'h' && line.expiresAtMs < due) due = line.expiresAtMs;
    return due;
  }

  /** Runs an operation that may change positions or held lines, then tells the watchers, also when it throws. */
  private publishing<T>(operation: () => T): T {
    try {
      return operation();
    } finally {
      this.publishChanges();
    }
  }

  /** Marks the SKU's positions or held lines as changed by the running operation. */
  private touched(sku: string): void {
    const bySku = this.positionsBySku.get(sku);
    if (bySku) bySku.rows = undefined;
    this.changed?.add(sku);
  }

  /** Tells the watchers what the operation that ends changed. */
  private publishChanges(): void {
    const changed = this.changed;
    if (changed === undefined || changed.size === 0) return;
    for (const sku of changed) {
      const positions = this.positionsBySku.get(sku)?.inOrder ?? [];
      const due = this.holdsDueAt(sku);
      for (const watcher of this.watchers) watcher(sku, positions, due);
    }
    changed.clear();
  }

  private position(sku: string, location: string, create: boolean): Position {
    let bySku = this.positionsBySku.get(sku);
    if (!bySku) {
      bySku = { byLocation: new Map(), inOrder: [], rows: undefined };
      if (create) this.positionsBySku.set(sku, bySku);
    }
    let p = bySku.byLocation.get(location);
    if (!p) {
      p = emptyPosition(location);
      if (create) {
        // Keep each SKU's positions in location order so reads need no sort: reads are far more
        // frequent than a new position appearing.
        const last = bySku.inOrder[bySku.inOrder.length - 1];
        bySku.byLocation.set(location, p);
        bySku.inOrder.push(p);
        if (last !== undefined && location < last.location) bySku.inOrder.sort((a, b) => (a.location < b.location ? -1 : 1));
      }
    }
    return p;
  }

  private lines(sku: string): Map<string, Line> {
    let lines = this.linesBySku.get(sku);
    if (!lines) {
      lines = new Map();
      this.linesBySku.set(sku, lines);
    }
    return lines;
  }

  /** Releases the SKU's held lines whose expiry is due (expireDueLines in lua/includes/expire.lua). */
  private expireDueLines(sku: string, nowMs: number): void {
    const lines = this.linesBySku.get(sku);
    if (!lines) return;
    for (const [field, line] of lines) {
      if (line.state === 'h' && line.expiresAtMs <= nowMs) {
        const p = this.position(sku, field.slice(field.lastIndexOf('|') + 1), true);
        p.reserved -= line.qty;
        // No message closure here: one over `sku` would make every read of the SKU allocate it.
        if (p.reserved < 0) throw new InvariantError(`reserved < 0 at ${sku} ${p.location}`);
        lines.delete(field);
        this.touched(sku);
      }
    }
  }

  private applySnapshot(p: Position, qty: number, asOf: number, tie: number): ApplyOutcome {
    if (asOf < p.asOf || (asOf === p.asOf && tie < p.tie)) return 'stale';
    if (asOf === p.asOf && tie === p.tie) return 'duplicate';
    p.adjustments = p.adjustments.filter((a) => a.asOf > asOf);
    p.adj = p.adjustments.reduce((sum, a) => sum + a.qty, 0);
    p.snap = qty;
    p.asOf = asOf;
    p.tie = tie;
    return 'applied';
  }

  private applyAdjustment(p: Position, eventId: string, qty: number, asOf: number): ApplyOutcome {
    if (asOf <= p.asOf) return 'stale';
    if (p.adjustments.some((a) => a.eventId === eventId)) return 'duplicate';
    let i = p.adjustments.length;
    while (i > 0 && (p.adjustments[i - 1]!.asOf > asOf || (p.adjustments[i - 1]!.asOf === asOf && p.adjustments[i - 1]!.eventId > eventId))) i -= 1;
    p.adjustments.splice(i, 0, { eventId, asOf, qty });
    p.adj += qty;
    // Past twice the bound, fold the oldest down to the bound into the base (as the Lua does).
    if (p.adjustments.length > 2 * adjustmentsMax) {
      for (const oldest of p.adjustments.splice(0, p.adjustments.length - adjustmentsMax)) {
        p.snap += oldest.qty;
        p.adj -= oldest.qty;
        p.asOf = oldest.asOf;
        p.tie = -1;
      }
    }
    return 'applied';
  }

  async applyEvents(events: StockEvent[], nowMs = Date.now()): Promise<ApplyResult[]> {
    events.forEach(assertValidEvent);
    const skus = new Set(events.map((e) => e.sku));
    for (const sku of skus) {
      this.expireDueLines(sku, nowMs);
      this.touched(sku);
    }
    const results = events.map((e): ApplyResult => {
      const p = this.position(e.sku, e.location, true);
      const outcome = e.type === 'snapshot' ? this.applySnapshot(p, e.qty, e.asOf, snapshotTie(e.eventId)) : this.applyAdjustment(p, e.eventId, e.qty, e.asOf);
      return { outcome, position: stateOf(e.sku, e.location, p) };
    });
    this.publishChanges();
    return results;
  }

  async positions(sku: string, nowMs: number): Promise<PositionState[]> {
    const positions = this.readPositions(sku, nowMs);
    this.publishChanges();
    return positions;
  }

  async positionsMany(skus: string[], nowMs: number): Promise<PositionState[][]> {
    // One promise for the basket, not one per SKU (this is the availability hot path).
    const positions = skus.map((sku) => this.readPositions(sku, nowMs));
    this.publishChanges();
    return positions;
  }

  async forEachPosition(skus: string[], nowMs: number, columns: ReadonlyMap<string, number>, visit: PositionVisitor): Promise<void> {
    for (let line = 0; line < skus.length; line++) {
      const sku = skus[line]!;
      checkId('sku', sku);
      this.expireDueLines(sku, nowMs);
      const positions = this.positionsBySku.get(sku)?.inOrder;
      if (!positions) continue;
      for (let i = 0; i < positions.length; i++) {
        const p = positions[i]!;
        visit(line, columnIn(p, columns), p.snap + p.adj, p.reserved);
      }
    }
    // Holds released by this read.
    this.publishChanges();
  }

  async readRows(skus: string[], nowMs: number, cells: RowCells): Promise<(Float64Array | undefined)[]> {
    const rows: (Float64Array | undefined)[] = [];
    for (const sku of skus) {
      checkId('sku', sku);
      this.expireDueLines(sku, nowMs);
      const bySku = this.positionsBySku.get(sku);
      if (!bySku || bySku.inOrder.length === 0) {
        rows.push(undefined);
        continue;
      }
      const kept = (bySku.rows ??= new KeptRows());
      rows.push(kept.find(cells) ?? kept.keep(cells, this.derivedRow(bySku.inOrder, cells)));
    }
    // Holds released by this read.
    this.publishChanges();
    return rows;
  }

  private derivedRow(positions: Position[], cells: RowCells): Float64Array {
    const row = new Float64Array(cells.width);
    for (const p of positions) {
      const c = columnIn(p, cells.columns);
      if (c >= 0) row[c] = cells.cell(c, p.snap + p.adj, p.reserved);
    }
    return row;
  }

  private readPositions(sku: string, nowMs: number): PositionState[] {
    checkId('sku', sku);
    this.expireDueLines(sku, nowMs);
    const bySku = this.positionsBySku.get(sku);
    if (!bySku) return [];
    const out: PositionState[] = [];
    // Already in location order (see position()).
    for (const p of bySku.inOrder) out.push(stateOf(sku, p.location, p));
    return out;
  }

  async hold(request: HoldRequest): Promise<Reservation> {
    const lines = checkHold(request);
    const id = request.reservationId;
    const existing = this.reservations.get(id);
    if (existing) return this.view(existing, request.nowMs);
    return this.publishing(() => this.holdLines(request, lines));
  }

  private holdLines(request: HoldRequest, lines: ReservationLine[]): Reservation {
    const id = request.reservationId;
    const rules = new Map(request.lines.map((l) => [`${l.sku}\u0000${l.location}`, l.rule]));
    for (const sku of new Set(lines.map((l) => l.sku))) this.expireDueLines(sku, request.nowMs);
    const shortfalls: Shortfall[] = [];
    for (const line of lines) {
      const p = this.position(line.sku, line.location, false);
      const rule = rules.get(`${line.sku}\u0000${line.location}`)!;
      const available = positionAtp(p.snap + p.adj, p.reserved, rule);
      if (line.qty > available) shortfalls.push({ sku: line.sku, location: line.location, requested: line.qty, available });
    }
    const expiresAtMs = request.nowMs + request.holdTtlMs;
    const stored: StoredReservation = { id, channel: request.channel, state: shortfalls.length > 0 ? 'rejected' : 'held', lines, createdAtMs: request.nowMs, expiresAtMs };
    if (shortfalls.length > 0) {
      stored.shortfalls = shortfalls;
    } else {
      for (const line of lines) {
        this.position(line.sku, line.location, true).reserved += line.qty;
        this.lines(line.sku).set(`${id}|${line.location}`, { qty: line.qty, state: 'h', expiresAtMs });
        this.touched(line.sku);
      }
    }
    this.reservations.set(id, stored);
    return this.view(stored, request.nowMs);
  }

  private transitionLines(r: StoredReservation, op: 'confirm' | 'fulfil' | 'release', nowMs: number): number {
    let missing = 0;
    for (const sku of new Set(r.lines.map((l) => l.sku))) this.expireDueLines(sku, nowMs);
    for (const line of r.lines) {
      const lines = this.lines(line.sku);
      const field = `${r.id}|${line.location}`;
      const held = lines.get(field);
      if (!held) {
        missing += 1;
        continue;
      }
      // A confirm changes no position but the SKU's next hold expiry.
      this.touched(line.sku);
      if (op === 'confirm') {
        held.state = 'c';
        held.expiresAtMs = 0;
        continue;
      }
      const p = this.position(line.sku, line.location, true);
      p.reserved -= held.qty;
      invariant(p.reserved >= 0, () => `reserved < 0 at ${line.sku} ${line.location}`);
      if (op === 'fulfil') this.applyAdjustment(p, `fulfil:${r.id}:${line.location}`, -held.qty, nowMs);
      lines.delete(field);
    }
    return missing;
  }

  async transition(reservationId: string, transition: Transition, nowMs: number): Promise<Reservation> {
    return this.publishing(() => this.transitionReservation(reservationId, transition, nowMs));
  }

  private transitionReservation(reservationId: string, transition: Transition, nowMs: number): Reservation {
    checkId('reservation id', reservationId);
    const r = this.reservations.get(reservationId);
    if (!r) throw new InventoryError('unknown_reservation', `reservation ${reservationId} does not exist (or expired more than 7 days ago)`);
    const expired = r.state === 'held' && r.expiresAtMs <= nowMs;
    const target: ReservationState = transition === 'confirm' ? 'confirmed' : transition === 'fulfil' ? 'fulfilled' : 'released';
    if (r.state === target) return this.view(r, nowMs);
    if (expired && transition !== 'release') throw new InventoryError('invalid_transition', `cannot ${transition} reservation ${reservationId}: it is expired`);
    if (!expired && (r.state === 'rejected' || r.state === 'released' || r.state === 'fulfilled')) {
      throw new InventoryError('invalid_transition', `cannot ${transition} reservation ${reservationId}: it is ${r.state}`);
    }
    if (expired && r.state !== 'held') throw new InventoryError('invalid_transition', `cannot ${transition} reservation ${reservationId}: it is ${r.state}`);
    const missing = this.transitionLines(r, transition, nowMs);
    if (expired) r.expired = true;
    if (transition === 'confirm' && missing > 0) {
      this.transitionLines(r, 'release', nowMs);
      r.state = 'released';
      r.expired = true;
      throw new InventoryError('invalid_transition', `cannot confirm reservation ${reservationId}: its hold expired`);
    }
    r.state = target;
    if (target !== 'released' || !expired) r.expiresAtMs = target === 'confirmed' || target === 'fulfilled' || target === 'released' ? 0 : r.expiresAtMs;
    return this.view(r, nowMs);
  }

  private view(r: StoredReservation, nowMs: number): Reservation {
    const expiredNow = r.state === 'held' && r.expiresAtMs <= nowMs;
    const state = expiredNow ? 'released' : r.state;
    const out: Reservation = { id: r.id, channel: r.channel, state, lines: r.lines.map((l) => ({ ...l })), createdAtMs: r.createdAtMs, expiresAtMs: state === 'held' ? r.expiresAtMs : 0 };
    if (r.shortfalls) out.shortfalls = r.shortfalls.map((s) => ({ ...s }));
    if (r.expired || expiredNow) out.expired = true;
    return out;
  }

  async reservation(reservationId: string, nowMs: number): Promise<Reservation | undefined> {
    checkId('reservation id', reservationId);
    const r = this.reservations.get(reservationId);
    return r ? this.view(r, nowMs) : undefined;
  }

  async locationStatuses(): Promise<Map<string, LocationStatus>> {
    return new Map(this.statuses);
  }

  async setLocationStatus(locationId: string, status: LocationStatus | undefined): Promise<void> {
    checkId('location', locationId);
    if (status === undefined) this.statuses.delete(locationId);
    else this.statuses.set(locationId, status);
  }

  async heldUntil(untilMs: number, limit: number): Promise<HeldReservation[]> {
    const held: HeldReservation[] = [];
    for (const r of this.reservations.values()) if (r.state === 'held' && r.expiresAtMs <= untilMs) held.push({ id: r.id, expiresAtMs: r.expiresAtMs });
    return held.sort((a, b) => a.expiresAtMs - b.expiresAtMs).slice(0, limit);
  }

  async claimExpiryNotice(reservationId: string): Promise<boolean> {
    checkId('reservation id', reservationId);
    if (this.expiryNoticed.has(reservationId)) return false;
    this.expiryNoticed.add(reservationId);
    return true;
  }

  async expireDue(nowMs: number, limit = 500): Promise<number> {
    return this.publishing(() => this.expireDueReservations(nowMs, limit));
  }

  private expireDueReservations(nowMs: number, limit: number): number {
    let expired = 0;
    for (const r of this.reservations.values()) {
      if (expired >= limit) break;
      if (r.state === 'held' && r.expiresAtMs <= nowMs) {
        this.transitionLines(r, 'release', nowMs);
        r.state = 'released';
        r.expired = true;
        r.expiresAtMs = 0;
        expired += 1;
      }
    }
    return expired;
  }

  async close(): Promise<void> {}
}
