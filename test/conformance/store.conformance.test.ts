// One conformance suite, run against every store: in-memory, Redis standalone and Redis Cluster.
// Random histories are compared with the reference model after every step.

import { randomUUID } from 'node:crypto';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { Inventory } from '../../engine/inventory.js';
import { InventoryError } from '../../engine/store/errors.js';
import { MemoryStore } from '../../engine/store/memory-store.js';
import { RedisStore } from '../../engine/store/redis-store.js';
import type { InventoryStore, LineRule, PositionState, RowCells, StockEvent } from '../../engine/store/types.js';
import { basketLinesMax } from '../../engine/store/validate.js';
import { ModelError, ReferenceModel } from '../support/reference-model.js';
import { redisClusterNodes, redisUrl, requireService } from '../support/services.js';

const redisUp = await requireService('redis');
const clusterUp = await requireService('redis-cluster');
const opened: InventoryStore[] = [];
afterAll(async () => {
  await Promise.all(opened.map((s) => s.close()));
});

/** A new store; `beside`: another client of that store's data instead (another process on the same Redis). */
type Factory = (beside?: InventoryStore) => InventoryStore;
const prefixOf = (beside: InventoryStore | undefined) => (beside ? (beside as RedisStore).keyPrefix : `t${randomUUID().slice(0, 8)}`);
const stores: [string, boolean, Factory][] = [
  ['in-memory', true, (beside) => beside ?? new MemoryStore()],
  ['Redis standalone', redisUp, (beside) => RedisStore.connect({ url: redisUrl }, { keyPrefix: prefixOf(beside) })],
  ['Redis Cluster', clusterUp, (beside) => RedisStore.connect({ clusterNodes: redisClusterNodes }, { keyPrefix: prefixOf(beside) })],
];
function open(factory: Factory, beside?: InventoryStore): InventoryStore {
  const store = factory(beside);
  if (store !== beside) opened.push(store);
  return store;
}

const T0 = 1_790_000_000_000;
const skus = ['sku-a', 'sku-b', 'sku-c'];
const locations = ['dc-1', 'store-2', 'store-3'];
/** dc-1: no buffer, capped at 25. store-2: 1 unit + 12.5 % buffer, threshold 2. store-3: paused. */
const rules: Record<string, LineRule> = {
  'dc-1': { sellable: true, bufferUnits: 0, bufferPercent: 0, minThreshold: 0, capUnits: 25 },
  'store-2': { sellable: true, bufferUnits: 1, bufferPercent: 12.5, minThreshold: 2 },
  'store-3': { sellable: false, bufferUnits: 0, bufferPercent: 0, minThreshold: 0 },
};
const reservationIds = ['r1', 'r2', 'r3', 'r4', 'r5', 'r6'];

type Op =
  | { kind: 'event'; event: StockEvent }
  | { kind: 'duplicate'; index: number }
  | { kind: 'hold'; id: string; lines: { sku: string; location: string; qty: number }[]; ttlMs: number }
  | { kind: 'transition'; id: string; op: 'confirm' | 'fulfil' | 'release' }
  | { kind: 'advance'; ms: number }
  | { kind: 'expire' };

const eventArb = fc
  .record({
    type: fc.constantFrom('snapshot' as const, 'delta' as const),
    sku: fc.constantFrom(...skus),
    location: fc.constantFrom(...locations),
    qty: fc.integer({ min: 0, max: 40 }),
    // A narrow asOf range: many ties, late and out-of-order events.
    asOfOffset: fc.integer({ min: -20_000, max: 120_000 }),
  })
  .map(({ type, sku, location, qty, asOfOffset }) => ({
    kind: 'event' as const,
    event: { type, eventId: randomUUID(), sku, location, qty: type === 'delta' ? (qty % 7) - 3 || 2 : qty, asOf: T0 + Math.floor(asOfOffset / 1000) * 1000 },
  }));

