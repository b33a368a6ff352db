// The domain's vocabulary (DESIGN.md, "Domain semantics"). Plain data only: every function that
// gives it meaning lives next to it in engine/core and does no I/O.

export type LocationType = 'dc' | 'store' | 'dsv' | '3pl';
export const locationTypes: readonly LocationType[] = ['dc', 'store', 'dsv', '3pl'];

/** A paused location offers nothing in any channel: it is the fallback-routing switch. */
export type LocationStatus = 'active' | 'paused';

export interface LocationCapabilities {
  ship: boolean;
  pickup: boolean;
  /** A store that can ship parcels to customers (a DC ships by definition of `ship`). */
  shipFromStore: boolean;
}

export interface Location {
  id: string;
  type: LocationType;
  lat: number;
  lon: number;
  capabilities: LocationCapabilities;
  /** Time from order to ready-to-ship or ready-for-pickup. */
  processingMinutes: number;
  /** Daily order cut-off, local wall-clock time "HH:MM" in `timeZone`. */
  cutoffLocal: string;
  /** IANA time zone of `cutoffLocal`, e.g. "Europe/Paris"; the network config supplies a default. */
  timeZone?: string;
  /** Orders the location can process per day; absent means unbounded. */
  dailyCapacityOrders?: number;
  status: LocationStatus;
}

/** A safety buffer held back from sale: `units` plus `percent` of on-hand (rounded up, see atp.ts). */
export interface BufferRule {
  units: number;
  percent: number;
}

/** A "virtual catalogue": which locations feed it and how physical stock becomes sellable there. */
export interface Channel {
  id: string;
  /** Location ids whose stock this channel may sell; any other location gives ATP 0 here. */
  locations: readonly string[];
  /** Buffer per location type; a type with no entry has no buffer. */
  bufferByLocationType: Partial<Record<LocationType, BufferRule>>;
  /** A position whose ATP is below this shows 0 (stores with poor stock accuracy). */
  minThreshold: number;
  /**
   * Most units this channel shows for one SKU: a position's ATP and the channel total are both
   * capped (so one hold line takes at most this many). Absent: no cap.
   */
  atpCap?: number;
}

export type StockEventType = 'snapshot' | 'delta';

/**
 * A validated stock event (wire format in DESIGN.md; field names are the wire's).
 * `snapshot.qty` is the absolute on-hand (≥ 0); `delta.qty` a non-zero signed change.
 */
export interface StockEvent {
  type: StockEventType;
  /** Names one event: re-deliveries carry the same id and change nothing. */
  eventId: string;
  sku: string;
  location: string;
  qty: number;
  /** Source time, ms since the epoch. */
  asOf: number;
  source?: string;
}

/**
 * `rejected` records a hold that did not fit, so that retrying the same id returns that first
 * outcome rather than trying again.
 */
export type ReservationState = 'held' | 'confirmed' | 'fulfilled' | 'released' | 'rejected';

export interface ReservationLine {
  sku: string;
  location: string;
  qty: number;
}

/** A line that did not fit: what was asked and the ATP there at that moment. */
export interface Shortfall {
  sku: string;
  location: string;
  requested: number;
  available: number;
}

export interface Reservation {
  /** The idempotency key chosen by the caller. */
  id: string;
  channel: string;
  /** At most one line per (sku, location): requests are merged when validated. */
  lines: readonly ReservationLine[];
  state: ReservationState;
  createdAtMs: number;
  /** When a held reservation releases its units; 0 in every other state. */
  expiresAtMs: number;
  /** Time of the last transition (creation included). */
  updatedAtMs: number;
  /** Set on `rejected`: the lines that did not fit. */
  shortfalls?: readonly Shortfall[];
  /** Set when a hold was released by its TTL (by `expire`, or by a release after the TTL). */
  expired?: boolean;
}

/** A validated hold request (see validate.ts): lines merged per (sku, location). */
export interface HoldRequest {
  reservationId: string;
  channel: string;
  lines: readonly ReservationLine[];
  holdTtlMs: number;
}

export type ReservationOp = 'confirm' | 'fulfil' | 'release' | 'expire';
