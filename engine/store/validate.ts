// Checks every store runs before touching anything: a request that fails here changes nothing.

import { InventoryError } from './errors.js';
import type { HoldRequest, ReservationLine, StockEvent } from './types.js';

// The bounds are the core's (engine/core/validate.ts): basket size bounds a script's work, TTLs
// between 1 s and a day, quantities far inside Lua's exact integer range.
import { basketLinesMax, holdTtlMsMax, holdTtlMsMin, qtyMax } from '../core/validate.js';

export { basketLinesMax };

// '|' separates reservation id and location inside Redis fields: ids never contain it.
const idPattern = /^[A-Za-z0-9._:\-/]{1,128}$/;

export function checkId(what: string, id: unknown): string {
  if (typeof id !== 'string' || !idPattern.test(id)) {
    throw new InventoryError('invalid_id', `${what} ${JSON.stringify(id)} is invalid: expected 1 to 128 characters of A-Z a-z 0-9 . _ : - /`);
  }
  return id;
}

export function checkQty(qty: unknown, where: string): number {
  if (typeof qty !== 'number' || !Number.isInteger(qty) || qty <= 0 || qty > qtyMax) {
    throw new InventoryError('invalid_quantity', `${where}: qty ${JSON.stringify(qty)} is invalid: expected a positive integer up to ${qtyMax}`);
  }
  return qty;
}

/** Validates a hold and merges lines on the same (sku, location), so each position appears once. */
export function checkHold(request: HoldRequest): ReservationLine[] {
  checkId('reservation id', request.reservationId);
  checkId('channel', request.channel);
  if (!Array.isArray(request.lines) || request.lines.length === 0) {
    throw new InventoryError('empty_basket', `reservation ${request.reservationId} has no lines: a hold needs at least one line`);
  }
  if (request.lines.length > basketLinesMax) {
    throw new InventoryError('basket_too_large', `reservation ${request.reservationId} has ${request.lines.length} lines: at most ${basketLinesMax} are accepted`);
  }
  if (!Number.isInteger(request.holdTtlMs) || request.holdTtlMs < holdTtlMsMin || request.holdTtlMs > holdTtlMsMax) {
    throw new InventoryError('invalid_ttl', `hold TTL ${request.holdTtlMs} ms is invalid: expected an integer between ${holdTtlMsMin} and ${holdTtlMsMax}`);
  }
  const merged = new Map<string, ReservationLine>();
  request.lines.forEach((line, i) => {
    checkId(`line ${i} sku`, line.sku);
    checkId(`line ${i} location`, line.location);
    checkQty(line.qty, `line ${i} (${line.sku} at ${line.location})`);
    const key = `${line.sku}\u0000${line.location}`;
    const existing = merged.get(key);
    if (existing) existing.qty += line.qty;
    else merged.set(key, { sku: line.sku, location: line.location, qty: line.qty });
  });
  return [...merged.values()];
}

/** Groups lines by SKU, keeping first-seen order: one group per hash tag. */
export function groupBySku<T extends { sku: string }>(items: T[]): { skus: string[]; groups: T[][] } {
  const index = new Map<string, number>();
  const groups: T[][] = [];
  for (const item of items) {
    let g = index.get(item.sku);
    if (g === undefined) {
      g = groups.length;
      index.set(item.sku, g);
      groups.push([]);
    }
    groups[g]!.push(item);
  }
  return { skus: [...index.keys()], groups };
}

export function assertValidEvent(event: StockEvent): void {
  // Events reach stores already validated by the engine; a bad one here is a bug.
  if (!Number.isInteger(event.qty) || !Number.isInteger(event.asOf) || (event.type === 'snapshot' && event.qty < 0) || (event.type === 'delta' && event.qty === 0)) {
    throw new InventoryError('invalid_quantity', `event ${event.eventId}: ${event.type} qty ${event.qty} asOf ${event.asOf} is invalid`);
  }
  // The Redis store sends a batch as newline-terminated lines (applyEvents.lua).
  if (event.eventId.includes('\n')) throw new InventoryError('invalid_id', `event ${JSON.stringify(event.eventId)}: an eventId cannot contain a newline`);
}
