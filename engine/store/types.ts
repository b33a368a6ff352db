// The one store interface. Three stores implement it with the same semantics (Redis standalone,
// Redis Cluster, in-memory); test/conformance proves they agree with a reference model.
//
// Stores know nothing of the network configuration: the caller turns channel rules into a
// per-line `LineRule` (buffer, threshold, paused) so that the ATP check of a hold runs atomically
// next to the data it reads.

import type { LocationStatus, ReservationLine, ReservationState, Shortfall, StockEvent } from '../core/types.js';
import type { LineRule as CoreLineRule } from '../core/atp.js';

export type { LocationStatus, ReservationLine, ReservationState, Shortfall, StockEvent };

/** What applying one event did. `stale`: older than the current snapshot; `duplicate`: eventId seen. */
export type ApplyOutcome = 'applied' | 'duplicate' | 'stale';

export interface PositionState {
  sku: string;
  location: string;
  onHand: number;
  reserved: number;
  /**
   * Rises with every change of the position (onHand or reserved), possibly by more than one: of
   * two states of a position, the one with the higher version is the newer (the change feed carries it).
   */
  version: number;
}

export interface ApplyResult {
  outcome: ApplyOutcome;
  /** The position after the event (also for duplicates and stale events). */
  position: PositionState;
}

/** The channel rule for one (location, channel), resolved by the caller (engine/core/atp.ts lineRule). */
export interface LineRule extends CoreLineRule {
  /** Most units the channel shows for one position; absent: no cap. */
  capUnits?: number;
}

export interface HoldLine {
  sku: string;
  location: string;
  qty: number;
  rule: LineRule;
}

export interface HoldRequest {
  reservationId: string;
  channel: string;
  lines: HoldLine[];
  holdTtlMs: number;
  nowMs: number;
}

export interface Reservation {
  id: string;
  channel: string;
  state: ReservationState;
  lines: ReservationLine[];
  createdAtMs: number;
  /** Held reservations expire at this time; 0 once confirmed. */
  expiresAtMs: number;
  /** Why a hold was rejected: the lines that did not fit. */
  shortfalls?: Shortfall[];
  /** Set when a held reservation expired rather than being released by a caller. */
  expired?: boolean;
}

export type Transition = 'confirm' | 'fulfil' | 'release';

/** A held reservation and when its hold lapses (heldUntil). */
export interface HeldReservation {
  id: string;
  expiresAtMs: number;
}

/**
 * One position read by forEachPosition: `line` is its SKU's index in the SKUs asked, `column` its
 * location's index in the caller's `columns` (-1: a location not among them).
 */
export type PositionVisitor = (line: number, column: number, onHand: number, reserved: number) => void;

/**
 * What a caller of readRows derives from a SKU's positions: a row of `width` numbers, each
 * position's `cell` at its location's column in `columns` (0 where no position is). The same
 * object for as long as the derivation is the same (the store keeps rows by it).
 */
export interface RowCells {
  readonly columns: ReadonlyMap<string, number>;
  readonly width: number;
  cell(column: number, onHand: number, reserved: number): number;
}

export interface InventoryStore {
  readonly kind: 'memory' | 'redis' | 'redis-cluster';
  /** Applies a batch of validated events; results are in input order. Holds due at nowMs are released first. */
  applyEvents(events: StockEvent[], nowMs?: number): Promise<ApplyResult[]>;
  /** Positions of `sku` at every location that has one, holds past their expiry released first. */
  positions(sku: string, nowMs: number): Promise<PositionState[]>;
  /** positions() of several SKUs, in order (one round trip where the store allows it). */
  positionsMany(skus: string[], nowMs: number): Promise<PositionState[][]>;
  /**
   * positionsMany without an object per position: each is handed to `visit` with its location's
   * column in `columns` (a map the caller keeps: the memory store remembers each position's column
   * in the last map it saw), in no set order. The availability hot path reads ~500 positions a basket.
   */
  forEachPosition(skus: string[], nowMs: number, columns: ReadonlyMap<string, number>, visit: PositionVisitor): Promise<void>;
  /**
   * Optional, where a read can tell that a SKU's positions are unchanged (Redis: its read view's
   * stamp; the memory store: no change since; a gateway thread: the copy's sequence number): each
   * SKU's row of `cells`, read live like forEachPosition but derived again only when the positions
   * changed; undefined for a SKU with no position. Rows are shared: read-only.
   */
  readRows?(skus: string[], nowMs: number, cells: RowCells): Promise<(Float64Array | undefined)[]>;
  /** Holds every line or none. Retrying the same id returns the first outcome. */
  hold(request: HoldRequest): Promise<Reservation>;
  /** confirm (held → confirmed), fulfil (held|confirmed → fulfilled), release (held|confirmed → released). */
  transition(reservationId: string, transition: Transition, nowMs: number): Promise<Reservation>;
  reservation(reservationId: string, nowMs: number): Promise<Reservation | undefined>;
  /** Held reservations whose hold lapses by `untilMs` (lapsed ones included), earliest first, at most `limit`. */
  heldUntil(untilMs: number, limit: number): Promise<HeldReservation[]>;
  /**
   * Claims the publishing of a reservation's expiry: true for the first caller only, whatever the
   * process. Every gateway may see a hold lapse; one publishes its `expired` transition.
   */
  claimExpiryNotice(reservationId: string): Promise<boolean>;
  /** Releases holds whose TTL passed; returns how many reservations expired. */
  expireDue(nowMs: number, limit?: number): Promise<number>;
  /**
   * Location statuses set by an admin (PUT /v1/locations/{id}/status), shared by every process on
   * this store: a pause received by one gateway reaches the others and the engine's change feed.
   * Only overrides of the network file are kept.
   */
  locationStatuses(): Promise<Map<string, LocationStatus>>;
  /** Sets (or, undefined, clears) a location's status override. */
  setLocationStatus(locationId: string, status: LocationStatus | undefined): Promise<void>;
  close(): Promise<void>;
}
