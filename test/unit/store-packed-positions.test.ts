import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { DecodedPositions, DecodedSku, LocationNames, rowsOf } from '../../engine/store/packed-positions.js';

/** A SKU's packed positions as readers get them: one PositionState per position, in the hash's order. */
const decodePackedPositions = (sku: string, posKey: () => string, packed: Buffer) => rowsOf(sku, new DecodedSku(packed, posKey));

/** A position value as position.lua packs it ('<Bi6i5i6I4i6i4Bi5', 38 bytes). */
function position(snap: number, adj: number, reserved: number, positionVersion = 7, format = 3, dueSeconds = 0x7c7c7c7c): Buffer {
  const v = Buffer.alloc(38);
  v[0] = format;
  v.writeIntLE(snap, 1, 6);
  v.writeIntLE(adj, 7, 5);
  v.writeIntLE(reserved, 12, 6);
  v.writeUIntLE(dueSeconds, 18, 4); // due: by default bytes equal to the separator, which must not matter
  v.writeIntLE(1_790_000_000_000, 22, 6);
  v.writeIntLE(-1, 28, 4);
  v.writeUInt8(3, 32);
  v.writeIntLE(positionVersion, 33, 5);
  return v;
}

/** HGETALL joined with '|', as readAllPacked (lua/includes/expire.lua) returns it. */
const packed = (...fields: (string | Buffer)[]) => Buffer.concat(fields.flatMap((f, i) => (i === 0 ? [Buffer.from(f)] : [Buffer.from('|'), Buffer.from(f)])));

describe('packed positions from Redis', () => {
  it('decodes every position by length, whatever bytes its value holds', () => {
    const bytes = packed('DC-1', position(100, -7, 12), 'ST-02', position(0x7c7c, 0x7c, 0x7c, 0x7c7c7c), 'a:b/c', position(2 ** 40, -(2 ** 38) + 5, 0, 2 ** 38 + 1));
    expect(decodePackedPositions('SKU-1', () => 'p:{SKU-1}', bytes)).toEqual([
      { sku: 'SKU-1', location: 'DC-1', onHand: 93, reserved: 12, version: 7 },
      { sku: 'SKU-1', location: 'ST-02', onHand: 0x7c7c + 0x7c, reserved: 0x7c, version: 0x7c7c7c },
      { sku: 'SKU-1', location: 'a:b/c', onHand: 2 ** 40 - 2 ** 38 + 5, reserved: 0, version: 2 ** 38 + 1 },
    ]);
    expect(decodePackedPositions('SKU-1', () => 'p:{SKU-1}', Buffer.alloc(0))).toEqual([]);
  });

  it('reads every value of each field width as Buffer.readIntLE does, signs included', () => {
    const int48 = fc.integer({ min: -(2 ** 47), max: 2 ** 47 - 1 });
    const int40 = fc.integer({ min: -(2 ** 39), max: 2 ** 39 - 1 });
    fc.assert(
      fc.property(int48, int40, int48, int40, (snap, adj, reserved, version) => {
        const value = position(snap, adj, reserved, version);
        expect(decodePackedPositions('s', () => 'p:{s}', packed('dc', value))).toEqual([{ sku: 's', location: 'dc', onHand: value.readIntLE(1, 6) + value.readIntLE(7, 5), reserved: value.readIntLE(12, 6), version: value.readIntLE(33, 5) }]);
        expect([value.readIntLE(1, 6), value.readIntLE(7, 5), value.readIntLE(12, 6), value.readIntLE(33, 5)]).toEqual([snap, adj, reserved, version]);
      }),
      { numRuns: 2000 },
    );
  });

  it.each([
    ['a text value of an earlier layout', packed('dc', '10:0:0:1:12345:0')],
    ['another format byte', packed('dc', position(1, 0, 0, 1, 2))],
    ['the 38-byte layout of the previous version (format byte 2)', packed('dc', position(1, 0, 0, 7, 2))],
    ['a value one byte short', packed('dc', position(1, 0, 0).subarray(0, 37))],
    ['a value one byte long, then another position', packed('dc', Buffer.concat([position(1, 0, 0), Buffer.from('x')]), 'st', position(1, 0, 0))],
    ['a field without a value', Buffer.from('dc')],
  ])('refuses %s with the error the scripts give', (_, bytes) => {
    expect(() => decodePackedPositions('SKU-1', () => 'p:{SKU-1}', bytes)).toThrow(/position p:\{SKU-1\} \S+ was not written by this version of Instock .*reload its stock/);
  });
});

