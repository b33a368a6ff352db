// Validation where data enters the domain. A stock event is checked on the hot ingest path and a
// bad one goes to the DLQ with a reason code, so it returns a result instead of throwing. A
// reservation request is a user's request, so a bad one throws a DomainError whose message says
// what was wrong and what to do. Everything past these checks may assume well-formed data.

import { DomainError } from './errors.js';
import type { HoldRequest, ReservationLine, StockEvent, StockEventType } from './types.js';

/** Long enough for UUIDs, ULIDs and "<system>:<batch>:<seq>" ids; bounds what dedupe stores per event. */
export const eventIdLengthMax = 128;
/** Bounds the key size in every store (a SKU is part of each Redis key). */
export const skuLengthMax = 64;
export const locationIdLengthMax = 64;
export const sourceLengthMax = 64;
export const reservationIdLengthMax = 128;
export const channelIdLengthMax = 64;
/** Quantities stay far inside the exact integer range of every store (Lua numbers are doubles). */
export const qtyMax = 1_000_000_000;
/** 2000-01-01T00:00:00Z. An earlier asOf is almost always seconds sent where ms are expected. */
export const asOfMsMin = 946_684_800_000;
/**
 * How far ahead of the time an event reached Kafka (its timestamp: the broker's append time on the
 * stock topic Instock creates; the submit time in the embedded default) a source clock may be. A snapshot dated in the future would
 * make every real snapshot until then look older and be ignored, freezing the position, so a
 * badly set source clock is rejected rather than trusted. 15 min covers ordinary clock skew.
 */
export const asOfFutureMsMax = 15 * 60_000;
/** A larger basket is refused: bounds the work and the time positions are locked for one hold. */
export const basketLinesMax = 100;
/** A cart hold shorter than 1 s is a bug; one longer than a day is an order, not a hold. */
export const holdTtlMsMin = 1_000;
export const holdTtlMsMax = 86_400_000;
export const holdTtlMsDefault = 15 * 60_000;

/** Characters allowed in SKU, location, channel and reservation ids: stores use '|', '{', '}' and spaces as separators. */
const idPattern = /^[A-Za-z0-9._:\-/]+$/;
// Control characters would corrupt logs and line-based tools downstream.
// eslint-disable-next-line no-control-regex
const controlPattern = /[\u0000-\u001f\u007f]/;
/** A UTF-16 surrogate without its pair (u flag: a pair is one code point). It has no UTF-8 form: stored, it would become U+FFFD and two ids could collide. */
const loneSurrogatePattern = /\p{Cs}/u;

export type StockEventRejection =
  | 'missing_field'
  | 'wrong_type'
  | 'unknown_event_type'
  | 'negative_snapshot'
  | 'zero_delta'
  | 'non_integer_qty'
  | 'qty_out_of_range'
  | 'unknown_location'
  | 'bad_as_of'
  | 'field_too_long'
  | 'bad_characters';

export type StockEventValidation = { ok: true; event: StockEvent } | { ok: false; reason: StockEventRejection; detail: string };

export interface StockEventCheckOptions {
  /** When given, an event for a location it does not know is rejected as `unknown_location`. */
  locationExists?: (locationId: string) => boolean;
  /** When the event was produced (its Kafka timestamp); an asOf more than asOfFutureMsMax ahead of it is rejected. */
  nowMs?: number;
}

