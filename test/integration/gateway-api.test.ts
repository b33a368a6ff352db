// The gateway's HTTP API end to end, on the embedded (in-memory) store and on real Redis: every
// route, every option type, paused-location fallback, promise dates across a cut-off, idempotent
// holds, and bad requests of every kind answered 4xx with problem+json while the server keeps
// serving. Times are pinned with the gateway's clock so cut-offs are crossed on purpose.

import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { projectPath } from '../../config/paths.js';
import { Packr } from 'msgpackr';
import { Registry } from 'prom-client';
import { positionAtp } from '../../engine/core/atp.js';
import type { StockEvent } from '../../engine/core/types.js';
import { sampleNetwork } from '../../engine/network/sample.js';
import type { NetworkConfig, NetworkLocation } from '../../engine/network/config.js';
import { MemoryStore } from '../../engine/store/memory-store.js';
import { RedisStore } from '../../engine/store/redis-store.js';
import type { InventoryStore } from '../../engine/store/types.js';
import { ApiKeys } from '../../gateway/auth.js';
import { LocalFeeds } from '../../gateway/feeds.js';
import { NetworkState } from '../../gateway/network-state.js';
import { startGateway, type RunningGateway } from '../../gateway/server.js';
import { GatewayService } from '../../gateway/service.js';
import type { AtpChange, ReservationTransition } from '../../engine/stream/wire.js';
import { redisUrl, requireService } from '../support/services.js';

const redisUp = await requireService('redis');
const packr = new Packr({ useRecords: false, mapsAsObjects: true });

const adminKey = 'test-admin-key-0123456789';
const readKey = 'test-read-key-0123456789';
const writeKey = 'test-write-key-0123456789';
const keys = () =>
  new ApiKeys([
    { name: 'admin', secret: adminKey, scopes: ['availability:read', 'reservations:write', 'admin'] },
    { name: 'read', secret: readKey, scopes: ['availability:read'] },
    { name: 'write', secret: writeKey, scopes: ['reservations:write'] },
  ]);

const paris = { lat: 48.8566, lon: 2.3522 };

function km(a: { lat: number; lon: number }, b: { lat: number; lon: number }): number {
  const rad = Math.PI / 180;
  const h = Math.sin(((b.lat - a.lat) * rad) / 2) ** 2 + Math.cos(a.lat * rad) * Math.cos(b.lat * rad) * Math.sin(((b.lon - a.lon) * rad) / 2) ** 2;
  return 2 * 6371 * Math.asin(Math.sqrt(h));
}