describe('read views: may a hold have expired', () => {
  it('tells a SKU where a due time has come (a hold may have expired) from one where none has', () => {
    const now = 1_790_000_000_000;
    const dueAt = (seconds: number) => position(5, 0, 1, 1, 3, seconds);
    const mayBeDue = (bytes: Buffer) => new DecodedSku(bytes, () => 'v:{s}').holdMayBeDue(now);
    expect(mayBeDue(packed('dc', dueAt(0), 'st', dueAt(0)))).toBe(false);
    expect(mayBeDue(packed('dc', dueAt(0), 'st', dueAt(now / 1000 + 1)))).toBe(false);
    expect(mayBeDue(packed('dc', dueAt(now / 1000 + 5), 'st', dueAt(now / 1000)))).toBe(true);
    expect(mayBeDue(packed('dc', dueAt(now / 1000 - 60), 'st', dueAt(0)))).toBe(true);
    expect(mayBeDue(packed('dc', dueAt(0), 'st', dueAt(now / 1000 - 60), 'x', dueAt(now / 1000 + 60)))).toBe(true);
    expect(mayBeDue(Buffer.alloc(0))).toBe(false);
  });
});

describe('decoded positions kept per SKU (DecodedPositions)', () => {
  /** A read view as readAllPacked returns it: a 20-byte token, then the positions packed. */
  const view = (token: string, positions: Buffer) => Buffer.concat([Buffer.from(token.padStart(20, '0')), positions]);
  const stamp = (token: string) => token.padStart(20, '0');
  const now = 1_790_000_000_000;

  it('decodes again exactly when the token differs, and keeps at most its bound of SKUs', () => {
    const cache = new DecodedPositions(2);
    const a = packed('dc', position(10, 0, 1), 'st', position(3, 0, 0));
    const first = cache.of('A', view('1', a), () => 'p:{A}');
    expect(first.token).toBe(stamp('1'));
    expect(cache.of('A', view('1', Buffer.from(a)), () => 'p:{A}')).toBe(first);
    const changed = packed('dc', position(10, 0, 2), 'st', position(3, 0, 0));
    const second = cache.of('A', view('2', changed), () => 'p:{A}');
    expect(second).not.toBe(first);
    expect(second.reserved).toEqual([2, 0]);
    // The decoding holds its own values: a Buffer that ioredis reuses does not change them.
    changed.fill(0);
    expect(second.reserved).toEqual([2, 0]);
    cache.of('B', view('1', a), () => 'p:{B}');
    cache.of('C', view('1', a), () => 'p:{C}');
    expect(cache.size).toBe(2);
  });

  it('hands back the kept decoding only while the stamp names its view and no hold in it may be due', () => {
    const cache = new DecodedPositions();
    const kept = cache.of('A', view('7', packed('dc', position(10, 0, 1, 1, 3, now / 1000 + 30))), () => 'p:{A}');
    expect(cache.current('A', stamp('7'), now)).toBe(kept);
    // A write deleted the stamp (null), or a new view was made since (another token).
    expect(cache.current('A', null, now)).toBeUndefined();
    expect(cache.current('A', stamp('8'), now)).toBeUndefined();
    // A hold may have lapsed: the script must release it first.
    expect(cache.current('A', stamp('7'), now + 30_000)).toBeUndefined();
    expect(cache.current('B', stamp('7'), now)).toBeUndefined();
  });

  it('keeps no decoding of a SKU without positions, and refuses a view shorter than its token', () => {
    const cache = new DecodedPositions();
    expect(cache.of('A', Buffer.alloc(0), () => 'p:{A}').locations).toEqual([]);
    expect(cache.size).toBe(0);
    expect(cache.current('A', '', now)).toBeUndefined();
    expect(() => cache.of('A', Buffer.from('dc|'), () => 'p:{A}')).toThrow(/read view of p:\{A\} is 3 bytes, shorter than its token/);
  });

  it('gives each position its column in the map asked, and follows a new map', () => {
    const decoded = new DecodedSku(packed('dc', position(1, 0, 0), 'st', position(2, 0, 0), 'x', position(3, 0, 0)), () => 'v:{s}');
    expect([...decoded.columns(new Map([['st', 0], ['dc', 1]]))]).toEqual([1, 0, -1]);
    expect([...decoded.columns(new Map([['x', 4]]))]).toEqual([-1, -1, 4]);
  });
});