/** A short rendering of a bad value for a message: never the whole of a huge string. */
function shown(value: unknown): string {
  if (typeof value === 'bigint') return `${value}n`;
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 40 ? `${text.slice(0, 40)}…` : text;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** msgpack decoders may give a bigint for 64-bit integers: accept it when it is exact as a number. */
function asNumber(value: unknown): number | undefined {
  if (typeof value === 'number') return value;
  if (typeof value === 'bigint' && value >= BigInt(Number.MIN_SAFE_INTEGER) && value <= BigInt(Number.MAX_SAFE_INTEGER)) return Number(value);
  return undefined;
}

type Rejection = { ok: false; reason: StockEventRejection; detail: string };
const reject = (reason: StockEventRejection, detail: string): Rejection => ({ ok: false, reason, detail });

function checkEventString(record: Record<string, unknown>, field: string, lengthMax: number, pattern: 'id' | 'text'): string | Rejection {
  const value = record[field];
  if (value === undefined || value === null || value === '') return reject('missing_field', `field "${field}" is missing or empty: every stock event needs one`);
  if (typeof value !== 'string') return reject('wrong_type', `field "${field}" is ${shown(value)}: expected a string`);
  if (value.length > lengthMax) return reject('field_too_long', `field "${field}" is ${value.length} characters long: at most ${lengthMax} are accepted`);
  if (pattern === 'id' && !idPattern.test(value)) return reject('bad_characters', `field "${field}" is ${shown(value)}: expected only A-Z a-z 0-9 . _ : - /`);
  if (pattern === 'text' && controlPattern.test(value)) return reject('bad_characters', `field "${field}" contains control characters: remove them`);
  if (pattern === 'text' && loneSurrogatePattern.test(value)) return reject('bad_characters', `field "${field}" contains a lone UTF-16 surrogate (\\u${value.charCodeAt(value.search(loneSurrogatePattern)).toString(16)}), which is not valid Unicode: send well-formed UTF-8`);
  return value;
}

/** Checks a decoded stock event. Unknown extra fields are ignored, so producers can add some first. */
export function validateStockEvent(input: unknown, options: StockEventCheckOptions = {}): StockEventValidation {
  if (!isRecord(input)) return reject('wrong_type', `the event is ${Array.isArray(input) ? 'an array' : shown(input)}: expected an object`);

  const type = input.type;
  if (type === undefined || type === null || type === '') return reject('missing_field', 'field "type" is missing: expected "snapshot" or "delta"');
  if (typeof type !== 'string') return reject('wrong_type', `field "type" is ${shown(type)}: expected the string "snapshot" or "delta"`);
  if (type !== 'snapshot' && type !== 'delta') return reject('unknown_event_type', `field "type" is ${shown(type)}: expected "snapshot" or "delta"`);

  const eventId = checkEventString(input, 'eventId', eventIdLengthMax, 'text');
  if (typeof eventId !== 'string') return eventId;
  const sku = checkEventString(input, 'sku', skuLengthMax, 'id');
  if (typeof sku !== 'string') return sku;
  const location = checkEventString(input, 'location', locationIdLengthMax, 'id');
  if (typeof location !== 'string') return location;

  if (input.qty === undefined || input.qty === null) return reject('missing_field', `field "qty" is missing: a ${type} needs an integer quantity`);
  const qty = asNumber(input.qty);
  if (qty === undefined) return reject('wrong_type', `field "qty" is ${shown(input.qty)}: expected an integer`);
  if (!Number.isInteger(qty)) return reject('non_integer_qty', `field "qty" is ${shown(qty)}: expected a whole number of units`);
  if (type === 'snapshot' && qty < 0) return reject('negative_snapshot', `snapshot qty is ${qty}: a snapshot is the absolute on-hand and cannot be negative (send a delta for a change)`);
  if (type === 'delta' && qty === 0) return reject('zero_delta', 'delta qty is 0: a delta must change the on-hand; drop it at the source');
  if (Math.abs(qty) > qtyMax) return reject('qty_out_of_range', `field "qty" is ${qty}: its magnitude must be at most ${qtyMax}`);

  if (input.asOf === undefined || input.asOf === null) return reject('missing_field', 'field "asOf" is missing: expected the source time in ms since the epoch');
  const asOf = asNumber(input.asOf);
  if (asOf === undefined) return reject('wrong_type', `field "asOf" is ${shown(input.asOf)}: expected an integer of ms since the epoch`);
  if (!Number.isInteger(asOf)) return reject('bad_as_of', `field "asOf" is ${shown(asOf)}: expected an integer of ms since the epoch`);
  if (asOf < asOfMsMin) return reject('bad_as_of', `field "asOf" is ${asOf}, before the year 2000: expected ms since the epoch (seconds were probably sent)`);
  if (options.nowMs !== undefined && asOf > options.nowMs + asOfFutureMsMax) {
    return reject('bad_as_of', `field "asOf" is ${asOf}, ${Math.round((asOf - options.nowMs) / 60_000)} min ahead of the time the message was produced (at most ${asOfFutureMsMax / 60_000} min accepted): fix the source clock`);
  }

  let source: string | undefined;
  if (input.source !== undefined && input.source !== null) {
    const checked = checkEventString(input, 'source', sourceLengthMax, 'text');
    if (typeof checked !== 'string') return checked;
    source = checked;
  }

  if (options.locationExists && !options.locationExists(location)) {
    return reject('unknown_location', `location ${shown(location)} is not in the network configuration: add it there or fix the feed`);
  }

  const event: StockEvent = { type: type satisfies StockEventType, eventId, sku, location, qty, asOf };
  if (source !== undefined) event.source = source;
  return { ok: true, event };
}

// ---------------------------------------------------------------------------------------------
// Reservation requests: a user's request, so a bad one throws a DomainError.

function checkId(what: string, value: unknown, lengthMax: number): string {
  if (typeof value !== 'string' || value.length === 0 || value.length > lengthMax || !idPattern.test(value)) {
    throw new DomainError('invalid_id', `${what} ${shown(value)} is invalid: expected 1 to ${lengthMax} characters of A-Z a-z 0-9 . _ : - /`);
  }
  return value;
}

export function validateReservationId(value: unknown): string {
  return checkId('reservation id', value, reservationIdLengthMax);
}

/** A requested quantity: a positive integer up to qtyMax. `where` names the line in the message. */
export function validateQty(value: unknown, where: string): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value <= 0 || value > qtyMax) {
    throw new DomainError('invalid_quantity', `${where}: qty ${shown(value)} is invalid: expected a positive integer up to ${qtyMax}`);
  }
  return value;
}

