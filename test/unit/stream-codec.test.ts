import { describe, expect, it } from 'vitest';
import { decodeStockEvent, encodeStockEvent, eventBytesMax } from '../../engine/stream/codec.js';

const event = { type: 'delta' as const, eventId: 'e-1', sku: 'SKU-1', location: 'store-001', qty: -2, asOf: 1_790_000_000_000 };

describe('stock event codec', () => {
  it('decodes msgpack (the default) and JSON to the same event', () => {
    expect(decodeStockEvent(encodeStockEvent(event))).toEqual({ ok: true, event });
    expect(decodeStockEvent(Buffer.from(JSON.stringify(event)))).toEqual({ ok: true, event });
    expect(decodeStockEvent(Buffer.from(`  ${JSON.stringify(event)}\n`))).toEqual({ ok: true, event });
  });

  it.each([
    ['an empty value', Buffer.alloc(0), 'not_decodable', /no value/],
    ['truncated JSON', Buffer.from('{"type":"delta",'), 'not_decodable', /not valid JSON/],
    ['garbage bytes', Buffer.from([0xc1, 0xff, 0x00]), 'not_decodable', /not valid msgpack/],
    ['a huge value', Buffer.alloc(eventBytesMax + 1, 0x7b), 'too_large', /bytes: a stock event is at most/],
    ['a missing field', Buffer.from(JSON.stringify({ ...event, sku: undefined })), 'missing_field', /"sku" is missing/],
    ['a wrong type', Buffer.from(JSON.stringify({ ...event, qty: '2' })), 'wrong_type', /"qty"/],
    ['a negative snapshot', encodeStockEvent({ ...event, type: 'snapshot', qty: -1 }), 'negative_snapshot', /./],
    ['a zero delta', encodeStockEvent({ ...event, qty: 0 }), 'zero_delta', /./],
  ])('rejects %s with a reason and a detail', (_what, bytes, reason, detail) => {
    const decoded = decodeStockEvent(bytes);
    expect(decoded.ok).toBe(false);
    if (decoded.ok) return;
    expect(decoded.reason).toBe(reason);
    expect(decoded.detail).toMatch(detail);
  });

  it('rejects an event for a location the network does not know', () => {
    const decoded = decodeStockEvent(encodeStockEvent(event), { locationExists: (id) => id === 'dc-1' });
    expect(decoded).toMatchObject({ ok: false, reason: 'unknown_location' });
  });
});

describe('worker-side batch decoding', () => {
  it('decodes a batch packed into one buffer exactly as message-by-message decoding does', async () => {
    const { default: decodeBatch } = await import('../../engine/stream/decode-worker.js');
    const values: (Buffer | null)[] = [encodeStockEvent(event), null, Buffer.from('{"type":"delta"'), Buffer.from(JSON.stringify({ ...event, eventId: 'e-2', location: 'dc-9' })), encodeStockEvent({ ...event, qty: 0 })];
    const lengths = values.map((v) => (v ? v.length : -1));
    const packed = Buffer.concat(values.filter((v): v is Buffer => v !== null));
    const buffer = packed.buffer.slice(packed.byteOffset, packed.byteOffset + packed.length);
    const locations = ['store-001'];
    const times = values.map(() => Date.now());
    const batch = decodeBatch({ buffer, lengths, times, locations });
    const oneByOne = values.map((v, i) => decodeStockEvent(v, { locationExists: (id) => locations.includes(id), nowMs: times[i]! }));
    expect(batch).toEqual(oneByOne);
    expect(batch.map((d) => (d.ok ? 'ok' : d.reason))).toEqual(['ok', 'not_decodable', 'not_decodable', 'unknown_location', 'zero_delta']);
    // An asOf is judged against each message's own time (its Kafka timestamp): the same bytes, an
    // hour apart, get the verdict of their message, not of the moment they are read.
    const ahead = encodeStockEvent({ ...event, eventId: 'e-ahead', asOf: event.asOf + 3_600_000 });
    const twice = Buffer.concat([ahead, ahead]);
    const judged = decodeBatch({ buffer: twice.buffer.slice(twice.byteOffset, twice.byteOffset + twice.length), lengths: [ahead.length, ahead.length], times: [event.asOf, event.asOf + 3_600_000], locations: [] });
    expect(judged.map((d) => (d.ok ? 'ok' : d.reason))).toEqual(['bad_as_of', 'ok']);
  });
});

describe('ATP change wire format', () => {
  it('round-trips a change with its version, reads one written before versions as version 0, refuses a wrong version type', async () => {
    const { decodeAtpChange, encodeAtpChange } = await import('../../engine/stream/wire.js');
    const { Packr } = await import('msgpackr');
    const change = { sku: 'SKU-1', location: 'dc', onHand: 7, reserved: 2, version: 41, atp: { web: 5 }, visibleAtMs: 1_790_000_000_000, asOfMs: 1_789_999_999_000 };
    expect(decodeAtpChange(encodeAtpChange(change))).toEqual(change);
    const packr = new Packr({ useRecords: false });
    const { version: _, ...older } = change;
    expect(decodeAtpChange(packr.pack(older))).toEqual({ ...older, version: 0 });
    expect(decodeAtpChange(packr.pack({ ...change, version: '41' }))).toBeUndefined();
  });
});