describe('rows derived from a decoded SKU (DecodedSku.row)', () => {
  const cellsOf = (columns: Map<string, number>, scale: number) => {
    let calls = 0;
    return {
      cells: { columns, width: Math.max(...columns.values()) + 1, cell: (column: number, onHand: number, reserved: number) => (calls++, (onHand - reserved) * scale + column) },
      calls: () => calls,
    };
  };

  it('derives a row once per cells, in their columns, and hands the same one back while kept', () => {
    const decoded = new DecodedSku(packed('dc', position(10, 0, 3), 'st', position(4, 1, 0), 'x', position(9, 0, 0)), () => 'v:{s}');
    const a = cellsOf(new Map([['st', 0], ['dc', 1]]), 10);
    const row = decoded.row(a.cells)!;
    // x is not a column: neither in the row nor derived.
    expect([...row]).toEqual([50, 71]);
    expect(a.calls()).toBe(2);
    expect(decoded.row(a.cells)).toBe(row);
    expect(a.calls()).toBe(2);
    // Other cells (another channel) get their own row; the first stays kept.
    const b = cellsOf(new Map([['x', 0], ['dc', 2]]), 1);
    expect([...decoded.row(b.cells)!]).toEqual([9, 0, 9]);
    expect(decoded.row(a.cells)).toBe(row);
    expect(new DecodedSku(Buffer.alloc(0), () => 'v:{s}').row(a.cells)).toBeUndefined();
  });

  it('keeps the rows of the last four cells asked, and derives an older one again', () => {
    const decoded = new DecodedSku(packed('dc', position(2, 0, 0)), () => 'v:{s}');
    const all = Array.from({ length: 5 }, (_, k) => cellsOf(new Map([['dc', 0]]), k + 1));
    const first = decoded.row(all[0]!.cells)!;
    for (const c of all.slice(1)) decoded.row(c.cells);
    expect(all.map((c) => c.calls())).toEqual([1, 1, 1, 1, 1]);
    const again = decoded.row(all[0]!.cells)!;
    expect(again).not.toBe(first);
    expect([...again]).toEqual([...first]);
    expect(all[0]!.calls()).toBe(2);
    expect(decoded.row(all[4]!.cells)).toBeDefined();
    expect(all[4]!.calls()).toBe(1);
  });
});

describe('location ids read back from Redis (LocationNames)', () => {
  it('gives the id the bytes spell, for new and repeated ids, across many ids whose hashes may meet', () => {
    const names = new LocationNames();
    let seed = 7;
    const next = () => ((seed = (Math.imul(seed, 1_103_515_245) + 12_345) >>> 0) / 2 ** 32);
    const ids = Array.from({ length: 3_000 }, (_, i) => (i % 3 === 0 ? `ST-${i}` : Array.from({ length: 1 + Math.floor(next() * 12) }, () => String.fromCharCode(33 + Math.floor(next() * 90)).replace('|', '_')).join('')));
    for (let round = 0; round < 3; round++) {
      for (const id of ids) expect(names.name(Buffer.from(`xx|${id}|yy`, 'latin1'), 3, 3 + id.length)).toBe(id);
    }
    // Two ids of the same length with the same hash (found by search): each reads as itself.
    const [a, b] = ['GJNSSOMR', 'DZFZRIEK'];
    for (const id of [a, b, a, b, b, a]) expect(names.name(Buffer.from(id), 0, id.length)).toBe(id);
  });
});
