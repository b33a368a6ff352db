import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { DomainError } from '../../../engine/core/errors.js';
import { asOfFutureMsMax, basketLinesMax, holdTtlMsDefault, qtyMax, validateHoldRequest, validateStockEvent, type StockEventRejection } from '../../../engine/core/validate.js';
import { t0Ms } from './network.js';

const good = { type: 'delta', eventId: 'pos-42:7', sku: 'SKU-1', location: 'store-a', qty: -2, asOf: t0Ms, source: 'pos' };
const locationExists = (id: string) => id === 'store-a' || id === 'dc-1';

describe('stock event validation', () => {
  it('accepts a well-formed event and keeps only the known fields', () => {
    const result = validateStockEvent({ ...good, extra: 'ignored' }, { locationExists, nowMs: t0Ms });
    expect(result).toEqual({ ok: true, event: good });
  });

  it('accepts a snapshot of 0 and a 64-bit asOf decoded as a bigint', () => {
    const result = validateStockEvent({ ...good, type: 'snapshot', qty: 0, asOf: BigInt(t0Ms) });
    expect(result).toMatchObject({ ok: true, event: { type: 'snapshot', qty: 0, asOf: t0Ms } });
  });

  it.each<[string, unknown, StockEventRejection, RegExp]>([
    ['not an object', 'hello', 'wrong_type', /expected an object/],
    ['an array', [good], 'wrong_type', /is an array: expected an object/],
    ['no type', { ...good, type: undefined }, 'missing_field', /"type" is missing/],
    ['an unknown type', { ...good, type: 'adjust' }, 'unknown_event_type', /"adjust": expected "snapshot" or "delta"/],
    ['no eventId', { ...good, eventId: '' }, 'missing_field', /"eventId" is missing or empty/],
    ['a numeric sku', { ...good, sku: 42 }, 'wrong_type', /"sku" is 42: expected a string/],
    ['an eventId over 128 characters', { ...good, eventId: 'e'.repeat(129) }, 'field_too_long', /129 characters long: at most 128/],
    ['a sku over 64 characters', { ...good, sku: 'S'.repeat(65) }, 'field_too_long', /"sku" is 65 characters long: at most 64/],
    ['a sku with a space', { ...good, sku: 'SKU 1' }, 'bad_characters', /expected only A-Z a-z 0-9/],
    ['an eventId with a newline', { ...good, eventId: 'a\nb' }, 'bad_characters', /control characters/],
    ['an eventId with a lone surrogate', { ...good, eventId: 'a\ud800b' }, 'bad_characters', /lone UTF-16 surrogate \(\\ud800\)/],
    ['no qty', { ...good, qty: undefined }, 'missing_field', /"qty" is missing/],
    ['a string qty', { ...good, qty: '3' }, 'wrong_type', /"qty" is "3": expected an integer/],
    ['a fractional qty', { ...good, qty: 1.5 }, 'non_integer_qty', /1.5: expected a whole number/],
    ['a negative snapshot', { ...good, type: 'snapshot', qty: -1 }, 'negative_snapshot', /cannot be negative/],
    ['a zero delta', { ...good, qty: 0 }, 'zero_delta', /delta qty is 0/],
    ['a huge qty', { ...good, qty: qtyMax + 1 }, 'qty_out_of_range', /at most 1000000000/],
    ['no asOf', { ...good, asOf: undefined }, 'missing_field', /"asOf" is missing/],
    ['a string asOf', { ...good, asOf: '2024-01-01' }, 'wrong_type', /"asOf" is "2024-01-01"/],
    ['an asOf in seconds', { ...good, asOf: Math.floor(t0Ms / 1000) }, 'bad_as_of', /seconds were probably sent/],
    ['a fractional asOf', { ...good, asOf: t0Ms + 0.5 }, 'bad_as_of', /expected an integer of ms/],
    ['a source too long', { ...good, source: 'x'.repeat(65) }, 'field_too_long', /"source"/],
    ['an unknown location', { ...good, location: 'store-z' }, 'unknown_location', /"store-z" is not in the network configuration/],
  ])('rejects %s with a reason code and a sentence saying what was wrong', (_, input, reason, detail) => {
    const result = validateStockEvent(input, { locationExists, nowMs: t0Ms });
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.reason).toBe(reason);
    expect(result.detail).toMatch(detail);
  });

  it('rejects an asOf further ahead of the engine clock than the skew bound, because it would freeze the position', () => {
    expect(validateStockEvent({ ...good, asOf: t0Ms + asOfFutureMsMax }, { nowMs: t0Ms }).ok).toBe(true);
    expect(validateStockEvent({ ...good, asOf: t0Ms + asOfFutureMsMax + 1 }, { nowMs: t0Ms })).toMatchObject({ ok: false, reason: 'bad_as_of', detail: expect.stringMatching(/fix the source clock/) });
  });

  it('never throws on any input, and never accepts an event that breaks the wire rules', () => {
    const anyEvent = fc.oneof(
      fc.anything(),
      fc.record(
        {
          type: fc.oneof(fc.constantFrom('snapshot', 'delta'), fc.anything()),
          eventId: fc.oneof(fc.string({ maxLength: 140 }), fc.anything()),
          sku: fc.oneof(fc.stringMatching(/^[A-Za-z0-9-]{0,70}$/), fc.anything()),
          location: fc.oneof(fc.constantFrom('store-a', 'dc-1', 'x'), fc.anything()),
          qty: fc.oneof(fc.integer({ min: -5, max: 5 }), fc.double(), fc.anything()),
          asOf: fc.oneof(fc.integer({ min: 0, max: 2 * t0Ms }), fc.anything()),
        },
        { requiredKeys: [] },
      ),
    );
    fc.assert(
      fc.property(anyEvent, (input) => {
        const result = validateStockEvent(input, { locationExists, nowMs: t0Ms });
        if (!result.ok) {
          expect(result.detail.length).toBeGreaterThan(10);
          return;
        }
        const e = result.event;
        expect(Number.isInteger(e.qty) && Number.isInteger(e.asOf)).toBe(true);
        expect(e.type === 'snapshot' ? e.qty >= 0 : e.qty !== 0).toBe(true);
        expect(e.sku.length).toBeLessThanOrEqual(64);
        expect(locationExists(e.location)).toBe(true);
      }),
      { numRuns: 3000 },
    );
  });
});