/** Local wall-clock time in Europe/Paris → ms since the epoch (for pinning the clock). */
function parisTime(isoLocal: string): number {
  // Paris is UTC+1 in winter, UTC+2 in summer; find the offset that round-trips.
  for (const offsetH of [1, 2]) {
    const ms = Date.parse(`${isoLocal}Z`) - offsetH * 3_600_000;
    const shown = new Intl.DateTimeFormat('sv-SE', { timeZone: 'Europe/Paris', year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', second: '2-digit' }).format(ms).replace(' ', 'T');
    if (shown === isoLocal) return ms;
  }
  throw new Error(`cannot place ${isoLocal} in Europe/Paris`);
}

interface Fixture {
  network: NetworkConfig;
  web: string;
  dc1: NetworkLocation;
  dc2: NetworkLocation;
  /** The pickup store nearest to Paris that can also ship. */
  storeP: NetworkLocation;
}

function fixture(): Fixture {
  const network = sampleNetwork();
  const web = network.channels[0]!.id;
  const channel = network.channels[0]!;
  const dcs = network.locations.filter((l) => l.type === 'dc' && channel.locations.includes(l.id));
  const stores = network.locations
    .filter((l) => l.type === 'store' && l.capabilities.pickup && l.capabilities.shipFromStore && channel.locations.includes(l.id))
    .sort((a, b) => km(a, paris) - km(b, paris));
  expect(dcs.length).toBeGreaterThanOrEqual(2);
  expect(stores.length).toBeGreaterThan(0);
  return { network, web, dc1: dcs[0]!, dc2: dcs[1]!, storeP: stores[0]! };
}

const storeKinds: [string, boolean, () => Promise<InventoryStore>][] = [
  ['in-memory', true, async () => new MemoryStore()],
  [
    'Redis',
    redisUp,
    async () => {
      const url = `${redisUrl}/11`;
      const store = RedisStore.connect({ url });
      // A clean database: the test's SKUs and reservations start from nothing.
      const { Redis } = await import('ioredis');
      const raw = new Redis(url);
      await raw.flushdb();
      raw.disconnect();
      return store;
    },
  ],
];

describe.each(storeKinds)('gateway API on the %s store', (_name, available, openStore) => {
  describe.skipIf(!available)('routes', () => {
    let gateway: RunningGateway;
    let base: string;
    let store: InventoryStore;
    let f: Fixture;
    let state: NetworkState;
    let nowMs = parisTime('2026-11-24T10:00:00'); // a Tuesday morning, before every cut-off
    const transitions: ReservationTransition[] = [];
    const changes: AtpChange[] = [];
    let service: GatewayService;

    const call = async (method: string, path: string, options: { key?: string | null; body?: unknown; raw?: string | Buffer; headers?: Record<string, string> } = {}) => {
      const headers: Record<string, string> = { ...(options.headers ?? {}) };
      const key = options.key === undefined ? adminKey : options.key;
      if (key) headers.authorization = `Bearer ${key}`;
      let body: string | Buffer | undefined = options.raw;
      if (options.body !== undefined) {
        body = JSON.stringify(options.body);
        headers['content-type'] ??= 'application/json';
      }
      const response = await fetch(`${base}${path}`, { method, headers, ...(body !== undefined ? { body } : {}) });
      const type = response.headers.get('content-type') ?? '';
      const buffer = Buffer.from(await response.arrayBuffer());
      const json = type.includes('msgpack') ? packr.unpack(buffer) : buffer.length > 0 && type.includes('json') ? JSON.parse(buffer.toString()) : undefined;
      return { status: response.status, type, json, headers: response.headers };
    };

    const expectProblem = (r: { status: number; type: string; json: { detail?: string; status?: number } }, status: number, detailPart: string | RegExp) => {
      expect(r.status).toBe(status);
      expect(r.type).toBe('application/problem+json');
      expect(r.json.status).toBe(status);
      expect(r.json.detail).toMatch(detailPart);
    };

    const snapshot = (sku: string, location: string, qty: number, n: number): StockEvent => ({ type: 'snapshot', eventId: `gw-${sku}-${location}-${n}`, sku, location, qty, asOf: nowMs - 60_000 + n });

    beforeAll(async () => {
      f = fixture();
      store = await openStore();
      state = new NetworkState(f.network, store);
      const feeds = new LocalFeeds();
      feeds.onTransitions((t) => transitions.push(...t));
      feeds.onChanges((c) => changes.push(...c));
      await store.applyEvents(
        [
          snapshot('GW-A', f.dc1.id, 40, 1),
          snapshot('GW-A', f.storeP.id, 30, 2),
          snapshot('GW-B', f.dc1.id, 40, 3),
          snapshot('GW-B', f.dc2.id, 40, 4),
          snapshot('GW-C', f.storeP.id, 30, 5),
          snapshot('GW-D', f.dc2.id, 40, 6),
          snapshot('GW-R', f.dc1.id, 5, 7),
        ],
        nowMs,
      );
      // The gateway's fixed clock, and no expiry timer: the expiry test runs the checks itself.
      service = new GatewayService(store, state, feeds, { clock: () => nowMs, expiryCheckMs: false });
      gateway = await startGateway({ host: '127.0.0.1', port: 0, registry: new Registry(), service, keys: keys(), clock: () => nowMs, corsOrigins: ['https://shop.example.com'], log: () => {} });
      base = `http://127.0.0.1:${gateway.port}`;
    });

    afterAll(async () => {
      gateway?.close();
      await store?.close();
    });

    const basket = (lines: { sku: string; qty: number }[], extra: Record<string, unknown> = {}) => ({ channel: f.web, lines, destination: paris, pickup: { near: paris, radiusKm: 50 }, ...extra });

    it('answers a basket with ranked delivery and pickup options, each with a plan and a promise', async () => {
      const r = await call('POST', '/v1/availability', { body: basket([{ sku: 'GW-A', qty: 2 }, { sku: 'GW-C', qty: 1 }]) });
      expect(r.status).toBe(200);
      const methods = (r.json.options as { method: string }[]).map((o) => o.method);
      expect(methods).toContain('delivery_standard');
      expect(methods).toContain('pickup_in_store');
      expect(methods).toContain('delivery_express');
      for (const [i, option] of (r.json.options as { rank: number; shipments: { lines: unknown[] }[]; promiseAtMs: number; shipmentCount: number }[]).entries()) {
        expect(option.rank).toBe(i + 1);
        expect(option.shipments.length).toBe(option.shipmentCount);
        expect(option.promiseAtMs).toBeGreaterThan(nowMs);
      }
      const pickup = (r.json.options as { method: string; pickup?: { location: string } }[]).find((o) => o.method === 'pickup_in_store')!;
      expect(pickup.pickup!.location).toBe(f.storeP.id);
      const lines = r.json.lines as { sku: string; inStock: boolean; requested: number }[];
      expect(lines.map((l) => [l.sku, l.requested, l.inStock])).toEqual([
        ['GW-A', 2, true],
        ['GW-C', 1, true],
      ]);
    });

    it('offers pickup after transfer when no nearby store holds the basket', async () => {
      const r = await call('POST', '/v1/availability', { body: basket([{ sku: 'GW-D', qty: 1 }]) });
      expect(r.status).toBe(200);
      const methods = (r.json.options as { method: string }[]).map((o) => o.method);
      expect(methods).toContain('pickup_after_transfer');
      expect(methods).not.toContain('pickup_in_store');
      const delivery = (r.json.options as { method: string; shipments: { from: string }[] }[]).find((o) => o.method === 'delivery_standard')!;
      expect(delivery.shipments.map((s) => s.from)).toEqual([f.dc2.id]);
    });

    it('never routes through a paused location, and routes back when it resumes', async () => {
      const before = await call('POST', '/v1/availability', { body: basket([{ sku: 'GW-B', qty: 1 }], { methods: ['delivery'] }) });
      const firstFrom = (before.json.options as { method: string; shipments: { from: string }[] }[]).find((o) => o.method === 'delivery_standard')!.shipments[0]!.from;
      expect([f.dc1.id, f.dc2.id]).toContain(firstFrom);
      const other = firstFrom === f.dc1.id ? f.dc2.id : f.dc1.id;
      expect((await call('PUT', `/v1/locations/${firstFrom}/status`, { body: { status: 'paused' } })).json).toEqual({ id: firstFrom, status: 'paused' });
      const paused = await call('POST', '/v1/availability', { body: basket([{ sku: 'GW-B', qty: 1 }], { methods: ['delivery'] }) });
      const used = (paused.json.options as { shipments: { from: string }[] }[]).flatMap((o) => o.shipments.map((s) => s.from));
      expect(used.length).toBeGreaterThan(0);
      expect(used).not.toContain(firstFrom);
      expect(used).toContain(other);
      await call('PUT', `/v1/locations/${firstFrom}/status`, { body: { status: 'active' } });
      const back = await call('POST', '/v1/availability', { body: basket([{ sku: 'GW-B', qty: 1 }], { methods: ['delivery'] }) });
      expect((back.json.options as { shipments: { from: string }[] }[])[0]!.shipments[0]!.from).toBe(firstFrom);
    });

    it('shares a pause through the store: a second gateway on the same store stops using the location too', async () => {
      const stateB = new NetworkState(f.network, store);
      const stopFollowing = await stateB.follow(20);
      const gatewayB = await startGateway({ host: '127.0.0.1', port: 0, registry: new Registry(), service: new GatewayService(store, stateB, undefined, { expiryCheckMs: false }), keys: keys(), clock: () => nowMs, log: () => {} });
      const usedOnB = async () => {
        const r = await fetch(`http://127.0.0.1:${gatewayB.port}/v1/availability`, { method: 'POST', headers: { authorization: `Bearer ${adminKey}`, 'content-type': 'application/json' }, body: JSON.stringify(basket([{ sku: 'GW-B', qty: 1 }], { methods: ['delivery'] })) });
        return ((await r.json()) as { options: { shipments: { from: string }[] }[] }).options.flatMap((o) => o.shipments.map((s) => s.from));
      };
      try {
        expect(await usedOnB()).toContain(f.dc1.id);
        expect((await call('PUT', `/v1/locations/${f.dc1.id}/status`, { body: { status: 'paused' } })).status).toBe(200);
        await expect.poll(usedOnB, { timeout: 5_000 }).not.toContain(f.dc1.id);
        expect(await usedOnB()).toContain(f.dc2.id);
        expect(await store.locationStatuses()).toEqual(new Map([[f.dc1.id, 'paused']]));
        // Resuming clears the override in the store, and B routes through the location again.
        await call('PUT', `/v1/locations/${f.dc1.id}/status`, { body: { status: 'active' } });
        expect(await store.locationStatuses()).toEqual(new Map());
        await expect.poll(usedOnB, { timeout: 5_000 }).toContain(f.dc1.id);
      } finally {
        stopFollowing();
        gatewayB.close();
      }
    });

    it('moves the promise by a day when the order comes after the cut-off', async () => {
      const [h, m] = f.dc2.cutoffLocal.split(':').map(Number) as [number, number];
      const at = (minutes: number) => {
        const t = h * 60 + m + minutes;
        return parisTime(`2026-11-24T${String(Math.floor(t / 60)).padStart(2, '0')}:${String(t % 60).padStart(2, '0')}:00`);
      };
      const promise = async () => {
        const r = await call('POST', '/v1/availability', { body: basket([{ sku: 'GW-D', qty: 1 }], { methods: ['delivery'] }) });
        return (r.json.options as { method: string; promiseAtMs: number }[]).find((o) => o.method === 'delivery_standard')!.promiseAtMs;
      };
      const saved = nowMs;
      try {
        nowMs = at(-1);
        const before = await promise();
        nowMs = at(+1);
        const after = await promise();
        const day = (ms: number) => new Intl.DateTimeFormat('sv-SE', { timeZone: 'Europe/Paris' }).format(ms);
        expect(day(after) > day(before)).toBe(true);
      } finally {
        nowMs = saved;
      }
    });

    it('answers PDP and PLP from live stock, and 404s an unknown SKU on PDP', async () => {
      const web = f.network.channels[0]!;
      const expected = positionAtp({ onHand: 40, reserved: 0 }, f.dc1, web) + positionAtp({ onHand: 30, reserved: 0 }, f.storeP, web);
      const pdp = await call('GET', `/v1/availability/GW-A?channel=${f.web}&lat=${paris.lat}&lon=${paris.lon}`);
      expect(pdp.status).toBe(200);
      expect(pdp.json).toMatchObject({ sku: 'GW-A', channel: f.web, known: true, atp: expected, inStock: true });
      expect((pdp.json.pickupStores as { location: string }[]).map((s) => s.location)).toContain(f.storeP.id);
      const plp = await call('POST', '/v1/availability/skus', { body: { channel: f.web, skus: ['GW-A', 'GW-NONE'] } });
      expect(plp.status).toBe(200);
      expect((plp.json.items as { sku: string; known: boolean; atp: number }[]).map((i) => [i.sku, i.known, i.atp])).toEqual([
        ['GW-A', true, expected],
        ['GW-NONE', false, 0],
      ]);
      expectProblem(await call('GET', `/v1/availability/GW-NONE?channel=${f.web}`), 404, /unknown/);
    });

    it('holds all lines or none, idempotently, and runs confirm, fulfil and release', async () => {
      const hold = { reservationId: 'gw-r1', channel: f.web, lines: [{ sku: 'GW-R', location: f.dc1.id, qty: 2 }], holdTtlMs: 60_000 };
      const first = await call('POST', '/v1/reservations', { key: writeKey, body: hold });
      expect(first.status).toBe(201);
      expect(first.json).toMatchObject({ id: 'gw-r1', state: 'held' });
      const again = await call('POST', '/v1/reservations', { key: writeKey, body: hold });
      expect(again.status).toBe(200);
      expect(again.json).toEqual(first.json);
      const positions = await call('GET', '/v1/positions/GW-R');
      expect(positions.json.positions).toEqual([expect.objectContaining({ location: f.dc1.id, onHand: 5, reserved: 2 })]);
      // Only one "held" transition went out, however often the hold was retried.
      expect(transitions.filter((t) => t.reservationId === 'gw-r1').map((t) => t.transition)).toEqual(['held']);

      const tooMuch = await call('POST', '/v1/reservations', { key: writeKey, body: { reservationId: 'gw-r2', channel: f.web, lines: [{ sku: 'GW-R', location: f.dc1.id, qty: 1 }, { sku: 'GW-A', location: f.dc1.id, qty: 1_000 }] } });
      expectProblem(tooMuch, 409, /GW-A/);
      expect((tooMuch.json as { reservation: { state: string } }).reservation.state).toBe('rejected');
      expect((await call('GET', '/v1/positions/GW-R')).json.positions[0].reserved).toBe(2);

      expect((await call('POST', '/v1/reservations/gw-r1/confirm', { key: writeKey })).json.state).toBe('confirmed');
      expect((await call('POST', '/v1/reservations/gw-r1/confirm', { key: writeKey })).json.state).toBe('confirmed');
      expect((await call('POST', '/v1/reservations/gw-r1/fulfil', { key: writeKey })).json.state).toBe('fulfilled');
      expect((await call('GET', '/v1/positions/GW-R')).json.positions).toEqual([expect.objectContaining({ onHand: 3, reserved: 0 })]);
      expectProblem(await call('POST', '/v1/reservations/gw-r1/release', { key: writeKey }), 409, /fulfilled/);
      expect((await call('GET', '/v1/reservations/gw-r1', { key: writeKey })).json.state).toBe('fulfilled');

      const r3 = await call('POST', '/v1/reservations', { key: writeKey, body: { reservationId: 'gw-r3', channel: f.web, lines: [{ sku: 'GW-R', location: f.dc1.id, qty: 1 }] } });
      expect(r3.status).toBe(201);
      expect((await call('POST', '/v1/reservations/gw-r3/release', { key: writeKey })).json.state).toBe('released');
      expect((await call('GET', '/v1/positions/GW-R')).json.positions[0].reserved).toBe(0);
      expectProblem(await call('GET', '/v1/reservations/gw-nope', { key: writeKey }), 404, /gw-nope/);
      expectProblem(await call('POST', '/v1/reservations/gw-nope/confirm', { key: writeKey }), 404, /gw-nope/);
    });

    it('publishes a hold that expires: the expired transition and the ATP of its positions, with no other event', async () => {
      const reserved = async () => ((await call('GET', '/v1/positions/GW-D')).json.positions as { location: string; reserved: number }[]).find((p) => p.location === f.dc2.id)!.reserved;
      const before = await reserved();
      const hold = await call('POST', '/v1/reservations', { key: writeKey, body: { reservationId: 'gw-x1', channel: f.web, lines: [{ sku: 'GW-D', location: f.dc2.id, qty: 3 }], holdTtlMs: 1_000 } });
      expect(hold.status).toBe(201);
      expect(service.expiries.size).toBeGreaterThanOrEqual(1);
      const expiresAtMs = (hold.json as { expiresAtMs: number }).expiresAtMs;
      const lastChange = () => changes.filter((c) => c.sku === 'GW-D' && c.location === f.dc2.id).at(-1);
      await expect.poll(() => lastChange()?.reserved).toBe(before + 3);
      // Not due yet: nothing is published.
      await service.publishExpiries(expiresAtMs - 1);
      expect(transitions.filter((t) => t.reservationId === 'gw-x1').map((t) => t.transition)).toEqual(['held']);
      // Due: the gateway reads the hold back, finds it released as expired, and publishes both.
      await service.publishExpiries(expiresAtMs);
      const expired = transitions.filter((t) => t.reservationId === 'gw-x1' && t.transition === 'expired');
      expect(expired).toEqual([expect.objectContaining({ channel: f.web, lines: [{ sku: 'GW-D', location: f.dc2.id, qty: 3 }], atMs: expiresAtMs })]);
      await expect.poll(() => lastChange()?.reserved).toBe(before);
      expect(lastChange()!.atp[f.web]).toBeGreaterThan(0);
      // Published once: the hold is no longer watched.
      await service.publishExpiries(expiresAtMs + 5_000);
      expect(transitions.filter((t) => t.reservationId === 'gw-x1' && t.transition === 'expired')).toHaveLength(1);
    });

    it('publishes the expiry of a hold placed before a restart or by another gateway, found in the store, and only once', async () => {
      const hold = await call('POST', '/v1/reservations', { key: writeKey, body: { reservationId: 'gw-x2', channel: f.web, lines: [{ sku: 'GW-D', location: f.dc2.id, qty: 2 }], holdTtlMs: 2_000 } });
      expect(hold.status).toBe(201);
      const expiresAtMs = (hold.json as { expiresAtMs: number }).expiresAtMs;
      // A gateway started after the hold (this one restarted, or another) has never watched it.
      const restartedFeeds = new LocalFeeds();
      const restarted: ReservationTransition[] = [];
      restartedFeeds.onTransitions((t) => restarted.push(...t));
      const other = new GatewayService(store, state, restartedFeeds, { clock: () => nowMs, expiryCheckMs: false });
      expect(other.expiries.size).toBe(0);
      await other.publishExpiries(expiresAtMs - 1);
      expect(other.expiries.size).toBeGreaterThanOrEqual(1);
      expect(restarted.filter((t) => t.reservationId === 'gw-x2')).toEqual([]);
      await other.publishExpiries(expiresAtMs);
      expect(restarted.filter((t) => t.reservationId === 'gw-x2')).toEqual([expect.objectContaining({ transition: 'expired', lines: [{ sku: 'GW-D', location: f.dc2.id, qty: 2 }], atMs: expiresAtMs })]);
      // The gateway that placed it watches it too, and finds its expiry published already.
      await service.publishExpiries(expiresAtMs);
      expect(transitions.filter((t) => t.reservationId === 'gw-x2').map((t) => t.transition)).toEqual(['held']);
      expect(await store.claimExpiryNotice('gw-x2')).toBe(false);
    });

    it('speaks msgpack both ways', async () => {
      const body = packr.pack(basket([{ sku: 'GW-A', qty: 1 }]));
      const r = await call('POST', '/v1/availability', { raw: body, headers: { 'content-type': 'application/msgpack' } });
      expect(r.status).toBe(200);
      expect(r.type).toBe('application/msgpack');
      expect((r.json.options as unknown[]).length).toBeGreaterThan(0);
      const asJson = await call('POST', '/v1/availability', { raw: body, headers: { 'content-type': 'application/msgpack', accept: 'application/json' } });
      expect(asJson.type).toBe('application/json');
    });

    it('answers every kind of bad request with a 4xx problem that says what was wrong, and keeps serving', async () => {
      expectProblem(await call('POST', '/v1/availability', { raw: '{"channel": "web", "lines": [', headers: { 'content-type': 'application/json' } }), 400, /not valid JSON/);
      expectProblem(await call('POST', '/v1/availability', { raw: Buffer.from([0xc1, 0xc1]), headers: { 'content-type': 'application/msgpack' } }), 400, /not valid msgpack/);
      expectProblem(await call('POST', '/v1/availability', { body: { channel: f.web, lines: 'A' , destination: paris} }), 400, /lines is "A"/);
      expectProblem(await call('POST', '/v1/availability', { body: basket([{ sku: 'GW-A', qty: -1 }]) }), 400, /lines\[0\]\.qty is -1/);
      expectProblem(await call('POST', '/v1/availability', { body: { ...basket([{ sku: 'GW-A', qty: 1 }]), channel: 'nope' } }), 400, /channel "nope"/);
      expectProblem(await call('POST', '/v1/availability', { body: basket([{ sku: 'GW-NONE', qty: 1 }]) }), 422, /GW-NONE/);
      expectProblem(await call('POST', '/v1/availability', { body: basket(Array.from({ length: 101 }, (_, i) => ({ sku: `S${i}`, qty: 1 }))) }), 400, /at most 100/);
      expectProblem(await call('POST', '/v1/availability', { raw: 'x'.repeat(70_000), headers: { 'content-type': 'application/json' } }), 413, /at most 65536/);
      expectProblem(await call('POST', '/v1/availability', { raw: 'a=1', headers: { 'content-type': 'application/x-www-form-urlencoded' } }), 415, /application\/json/);
      expectProblem(await call('POST', '/v1/availability', { headers: { 'content-type': 'application/json' } }), 400, /no body/);
      expectProblem(await call('POST', '/v1/availability', { raw: '[1,2]', headers: { 'content-type': 'application/json' } }), 400, /expected a JSON object/);
      expectProblem(await call('POST', '/v1/availability', { key: null, body: basket([{ sku: 'GW-A', qty: 1 }]) }), 401, /API key/);
      expectProblem(await call('POST', '/v1/availability', { key: 'wrong-key-0123456789', body: basket([{ sku: 'GW-A', qty: 1 }]) }), 401, /not valid/);
      expectProblem(await call('POST', '/v1/reservations', { key: readKey, body: {} }), 403, /reservations:write/);
      expectProblem(await call('GET', '/v1/positions/GW-A', { key: readKey }), 403, /admin/);
      expectProblem(await call('POST', '/v1/reservations', { key: writeKey, body: { reservationId: 'gw-bad', channel: f.web, lines: [] } }), 400, /no lines/);
      expectProblem(await call('POST', '/v1/reservations', { key: writeKey, body: { reservationId: 'gw-bad', channel: f.web, lines: [{ sku: 'GW-A', location: 'nowhere', qty: 1 }] } }), 400, /nowhere/);
      // The PDP, the PLP and holds: their own limits and unknowns, over HTTP.
      expectProblem(await call('GET', '/v1/availability/GW-A'), 400, /"channel" is missing/);
      expectProblem(await call('GET', '/v1/availability/GW-A?channel=nope'), 400, /channel "nope"/);
      expectProblem(await call('GET', `/v1/availability/GW-A?channel=${f.web}&lat=91&lon=2`), 400, /lat/);
      expectProblem(await call('POST', '/v1/availability/skus', { body: { channel: 'nope', skus: ['GW-A'] } }), 400, /channel "nope"/);
      expectProblem(await call('POST', '/v1/availability/skus', { body: { channel: f.web, skus: Array.from({ length: 501 }, (_, i) => `S${i}`) } }), 400, /at most 500/);
      expectProblem(await call('POST', '/v1/availability/skus', { body: { channel: f.web, skus: 'GW-A' } }), 400, /skus/);
      expectProblem(await call('POST', '/v1/reservations', { key: writeKey, body: { reservationId: 'gw-big', channel: f.web, lines: Array.from({ length: 101 }, (_, i) => ({ sku: `S${i}`, location: f.dc1.id, qty: 1 })) } }), 400, /at most 100/);
      expectProblem(await call('POST', '/v1/reservations', { key: writeKey, body: { reservationId: 'gw-bad', channel: 'nope', lines: [{ sku: 'GW-A', location: f.dc1.id, qty: 1 }] } }), 400, /channel "nope"/);
      expectProblem(await call('POST', '/v1/reservations/gw-never/confirm', { key: writeKey, body: {} }), 404, /gw-never/);
      expectProblem(await call('PUT', '/v1/locations/nowhere/status', { body: { status: 'paused' } }), 404, /nowhere/);
      expectProblem(await call('PUT', `/v1/locations/${f.dc1.id}/status`, { body: { status: 'closed' } }), 400, /status/);
      expectProblem(await call('DELETE', '/v1/availability'), 405, /POST/);
      expectProblem(await call('GET', '/v1/nope'), 404, /no route/);
      // Path ids that are not valid percent-encoding: a 400 naming the segment (decoding one used to throw inside uWS).
      expectProblem(await call('GET', `/v1/availability/%E0?channel=${f.web}`, { key: readKey }), 400, /"%E0" is not valid percent-encoding/);
      expectProblem(await call('GET', '/v1/positions/%ZZ'), 400, /"%ZZ" is not valid percent-encoding/);
      expectProblem(await call('POST', '/v1/reservations/%E0%A4/confirm', { key: writeKey, body: {} }), 400, /percent-encoding/);
      expectProblem(await call('GET', '/v1/positions/%E0', { key: null }), 401, /API key/);
      // Still serving, and still right.
      expect((await call('POST', '/v1/availability', { body: basket([{ sku: 'GW-A', qty: 1 }]) })).status).toBe(200);
      expect((await fetch(`${base}/health`)).status).toBe(200);
    });

    it('adds CORS headers for configured storefront origins only', async () => {
      const allowed = await fetch(`${base}/v1/availability`, { method: 'OPTIONS', headers: { origin: 'https://shop.example.com', 'access-control-request-method': 'POST' } });
      expect(allowed.headers.get('access-control-allow-origin')).toBe('https://shop.example.com');
      expect(allowed.headers.get('access-control-allow-headers')).toContain('authorization');
      const denied = await fetch(`${base}/v1/availability`, { method: 'OPTIONS', headers: { origin: 'https://evil.example.com', 'access-control-request-method': 'POST' } });
      expect(denied.headers.get('access-control-allow-origin')).toBeNull();
      const r = await call('GET', `/v1/availability/GW-A?channel=${f.web}`, { headers: { origin: 'https://shop.example.com' } });
      expect(r.headers.get('access-control-allow-origin')).toBe('https://shop.example.com');
    });

    it('counts requests by route and status, latency and options in /metrics', async () => {
      const text = await (await fetch(`${base}/metrics`)).text();
      expect(text).toMatch(/instock_gateway_requests_total\{route="\/v1\/availability",method="POST",status="200"\} [1-9]/);
      expect(text).toMatch(/instock_gateway_requests_total\{route="\/v1\/availability",method="POST",status="400"\} [1-9]/);
      expect(text).toMatch(/instock_gateway_request_duration_seconds_count\{route="\/v1\/reservations"\} [1-9]/);
      expect(text).toMatch(/instock_gateway_availability_options_count\{channel="[^"]+"\} [1-9]/);
      // Every series the gateway dashboard and alert rules query is one this gateway exports.
      const used = new Set(
        [readFileSync(projectPath('grafana', 'dashboards', 'instock-gateway.json'), 'utf8'), readFileSync(projectPath('grafana', 'prometheus', 'rules', 'instock.yml'), 'utf8')]
          .join('\n')
          .match(/instock_gateway_[a-z_]+/g)!
          .map((name) => name.replace(/_(bucket|sum|count)$/, '')),
      );
      expect(used.size).toBeGreaterThanOrEqual(6);
      for (const name of used) expect(text, name).toContain(`# HELP ${name} `);
    });
  });
});

describe('gateway rate limit', () => {
  it('answers 429 with retry-after past the per-key rate, and other keys still pass', async () => {
    const f = fixture();
    const store = new MemoryStore();
    const gateway = await startGateway({ host: '127.0.0.1', port: 0, registry: new Registry(), service: new GatewayService(store, new NetworkState(f.network), undefined, { expiryCheckMs: false }), keys: keys(), rateLimitRps: 2, log: () => {} });
    try {
      const base = `http://127.0.0.1:${gateway.port}`;
      const get = (key: string) => fetch(`${base}/v1/reservations/x`, { headers: { authorization: `Bearer ${key}` } });
      const statuses = [];
      for (let i = 0; i < 6; i++) statuses.push((await get(writeKey)).status);
      // Burst of 2 s × 2/s = 4 tokens, then refused.
      expect(statuses.slice(0, 4)).toEqual([404, 404, 404, 404]);
      expect(statuses.slice(4)).toEqual([429, 429]);
      const limited = await get(writeKey);
      expect(limited.headers.get('retry-after')).toMatch(/^\d+$/);
      expect(((await limited.json()) as { detail: string }).detail).toContain('rate limit');
      expect((await get(adminKey)).status).toBe(404);
      expect(await (await fetch(`${base}/metrics`)).text()).toMatch(/instock_gateway_rate_limited_total\{key="write"\} [3-9]/);
    } finally {
      gateway.close();
      await store.close();
    }
  });
});