const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 5, arbitrary: eventArb },
  { weight: 1, arbitrary: fc.nat(1000).map((index) => ({ kind: 'duplicate' as const, index })) },
  {
    weight: 3,
    arbitrary: fc.record({
      kind: fc.constant('hold' as const),
      id: fc.constantFrom(...reservationIds),
      lines: fc.array(fc.record({ sku: fc.constantFrom(...skus), location: fc.constantFrom(...locations), qty: fc.integer({ min: 1, max: 6 }) }), { minLength: 1, maxLength: 4 }),
      ttlMs: fc.integer({ min: 1_000, max: 20_000 }),
    }),
  },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('transition' as const), id: fc.constantFrom(...reservationIds), op: fc.constantFrom('confirm' as const, 'fulfil' as const, 'release' as const) }) },
  { weight: 1, arbitrary: fc.integer({ min: 0, max: 15_000 }).map((ms) => ({ kind: 'advance' as const, ms })) },
  { weight: 1, arbitrary: fc.constant({ kind: 'expire' as const }) },
);

async function outcomeOf<T>(run: () => Promise<T>): Promise<T | string> {
  try {
    return await run();
  } catch (error) {
    if (error instanceof InventoryError || error instanceof ModelError) return error.code;
    throw error;
  }
}

/** Rows (readRows) of the locations' onHand and reserved, one number per position. */
const cellsOfPositions: RowCells = {
  columns: new Map(locations.map((location, c) => [location, c])),
  width: locations.length,
  cell: (_column, onHand, reserved) => onHand * 1_000 + reserved,
};

function rowFromModel(model: ReferenceModel, sku: string, now: number): number[] | undefined {
  const positions = model.positions(sku, now);
  if (positions.length === 0) return undefined;
  const row = new Array<number>(locations.length).fill(0);
  for (const p of positions) row[locations.indexOf(p.location)] = p.onHand * 1_000 + p.reserved;
  return row;
}

/**
 * Runs a history on a store and the model, comparing after every step; returns steps run. `reader`,
 * another client of the same data, reads every SKU after each step too: on Redis it keeps its own
 * decoding of each SKU's read view (and the rows derived from it), which must follow the writes it
 * did not make.
 */
async function replay(store: InventoryStore, ops: Op[], reader?: InventoryStore): Promise<number> {
  const model = new ReferenceModel();
  const history: StockEvent[] = [];
  const seen = new Map<string, PositionState>();
  let now = T0;
  for (const [step, op] of ops.entries()) {
    const where = `step ${step} ${JSON.stringify(op)}`;
    if (op.kind === 'event' || op.kind === 'duplicate') {
      const event = op.kind === 'event' ? op.event : history[op.index % Math.max(1, history.length)];
      if (!event) continue;
      history.push(event);
      model.apply(event);
      const [result] = await store.applyEvents([event], now);
      expect(result!.position.onHand, where).toBe(model.onHand(event.sku, event.location));
    } else if (op.kind === 'hold') {
      const lines = op.lines.map((l) => ({ ...l, rule: rules[l.location]! }));
      const expected = model.hold(op.id, lines, op.ttlMs, now);
      const got = await store.hold({ reservationId: op.id, channel: 'web', lines, holdTtlMs: op.ttlMs, nowMs: now });
      expect(got.state, where).toBe(expected);
    } else if (op.kind === 'transition') {
      const expected = await outcomeOf(async () => model.transition(op.id, op.op, now));
      const got = await outcomeOf(async () => (await store.transition(op.id, op.op, now)).state);
      expect(got, where).toBe(expected);
    } else if (op.kind === 'advance') {
      now += op.ms;
    } else {
      expect(await store.expireDue(now), where).toBe(model.expireDue(now));
    }
    // Rows first (before positions() releases a due hold): each client's, kept with its read views.
    for (const client of new Set([store, reader ?? store])) {
      if (!client.readRows) continue;
      const rows = await client.readRows(skus, now, cellsOfPositions);
      skus.forEach((sku, k) => expect(rows[k] && [...rows[k]], `${where}: row of ${sku}${client === store ? '' : ' read by another client'}`).toEqual(rowFromModel(model, sku, now)));
    }
    for (const sku of skus) {
      const positions = await store.positions(sku, now);
      expect(positions.map(({ version: _, ...p }) => p), `${where}: positions of ${sku}`).toEqual(model.positions(sku, now));
      // Versions never go back, and a position whose onHand or reserved changed has a higher one.
      for (const p of positions) {
        const key = `${sku}|${p.location}`;
        const before = seen.get(key);
        if (before) {
          expect(p.version, `${where}: version of ${key}`).toBeGreaterThanOrEqual(before.version);
          if (p.onHand !== before.onHand || p.reserved !== before.reserved) expect(p.version, `${where}: version of ${key} after a change`).toBeGreaterThan(before.version);
        }
        seen.set(key, p);
      }
    }
    if (reader) {
      const many = await reader.positionsMany(skus, now);
      skus.forEach((sku, k) => expect(many[k]!.map(({ version: _, ...p }) => p), `${where}: positions of ${sku} read by another client`).toEqual(model.positions(sku, now)));
    }
    for (const id of reservationIds) expect((await store.reservation(id, now))?.state, `${where}: reservation ${id}`).toBe(model.reservationState(id, now));
  }
  return ops.length;
}

