// The OpenAPI document at /openapi.json is kept true: every route of the server's table is in it,
// every route is called here (successes and failures), and every answer's status is documented
// and its body validates against the documented schema (JSON Schema 2020-12 via ajv), refusals
// (401, 403, 413, 415, 429) included.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { Registry } from 'prom-client';
import { VelocityTracker } from '../../engine/core/velocity.js';
import { sampleNetwork } from '../../engine/network/sample.js';
import { MemoryStore } from '../../engine/store/memory-store.js';
import { InProcessStream } from '../../engine/stream/in-process.js';
import { ApiKeys, scopes } from '../../gateway/auth.js';
import { LocalFeeds } from '../../gateway/feeds.js';
import { NetworkState } from '../../gateway/network-state.js';
import { apiRoutes, startGateway, type RunningGateway } from '../../gateway/server.js';
import { GatewayService } from '../../gateway/service.js';

const key = 'contract-key-0123456789';
const readKey = 'contract-read-0123456789';

type Spec = { paths: Record<string, Record<string, { responses: Record<string, { content?: Record<string, { schema: unknown }> }> }>>; components: { schemas: Record<string, unknown> } };

describe('OpenAPI contract', () => {
  let gateway: RunningGateway;
  let base: string;
  let limited: RunningGateway;
  let limitedBase: string;
  let spec: Spec;
  let service: GatewayService;
  const store = new MemoryStore();
  const network = sampleNetwork();
  const called = new Set<string>();
  const ajv = new Ajv2020({ strict: false, allErrors: true });
  ajv.addFormat('date-time', { validate: (s: string) => !Number.isNaN(Date.parse(s)) });

  beforeAll(async () => {
    const state = new NetworkState(network);
    const stream = new InProcessStream({ store, network: () => state.current(), velocity: new VelocityTracker() });
    service = new GatewayService(store, state, new LocalFeeds());
    const dc = network.locations.find((l) => l.type === 'dc')!;
    await stream.submit([{ type: 'snapshot', eventId: 'c-1', sku: 'C-1', location: dc.id, qty: 50, asOf: Date.now() - 1000 }]);
    gateway = await startGateway({
      host: '127.0.0.1',
      port: 0,
      registry: new Registry(),
      service,
      keys: new ApiKeys([{ name: 'contract', secret: key, scopes }, { name: 'reader', secret: readKey, scopes: ['availability:read'] }]),
      analytics: async (q) => [{ report: q.report, note: 'contract test: rows come from ClickHouse in production' }],
      submitEvents: (values) => stream.submit(values),
      log: () => {},
    });
    base = `http://127.0.0.1:${gateway.port}`;
    // The same routes at one request a second per key: its 429s are checked against the spec too.
    limited = await startGateway({ host: '127.0.0.1', port: 0, registry: new Registry(), service, keys: new ApiKeys([{ name: 'contract', secret: key, scopes }]), rateLimitRps: 1, log: () => {} });
    limitedBase = `http://127.0.0.1:${limited.port}`;
    spec = (await (await fetch(`${base}/openapi.json`)).json()) as Spec;
    ajv.addSchema({ $id: 'spec', components: spec.components }, 'spec');
  });

  afterAll(async () => {
    gateway?.close();
    limited?.close();
    await store.close();
  });

  /** Calls the route, checks the answer against the spec; `as`: another key (null: none), a raw body and its content type. */
  async function check(method: string, template: string, path: string, body?: unknown, as: { key?: string | null; raw?: string; contentType?: string; on?: string } = {}): Promise<number> {
    const sent = as.key === undefined ? key : as.key;
    const payload = as.raw ?? (body !== undefined ? JSON.stringify(body) : undefined);
    const response = await fetch(`${as.on ?? base}${path}`, {
      method: method.toUpperCase(),
      headers: { ...(sent ? { authorization: `Bearer ${sent}` } : {}), ...(payload !== undefined ? { 'content-type': as.contentType ?? 'application/json' } : {}) },
      ...(payload !== undefined ? { body: payload } : {}),
    });
    const operation = spec.paths[template]?.[method];
    expect(operation, `${method} ${template} is in the spec`).toBeDefined();
    const documented = operation!.responses[String(response.status)];
    expect(documented, `${method} ${template} answered ${response.status}, which the spec does not document`).toBeDefined();
    const type = (response.headers.get('content-type') ?? '').split(';')[0]!;
    const media = documented!.content?.[type];
    expect(media, `${method} ${template} ${response.status} answered ${type}, not documented`).toBeDefined();
    const json = await response.json();
    const schema = JSON.parse(JSON.stringify(media!.schema).replaceAll('"#/components', '"spec#/components'));
    const validate = ajv.compile(schema);
    expect(validate(json), `${method} ${template} ${response.status}: ${ajv.errorsText(validate.errors)}\n${JSON.stringify(json).slice(0, 400)}`).toBe(true);
    called.add(`${method} ${template}`);
    return response.status;
  }

  it('validates every route, success and failure, against the spec', async () => {
    const dc = network.locations.find((l) => l.type === 'dc')!;
    const web = network.channels[0]!.id;
    const paris = { lat: 48.8566, lon: 2.3522 };
    expect(await check('post', '/v1/availability', '/v1/availability', { channel: web, lines: [{ sku: 'C-1', qty: 1 }], destination: paris, pickup: { near: paris } })).toBe(200);
    expect(await check('post', '/v1/availability', '/v1/availability', { channel: web, lines: [] })).toBe(400);
    expect(await check('post', '/v1/availability', '/v1/availability', { channel: web, lines: [{ sku: 'C-NONE', qty: 1 }], destination: paris })).toBe(422);
    expect(await check('post', '/v1/availability/skus', '/v1/availability/skus', { channel: web, skus: ['C-1', 'C-NONE'] })).toBe(200);
    expect(await check('post', '/v1/availability/skus', '/v1/availability/skus', { channel: web })).toBe(400);
    expect(await check('get', '/v1/availability/{sku}', `/v1/availability/C-1?channel=${web}`)).toBe(200);
    expect(await check('get', '/v1/availability/{sku}', '/v1/availability/C-NONE?channel=web')).toBe(404);
    expect(await check('post', '/v1/reservations', '/v1/reservations', { reservationId: 'k-1', channel: web, lines: [{ sku: 'C-1', location: dc.id, qty: 1 }] })).toBe(201);
    expect(await check('post', '/v1/reservations', '/v1/reservations', { reservationId: 'k-1', channel: web, lines: [{ sku: 'C-1', location: dc.id, qty: 1 }] })).toBe(200);
    expect(await check('post', '/v1/reservations', '/v1/reservations', { reservationId: 'k-2', channel: web, lines: [{ sku: 'C-1', location: dc.id, qty: 10_000 }] })).toBe(409);
    expect(await check('get', '/v1/reservations/{id}', '/v1/reservations/k-1')).toBe(200);
    expect(await check('get', '/v1/reservations/{id}', '/v1/reservations/k-none')).toBe(404);
    expect(await check('post', '/v1/reservations/{id}/confirm', '/v1/reservations/k-1/confirm')).toBe(200);
    expect(await check('post', '/v1/reservations/{id}/fulfil', '/v1/reservations/k-1/fulfil')).toBe(200);
    expect(await check('post', '/v1/reservations/{id}/release', '/v1/reservations/k-1/release')).toBe(409);
    expect(await check('post', '/v1/reservations', '/v1/reservations', { reservationId: 'k-3', channel: web, lines: [{ sku: 'C-1', location: dc.id, qty: 1 }] })).toBe(201);
    expect(await check('post', '/v1/reservations/{id}/release', '/v1/reservations/k-3/release')).toBe(200);
    expect(await check('get', '/v1/positions/{sku}', '/v1/positions/C-1')).toBe(200);
    expect(await check('get', '/v1/positions/{sku}', '/v1/positions/C-NONE')).toBe(404);
    expect(await check('get', '/v1/positions/{sku}', `/v1/positions/${encodeURIComponent('bad id')}`)).toBe(400);
    expect(await check('get', '/v1/positions/{sku}', '/v1/positions/%E0')).toBe(400);
    expect(await check('get', '/v1/reservations/{id}', '/v1/reservations/%E0')).toBe(400);
    expect(await check('put', '/v1/locations/{id}/status', `/v1/locations/${dc.id}/status`, { status: 'paused' })).toBe(200);
    expect(await check('put', '/v1/locations/{id}/status', `/v1/locations/${dc.id}/status`, { status: 'active' })).toBe(200);
    expect(await check('put', '/v1/locations/{id}/status', '/v1/locations/nowhere/status', { status: 'paused' })).toBe(404);
    expect(await check('get', '/v1/analytics/{report}', '/v1/analytics/velocity?top=5')).toBe(200);
    expect(await check('get', '/v1/analytics/{report}', '/v1/analytics/nonsense')).toBe(404);
    expect(await check('post', '/v1/events', '/v1/events', { events: [{ type: 'delta', eventId: 'c-2', sku: 'C-1', location: dc.id, qty: 5, asOf: Date.now() }, { type: 'delta', eventId: 'c-3', sku: 'C-1', location: dc.id, qty: 0, asOf: Date.now() }] })).toBe(200);
    expect(await check('post', '/v1/events', '/v1/events', { nope: 1 })).toBe(400);

    // Refusals before a route runs: no key, a key without the scope, a body too large or of another type, too many requests.
    const basket = { channel: web, lines: [{ sku: 'C-1', qty: 1 }], destination: paris };
    expect(await check('post', '/v1/availability', '/v1/availability', basket, { key: null })).toBe(401);
    expect(await check('get', '/v1/positions/{sku}', '/v1/positions/C-1', undefined, { key: 'not-a-key-0123456789' })).toBe(401);
    expect(await check('get', '/v1/positions/{sku}', '/v1/positions/C-1', undefined, { key: readKey })).toBe(403);
    expect(await check('post', '/v1/reservations', '/v1/reservations', { reservationId: 'k-4', channel: web, lines: [{ sku: 'C-1', location: dc.id, qty: 1 }] }, { key: readKey })).toBe(403);
    expect(await check('post', '/v1/availability', '/v1/availability', undefined, { raw: 'x'.repeat(70_000) })).toBe(413);
    expect(await check('post', '/v1/availability', '/v1/availability', undefined, { raw: 'a=1', contentType: 'application/x-www-form-urlencoded' })).toBe(415);
    const statuses: number[] = [];
    for (let i = 0; i < 4; i++) statuses.push(await check('get', '/v1/availability/{sku}', `/v1/availability/C-1?channel=${web}`, undefined, { on: limitedBase }));
    expect(statuses).toContain(429);

    // Every route of the server's table was called and is in the spec.
    const table = apiRoutes(service, { analytics: async () => [], submitEvents: async () => ({}) }).map((r) => `${r.method} ${r.path}`);
    expect(table.filter((r) => !called.has(r))).toEqual([]);
    const specRoutes = Object.entries(spec.paths).flatMap(([path, ops]) => Object.keys(ops).map((m) => `${m} ${path}`));
    expect(table.filter((r) => !specRoutes.includes(r))).toEqual([]);
  });

  it('documents the operational routes and the live WebSocket', () => {
    for (const path of ['/health', '/ready', '/metrics', '/openapi.json', '/v1/live']) expect(spec.paths[path]?.get, path).toBeDefined();
    expect((spec as unknown as { openapi: string }).openapi).toBe('3.1.0');
  });
});