describe('hold request validation', () => {
  const context = { channelExists: (id: string) => id === 'web', locationExists };
  const request = { reservationId: 'cart-1', channel: 'web', lines: [{ sku: 'a', location: 'dc-1', qty: 2 }] };

  const codeOf = (input: unknown): string => {
    try {
      validateHoldRequest(input, context);
    } catch (e) {
      if (e instanceof DomainError) return e.code;
      throw e;
    }
    return 'ok';
  };

  it('accepts a request and applies the default TTL', () => {
    expect(validateHoldRequest(request, context)).toEqual({ ...request, holdTtlMs: holdTtlMsDefault });
  });

  it('merges lines on the same position, keeping first-seen order', () => {
    const lines = [
      { sku: 'a', location: 'dc-1', qty: 1 },
      { sku: 'b', location: 'dc-1', qty: 1 },
      { sku: 'a', location: 'dc-1', qty: 4 },
    ];
    expect(validateHoldRequest({ ...request, lines }, context).lines).toEqual([
      { sku: 'a', location: 'dc-1', qty: 5 },
      { sku: 'b', location: 'dc-1', qty: 1 },
    ]);
  });

  it.each([
    ['a body that is not an object', null, 'invalid_request'],
    ['a reservation id with a space', { ...request, reservationId: 'cart 1' }, 'invalid_id'],
    ['an unknown channel', { ...request, channel: 'tv' }, 'unknown_channel'],
    ['no lines', { ...request, lines: [] }, 'empty_basket'],
    ['lines that are not a list', { ...request, lines: 'a' }, 'empty_basket'],
    [`more than ${basketLinesMax} lines`, { ...request, lines: Array.from({ length: basketLinesMax + 1 }, (_, i) => ({ sku: `s${i}`, location: 'dc-1', qty: 1 })) }, 'basket_too_large'],
    ['a zero qty', { ...request, lines: [{ sku: 'a', location: 'dc-1', qty: 0 }] }, 'invalid_quantity'],
    ['a fractional qty', { ...request, lines: [{ sku: 'a', location: 'dc-1', qty: 1.5 }] }, 'invalid_quantity'],
    ['an unknown location', { ...request, lines: [{ sku: 'a', location: 'mars', qty: 1 }] }, 'unknown_location'],
    ['a line that is not an object', { ...request, lines: [7] }, 'invalid_request'],
    ['a TTL under a second', { ...request, holdTtlMs: 999 }, 'invalid_ttl'],
    ['a TTL over a day', { ...request, holdTtlMs: 86_400_001 }, 'invalid_ttl'],
    ['merged lines over the qty bound', { ...request, lines: [{ sku: 'a', location: 'dc-1', qty: qtyMax }, { sku: 'a', location: 'dc-1', qty: 1 }] }, 'invalid_quantity'],
  ])('refuses %s with a typed DomainError', (_, input, code) => {
    expect(codeOf(input)).toBe(code);
  });

  it('says in the message what was wrong and what is accepted', () => {
    expect(() => validateHoldRequest({ ...request, lines: [{ sku: 'a', location: 'dc-1', qty: -3 }] }, context)).toThrow('line 0 (a at dc-1): qty -3 is invalid: expected a positive integer up to 1000000000');
  });
});