const rule = rules['dc-1']!;
const snapshot = (sku: string, location: string, qty: number, asOf = T0): StockEvent => ({ type: 'snapshot', eventId: randomUUID(), sku, location, qty, asOf });

describe.each(stores)('%s store', (_name, available, factory) => {
  describe.skipIf(!available)('conformance', () => {
    it('agrees with the reference model on random histories of events, holds, transitions and expiries, read by two clients', async () => {
      let steps = 0;
      const runs = 100;
      await fc.assert(
        fc.asyncProperty(fc.array(opArb, { minLength: 30, maxLength: 60 }), async (ops) => {
          const store = open(factory);
          const reader = open(factory, store);
          steps += await replay(store, ops, reader);
          if (reader !== store) await reader.close();
          await store.close();
        }),
        { numRuns: runs },
      );
      // At least a few thousand generated steps per store.
      expect(steps).toBeGreaterThanOrEqual(runs * 30);
    }, 300_000);

    it('applies snapshots and deltas arriving late, duplicated and out of order to the same on-hand', async () => {
      const store = open(factory);
      const events: StockEvent[] = [
        { type: 'delta', eventId: 'd2', sku: 's', location: 'l', qty: -2, asOf: T0 + 20 },
        snapshot('s', 'l', 10, T0 + 10),
        { type: 'delta', eventId: 'd1', sku: 's', location: 'l', qty: 5, asOf: T0 + 5 },
        { type: 'delta', eventId: 'd2', sku: 's', location: 'l', qty: -2, asOf: T0 + 20 },
        snapshot('s', 'l', 99, T0 + 1),
        { type: 'delta', eventId: 'd3', sku: 's', location: 'l', qty: 4, asOf: T0 + 30 },
      ];
      const results = await store.applyEvents(events, T0);
      expect(results.map((r) => r.outcome)).toEqual(['applied', 'applied', 'stale', 'duplicate', 'stale', 'applied']);
      expect((await store.positions('s', T0))[0]!.onHand).toBe(10 - 2 + 4);
    });

    it('keeps deltas idempotent past the adjustments bound: 300 deltas sent twice count once', async () => {
      const store = open(factory);
      await store.applyEvents([snapshot('burst', 'l', 1_000, T0)], T0);
      const deltas: StockEvent[] = Array.from({ length: 300 }, (_, i) => ({ type: 'delta', eventId: `b${i}`, sku: 'burst', location: 'l', qty: (i % 3) - 1 || 2, asOf: T0 + 1 + i }));
      const expected = 1_000 + deltas.reduce((n, d) => n + d.qty, 0);
      for (let i = 0; i < deltas.length; i += 50) await store.applyEvents(deltas.slice(i, i + 50), T0);
      const again = await store.applyEvents(deltas, T0);
      // Folded deltas come back stale (already in the base), the others duplicate: none applies.
      expect(again.filter((r) => r.outcome === 'applied')).toHaveLength(0);
      expect((await store.positions('burst', T0))[0]!.onHand).toBe(expected);
      // A snapshot newer than every delta replaces them all.
      await store.applyEvents([snapshot('burst', 'l', 7, T0 + 1_000)], T0);
      expect((await store.positions('burst', T0))[0]!.onHand).toBe(7);
    });

    it('retrying a hold or a transition with the same id changes nothing the second time', async () => {
      const store = open(factory);
      await store.applyEvents([snapshot('a', 'l', 10), snapshot('b', 'l', 10)], T0);
      const request = { reservationId: 'idem', channel: 'web', lines: [{ sku: 'a', location: 'l', qty: 3, rule }, { sku: 'b', location: 'l', qty: 4, rule }], holdTtlMs: 60_000, nowMs: T0 };
      const first = await store.hold(request);
      const again = await store.hold({ ...request, lines: [{ sku: 'a', location: 'l', qty: 9, rule }] });
      expect(again).toEqual(first);
      expect((await store.positions('a', T0))[0]!.reserved).toBe(3);
      await store.transition('idem', 'confirm', T0 + 1);
      await store.transition('idem', 'confirm', T0 + 2);
      await store.transition('idem', 'fulfil', T0 + 3);
      const fulfilled = await store.transition('idem', 'fulfil', T0 + 4);
      expect(fulfilled.state).toBe('fulfilled');
      expect(await store.positions('a', T0 + 5)).toEqual([{ sku: 'a', location: 'l', onHand: 7, reserved: 0, version: expect.any(Number) }]);
      expect(await store.positions('b', T0 + 5)).toEqual([{ sku: 'b', location: 'l', onHand: 6, reserved: 0, version: expect.any(Number) }]);
      // The same event applied twice counts once.
      const delta: StockEvent = { type: 'delta', eventId: 'once', sku: 'a', location: 'l', qty: 5, asOf: T0 + 10 };
      await store.applyEvents([delta], T0 + 6);
      await store.applyEvents([delta, delta], T0 + 6);
      expect((await store.positions('a', T0 + 6))[0]!.onHand).toBe(12);
    });

    it('a hold retried concurrently with the same id takes its units once', async () => {
      const store = open(factory);
      await store.applyEvents([snapshot('twice', 'l', 10)], T0);
      const request = { reservationId: 'same', channel: 'web', lines: [{ sku: 'twice', location: 'l', qty: 4, rule }], holdTtlMs: 60_000, nowMs: T0 };
      const results = await Promise.all(Array.from({ length: 8 }, () => store.hold(request).catch((e: unknown) => e)));
      // Every answer is the one outcome (or "retry": a concurrent first attempt still in progress).
      for (const r of results) {
        if (r instanceof InventoryError) expect(r.message).toMatch(/retry/);
        else expect(r).toMatchObject({ id: 'same', state: 'held' });
      }
      expect(await store.positions('twice', T0)).toEqual([{ sku: 'twice', location: 'l', onHand: 10, reserved: 4, version: expect.any(Number) }]);
    });

    it('rejects bad input with a typed error that says what was wrong, and changes nothing', async () => {
      const store = open(factory);
      await store.applyEvents([snapshot('a', 'l', 10)], T0);
      const hold = (patch: Record<string, unknown>) => store.hold({ reservationId: 'bad', channel: 'web', lines: [{ sku: 'a', location: 'l', qty: 1, rule }], holdTtlMs: 60_000, nowMs: T0, ...patch } as never);
      const cases: [Record<string, unknown>, string, RegExp][] = [
        [{ lines: [{ sku: 'a', location: 'l', qty: -1, rule }] }, 'invalid_quantity', /qty -1 is invalid: expected a positive integer/],
        [{ lines: [{ sku: 'a', location: 'l', qty: 1.5, rule }] }, 'invalid_quantity', /qty 1.5 is invalid/],
        [{ lines: [{ sku: 'a', location: 'l', qty: 0, rule }] }, 'invalid_quantity', /qty 0 is invalid/],
        [{ lines: [] }, 'empty_basket', /has no lines/],
        [{ lines: Array.from({ length: basketLinesMax + 1 }, (_, i) => ({ sku: `s${i}`, location: 'l', qty: 1, rule })) }, 'basket_too_large', new RegExp(`has ${basketLinesMax + 1} lines: at most ${basketLinesMax}`)],
        [{ channel: '' }, 'invalid_id', /channel "" is invalid/],
        [{ reservationId: 'a|b' }, 'invalid_id', /reservation id "a\|b" is invalid/],
        [{ holdTtlMs: 10 }, 'invalid_ttl', /hold TTL 10 ms is invalid/],
      ];
      for (const [patch, code, message] of cases) {
        const error = await hold(patch).catch((e: unknown) => e);
        expect(error, JSON.stringify(patch)).toBeInstanceOf(InventoryError);
        expect((error as InventoryError).code).toBe(code);
        expect((error as InventoryError).message).toMatch(message);
      }
      const unknown = await store.transition('nope', 'confirm', T0).catch((e: unknown) => e);
      expect((unknown as InventoryError).code).toBe('unknown_reservation');
      expect((unknown as InventoryError).message).toMatch(/reservation nope does not exist/);
      expect(await store.positions('a', T0)).toEqual([{ sku: 'a', location: 'l', onHand: 10, reserved: 0, version: expect.any(Number) }]);
      expect(await store.reservation('bad', T0)).toBeUndefined();
    });

    it('1,000 holds racing for 100 units at one position take exactly 100', async () => {
      const shared = open(factory);
      await shared.applyEvents([snapshot('hot', 'dc', 100)], T0);
      // Redis: four connections racing on the same keys.
      const racers = shared instanceof RedisStore ? Array.from({ length: 4 }, () => new RedisStore(shared.redis.duplicate(), { keyPrefix: shared.keyPrefix })) : [shared];
      const results = await Promise.all(
        Array.from({ length: 1000 }, (_, i) =>
          racers[i % racers.length]!.hold({ reservationId: `race-${i}`, channel: 'web', lines: [{ sku: 'hot', location: 'dc', qty: 1, rule }], holdTtlMs: 60_000, nowMs: T0 }),
        ),
      );
      expect(results.filter((r) => r.state === 'held')).toHaveLength(100);
      expect(await shared.positions('hot', T0)).toEqual([{ sku: 'hot', location: 'dc', onHand: 100, reserved: 100, version: expect.any(Number) }]);
      if (racers.length > 1) await Promise.all(racers.map((r) => r.close()));
    });

    it('baskets racing for overlapping SKUs never leave a line half-held', async () => {
      const store = open(factory);
      const basketSkus = ['o1', 'o2', 'o3', 'o4'];
      await store.applyEvents(basketSkus.map((s) => snapshot(s, 'dc', 10)), T0);
      const baskets = Array.from({ length: 60 }, (_, i) => {
        const pick = [basketSkus[i % 4]!, basketSkus[(i + 1) % 4]!, basketSkus[(i + 2) % 4]!];
        return { reservationId: `basket-${i}`, channel: 'web', lines: pick.map((sku) => ({ sku, location: 'dc', qty: 1 + (i % 2), rule })), holdTtlMs: 60_000, nowMs: T0 };
      });
      const results = await Promise.all(baskets.map((b) => store.hold(b)));
      const reservedBySku = new Map<string, number>();
      results.forEach((r, i) => {
        if (r.state !== 'held') return;
        for (const line of baskets[i]!.lines) reservedBySku.set(line.sku, (reservedBySku.get(line.sku) ?? 0) + line.qty);
      });
      for (const sku of basketSkus) {
        const [position] = await store.positions(sku, T0);
        // What is reserved is exactly the lines of the baskets reported held: no stray half-basket.
        expect(position!.reserved).toBe(reservedBySku.get(sku) ?? 0);
        expect(position!.reserved).toBeLessThanOrEqual(10);
      }
    });

    it('releases a held reservation after its TTL, even with no sweep, on the next read', async () => {
      const store = open(factory);
      await store.applyEvents([snapshot('e', 'dc', 5)], T0);
      await store.hold({ reservationId: 'ttl', channel: 'web', lines: [{ sku: 'e', location: 'dc', qty: 5, rule }], holdTtlMs: 2_000, nowMs: T0 });
      expect((await store.positions('e', T0 + 1_999))[0]!.reserved).toBe(5);
      expect((await store.positions('e', T0 + 2_000))[0]!.reserved).toBe(0);
      expect((await store.reservation('ttl', T0 + 2_000))).toMatchObject({ state: 'released', expired: true });
      const late = await store.transition('ttl', 'confirm', T0 + 2_001).catch((e: unknown) => e);
      expect((late as InventoryError).code).toBe('invalid_transition');
    });

    it('reads several SKUs at once exactly as one by one, expired holds released, unknown SKUs empty', async () => {
      const store = open(factory);
      await store.applyEvents([snapshot('m1', 'dc', 5), snapshot('m1', 'b-store', 7), snapshot('m1', 'a-store', 9), snapshot('m2', 'dc', 3)], T0);
      await store.hold({ reservationId: 'many', channel: 'web', lines: [{ sku: 'm2', location: 'dc', qty: 2, rule }], holdTtlMs: 2_000, nowMs: T0 });
      const many = await store.positionsMany(['m2', 'none', 'm1'], T0 + 1_000);
      expect(many).toEqual([await store.positions('m2', T0 + 1_000), [], await store.positions('m1', T0 + 1_000)]);
      expect(many[2]!.map((p) => p.location)).toEqual(['a-store', 'b-store', 'dc']);
      expect(many[0]![0]!.reserved).toBe(2);
      // Past the TTL the hold is released by the read itself.
      expect((await store.positionsMany(['m2', 'm1'], T0 + 2_000))[0]![0]!.reserved).toBe(0);
    });

    it('lists the holds that lapse by a time, earliest first, and lets one caller claim each expiry notice', async () => {
      const store = open(factory);
      await store.applyEvents([snapshot('hu', 'dc', 50)], T0);
      const hold = (id: string, ttl: number) => store.hold({ reservationId: id, channel: 'web', lines: [{ sku: 'hu', location: 'dc', qty: 1, rule }], holdTtlMs: ttl, nowMs: T0 });
      await hold('hu-late', 9_000);
      await hold('hu-soon', 1_000);
      await hold('hu-mid', 5_000);
      await hold('hu-confirmed', 2_000);
      await store.transition('hu-confirmed', 'confirm', T0 + 10);
      expect(await store.heldUntil(T0 + 5_000, 10)).toEqual([
        { id: 'hu-soon', expiresAtMs: T0 + 1_000 },
        { id: 'hu-mid', expiresAtMs: T0 + 5_000 },
      ]);
      expect(await store.heldUntil(T0 + 60_000, 1)).toEqual([{ id: 'hu-soon', expiresAtMs: T0 + 1_000 }]);
      // Released holds leave the list.
      await store.transition('hu-mid', 'release', T0 + 20);
      expect((await store.heldUntil(T0 + 60_000, 10)).map((h) => h.id)).toEqual(['hu-soon', 'hu-late']);
      expect(await store.claimExpiryNotice('hu-soon')).toBe(true);
      expect(await store.claimExpiryNotice('hu-soon')).toBe(false);
      expect(await store.claimExpiryNotice('hu-late')).toBe(true);
    });

    it('visits each position positionsMany gives, once, with its line and column (forEachPosition), expired holds released', async () => {
      const store = open(factory);
      await store.applyEvents([snapshot('f1', 'dc', 5), snapshot('f1', 'b-store', 7), { type: 'delta', eventId: 'f1-sold', sku: 'f1', location: 'b-store', qty: -2, asOf: T0 + 1 }, snapshot('f2', 'dc', 3)], T0);
      await store.hold({ reservationId: 'visit', channel: 'web', lines: [{ sku: 'f2', location: 'dc', qty: 2, rule }], holdTtlMs: 2_000, nowMs: T0 });
      const bothColumns = new Map([
        ['dc', 0],
        ['b-store', 1],
      ]);
      const visited = async (skus: string[], nowMs: number, columns: ReadonlyMap<string, number> = bothColumns) => {
        const names = [...columns.keys()];
        const rows: string[] = [];
        await store.forEachPosition(skus, nowMs, columns, (line, column, onHand, reserved) => rows.push(`${line} ${column === -1 ? '(not a column)' : names[column]} ${onHand} ${reserved}`));
        return rows.sort();
      };
      const expected = async (skus: string[], nowMs: number) => (await store.positionsMany(skus, nowMs)).flatMap((list, line) => list.map((p) => `${line} ${p.location} ${p.onHand} ${p.reserved}`)).sort();
      const skus = ['f2', 'none', 'f1', 'f2'];
      expect(await visited(skus, T0 + 1_000)).toEqual(['0 dc 3 2', '2 b-store 5 0', '2 dc 5 0', '3 dc 3 2']);
      expect(await visited(skus, T0 + 1_000)).toEqual(await expected(skus, T0 + 1_000));
      expect(await visited(['f1'], T0 + 1_000)).toEqual(await expected(['f1'], T0 + 1_000));
      // Another map gives other columns (the memory store remembers each position's last one), then the first map again.
      expect(await visited(['f1'], T0 + 1_000, new Map([['b-store', 0]]))).toEqual(['0 (not a column) 5 0', '0 b-store 5 0']);
      expect(await visited(['f1'], T0 + 1_000, new Map([['dc', 0], ['b-store', 1]]))).toEqual(['0 b-store 5 0', '0 dc 5 0']);
      expect(await visited(['f1'], T0 + 1_000)).toEqual(await expected(['f1'], T0 + 1_000));
      expect(await visited(['f2'], T0 + 2_000)).toEqual(['0 dc 3 0']);
    });

    it('gives each of many reads issued at once its own SKUs (Redis takes them in one MGET), and a write between reads shows in the next', async () => {
      const store = open(factory);
      const skus = Array.from({ length: 30 }, (_, i) => `batch-${i}`);
      await store.applyEvents(skus.flatMap((sku, i) => [snapshot(sku, 'dc', i + 1), snapshot(sku, 'b-store', 100 + i)]), T0);
      const columns = new Map([
        ['dc', 0],
        ['b-store', 1],
      ]);
      const read = async (asked: string[]) => {
        const rows: string[] = [];
        await store.forEachPosition(asked, T0, columns, (line, column, onHand) => rows.push(`${asked[line]} ${column} ${onHand}`));
        return rows.sort();
      };
      const expected = (asked: string[]) => asked.flatMap((sku) => [`${sku} 0 ${Number(sku.slice(6)) + 1}`, `${sku} 1 ${100 + Number(sku.slice(6))}`]).sort();
      const baskets = Array.from({ length: 40 }, (_, b) => Array.from({ length: 1 + (b % 12) }, (_, i) => skus[(b * 7 + i * 3) % skus.length]!));
      // The first round finds no read views (Redis makes them then), the second reads them.
      for (let round = 0; round < 2; round++) {
        const answers = await Promise.all(baskets.map(read));
        answers.forEach((rows, b) => expect(rows).toEqual(expected(baskets[b]!)));
      }
      await store.applyEvents([snapshot('batch-3', 'dc', 44, T0 + 1)], T0);
      const again = await Promise.all([read(['batch-3', 'batch-4']), read(['batch-3'])]);
      expect(again).toEqual([['batch-3 0 44', 'batch-3 1 103', 'batch-4 0 5', 'batch-4 1 104'], ['batch-3 0 44', 'batch-3 1 103']]);
    });

    it('gives a position version 1 or more from its first state on (0 means "written before versions")', async () => {
      const store = open(factory);
      const [first] = await store.applyEvents([snapshot('v0', 'dc', 0)], T0);
      expect(first!.position.version).toBeGreaterThanOrEqual(1);
      const [read] = await store.positions('v0', T0);
      expect(read!.version).toBe(first!.position.version);
      const [next] = await store.applyEvents([snapshot('v0', 'dc', 4, T0 + 1)], T0);
      expect(next!.position.version).toBeGreaterThan(first!.position.version);
    });

    it('keeps location status overrides: set, replace, clear, bad id refused', async () => {
      const store = open(factory);
      expect(await store.locationStatuses()).toEqual(new Map());
      await store.setLocationStatus('dc', 'paused');
      await store.setLocationStatus('a-store', 'active');
      expect(await store.locationStatuses()).toEqual(new Map([['dc', 'paused'], ['a-store', 'active']]));
      await store.setLocationStatus('dc', undefined);
      await store.setLocationStatus('a-store', 'paused');
      expect(await store.locationStatuses()).toEqual(new Map([['a-store', 'paused']]));
      await expect(store.setLocationStatus('bad id', 'paused')).rejects.toThrow(/location/);
    });
  });
});

