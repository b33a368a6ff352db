// Stock events on the wire (DESIGN.md): msgpack by default, JSON accepted. Decoding never throws:
// a value that is not an event comes back as a rejection with a reason, for the DLQ.

import { Packr } from 'msgpackr';
import type { StockEvent } from '../core/types.js';
import { validateStockEvent, type StockEventCheckOptions, type StockEventRejection } from '../core/validate.js';

export type DecodeRejection = StockEventRejection | 'not_decodable' | 'too_large';
export type Decoded = { ok: true; event: StockEvent } | { ok: false; reason: DecodeRejection; detail: string };

/** A stock event is ~100 bytes; anything this large is not one, and is not parsed. */
export const eventBytesMax = 16_384;

// int64AsType 'number': asOf values are ms timestamps, far inside the exact integer range.
const packr = new Packr({ useRecords: false, int64AsType: 'number', mapsAsObjects: true });

export function encodeStockEvent(event: StockEvent): Buffer {
  return packr.pack(event);
}

export function decodeStockEvent(value: Buffer | null | undefined, options: StockEventCheckOptions = {}): Decoded {
  if (!value || value.length === 0) return { ok: false, reason: 'not_decodable', detail: 'the message has no value: expected a msgpack or JSON stock event' };
  if (value.length > eventBytesMax) return { ok: false, reason: 'too_large', detail: `the message is ${value.length} bytes: a stock event is at most ${eventBytesMax}` };
  let decoded: unknown;
  // A JSON object starts with '{' (after optional spaces); a msgpack map never starts with 0x7b or a space.
  const first = value[0]!;
  try {
    decoded = first === 0x7b || first === 0x20 || first === 0x0a || first === 0x0d || first === 0x09 ? JSON.parse(value.toString('utf8')) : packr.unpack(value);
  } catch (error) {
    const how = first === 0x7b ? 'JSON' : 'msgpack';
    return { ok: false, reason: 'not_decodable', detail: `the value is not valid ${how}: ${error instanceof Error ? error.message.slice(0, 120) : String(error)}` };
  }
  return validateStockEvent(decoded, options);
}