export interface HoldRequestCheckContext {
  channelExists: (channelId: string) => boolean;
  locationExists: (locationId: string) => boolean;
  /** TTL used when the request names none (the configured default). */
  holdTtlMsDefault?: number;
}

/**
 * Checks a hold request `{ reservationId, channel, lines: [{sku, location, qty}], holdTtlMs? }` and
 * merges lines on the same (sku, location) in first-seen order, so each position appears once and
 * its ATP is checked against the whole quantity asked there.
 */
export function validateHoldRequest(input: unknown, context: HoldRequestCheckContext): HoldRequest {
  if (!isRecord(input)) throw new DomainError('invalid_request', `the hold request is ${shown(input)}: expected an object with reservationId, channel and lines`);
  const reservationId = validateReservationId(input.reservationId);
  const channel = checkId('channel', input.channel, channelIdLengthMax);
  if (!context.channelExists(channel)) throw new DomainError('unknown_channel', `channel ${shown(channel)} is not in the network configuration: use one of the configured channels`);

  const lines = input.lines;
  if (!Array.isArray(lines) || lines.length === 0) {
    throw new DomainError('empty_basket', `reservation ${reservationId} has no lines: a hold needs at least one {sku, location, qty}`);
  }
  if (lines.length > basketLinesMax) {
    throw new DomainError('basket_too_large', `reservation ${reservationId} has ${lines.length} lines: at most ${basketLinesMax} are accepted; split the basket`);
  }

  const ttlInput = input.holdTtlMs ?? context.holdTtlMsDefault ?? holdTtlMsDefault;
  if (typeof ttlInput !== 'number' || !Number.isInteger(ttlInput) || ttlInput < holdTtlMsMin || ttlInput > holdTtlMsMax) {
    throw new DomainError('invalid_ttl', `holdTtlMs ${shown(ttlInput)} is invalid: expected an integer between ${holdTtlMsMin} and ${holdTtlMsMax}`);
  }

  const merged = new Map<string, ReservationLine>();
  lines.forEach((line: unknown, i) => {
    if (!isRecord(line)) throw new DomainError('invalid_request', `line ${i} is ${shown(line)}: expected an object {sku, location, qty}`);
    const sku = checkId(`line ${i} sku`, line.sku, skuLengthMax);
    const location = checkId(`line ${i} location`, line.location, locationIdLengthMax);
    if (!context.locationExists(location)) {
      throw new DomainError('unknown_location', `line ${i}: location ${shown(location)} is not in the network configuration`);
    }
    const qty = validateQty(line.qty, `line ${i} (${sku} at ${location})`);
    const key = `${sku}|${location}`;
    const existing = merged.get(key);
    if (existing) {
      existing.qty += qty;
      if (existing.qty > qtyMax) throw new DomainError('invalid_quantity', `lines for ${sku} at ${location} add up to ${existing.qty}: at most ${qtyMax} are accepted`);
    } else {
      merged.set(key, { sku, location, qty });
    }
  });
  return { reservationId, channel, lines: [...merged.values()], holdTtlMs: ttlInput };
}