describe.each(stores)('inventory over the %s store', (_name, available, factory) => {
  const at = (id: string, type: 'dc' | 'store', status: 'active' | 'paused' = 'active') => ({
    id, type, lat: 48.8, lon: 2.3, capabilities: { ship: true, pickup: type === 'store', shipFromStore: false }, processingMinutes: 60, cutoffLocal: '16:00', status,
  });
  const network = {
    locations: [at('dc-1', 'dc'), at('store-1', 'store'), at('store-2', 'store', 'paused')],
    channels: [
      { id: 'web', locations: ['dc-1', 'store-1', 'store-2'], bufferByLocationType: { store: { units: 1, percent: 10 } }, minThreshold: 2 },
      { id: 'app', locations: ['dc-1'], bufferByLocationType: {}, minThreshold: 0, atpCap: 5 },
    ],
  };

  describe.skipIf(!available)('channel rules', () => {
    it('turns positions into channel ATP: buffers, threshold, paused locations, cap', async () => {
      const inventory = new Inventory(open(factory), network);
      await inventory.store.applyEvents([snapshot('k', 'dc-1', 10), snapshot('k', 'store-1', 20), snapshot('k', 'store-2', 50)], T0);
      // web: dc 10 + store-1 (20 - 1 - 2) 17 + paused store-2 0; app: dc only, capped at 5.
      expect(await inventory.channelAtp('k', 'web', T0)).toBe(27);
      expect(await inventory.channelAtp('k', 'app', T0)).toBe(5);
      const positions = await inventory.positionsWithAtp('k', T0);
      expect(positions.map((p) => [p.location, p.atp])).toEqual([
        ['dc-1', { web: 10, app: 5 }],
        ['store-1', { web: 17, app: 0 }],
        ['store-2', { web: 0, app: 0 }],
      ]);
      const paused = await inventory.hold({ reservationId: 'p', channel: 'web', lines: [{ sku: 'k', location: 'store-2', qty: 1 }], holdTtlMs: 60_000, nowMs: T0 });
      expect(paused.state).toBe('rejected');
      const capped = await inventory.hold({ reservationId: 'c', channel: 'app', lines: [{ sku: 'k', location: 'dc-1', qty: 6 }], holdTtlMs: 60_000, nowMs: T0 });
      expect(capped.shortfalls).toEqual([{ sku: 'k', location: 'dc-1', requested: 6, available: 5 }]);
    });

    it('refuses an unknown channel or location with a clear error, and changes nothing', async () => {
      const inventory = new Inventory(open(factory), network);
      await inventory.store.applyEvents([snapshot('k', 'dc-1', 10)], T0);
      const hold = (channel: string, location: string) => inventory.hold({ reservationId: 'x', channel, lines: [{ sku: 'k', location, qty: 1 }], holdTtlMs: 60_000, nowMs: T0 }).catch((e: unknown) => e);
      const channel = (await hold('kiosk', 'dc-1')) as InventoryError;
      expect([channel.code, channel.message]).toEqual(['unknown_channel', 'channel "kiosk" is not configured: known channels are web, app']);
      const location = (await hold('web', 'dc-9')) as InventoryError;
      expect([location.code, location.message]).toEqual(['unknown_location', 'line 0: location "dc-9" is not in the network configuration']);
      expect(await inventory.store.positions('k', T0)).toEqual([{ sku: 'k', location: 'dc-1', onHand: 10, reserved: 0, version: expect.any(Number) }]);
      expect(await inventory.store.reservation('x', T0)).toBeUndefined();
    });
  });
});
