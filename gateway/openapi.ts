// The OpenAPI 3.1 description served at /openapi.json. It is built from the server's route table,
// so every route is described; test/integration/gateway-contract.test.ts validates real responses
// of every route, success and failure, against these schemas.

import { basketLinesMax, holdTtlMsDefault, holdTtlMsMax, holdTtlMsMin, qtyMax } from '../engine/core/validate.js';
import { liveSubscriptionsMax } from './live.js';
import { plpSkusMax } from './requests.js';
import type { Route } from './server.js';

type Schema = Record<string, unknown>;

const ref = (name: string): Schema => ({ $ref: `#/components/schemas/${name}` });
const str: Schema = { type: 'string' };
const int: Schema = { type: 'integer' };
const num: Schema = { type: 'number' };
const bool: Schema = { type: 'boolean' };
const arr = (items: Schema): Schema => ({ type: 'array', items });
const obj = (properties: Record<string, Schema>, required: string[] = Object.keys(properties)): Schema => ({ type: 'object', properties, required });

const geo = obj({ lat: { type: 'number', minimum: -90, maximum: 90 }, lon: { type: 'number', minimum: -180, maximum: 180 } });

const schemas: Record<string, Schema> = {
  Problem: {
    ...obj({ type: str, title: str, status: int, detail: str, instance: str, code: str }, ['type', 'title', 'status', 'detail']),
    description: 'RFC 9457 problem details. `detail` says what was wrong and what to do.',
  },
  GeoPoint: geo,
  AvailabilityRequest: obj(
    {
      channel: { type: 'string', description: 'Channel id from the network configuration, e.g. web.' },
      lines: { ...arr(obj({ sku: str, qty: { type: 'integer', minimum: 1, maximum: qtyMax } })), minItems: 1, maxItems: basketLinesMax },
      destination: { ...ref('GeoPoint'), description: 'Delivery address coordinates (needed for delivery options).' },
      pickup: {
        type: 'object',
        description: 'Where the shopper may pick up: near a point (radiusKm, max) or at listed stores.',
        properties: { near: ref('GeoPoint'), radiusKm: { type: 'number', minimum: 0.1, maximum: 500 }, max: { type: 'integer', minimum: 1, maximum: 20 }, locations: arr(str) },
      },
      methods: { ...arr({ enum: ['delivery', 'pickup'] }), description: 'Default: both.' },
    },
    ['channel', 'lines'],
  ),
  Shipment: obj(
    { from: str, lines: arr(obj({ sku: str, qty: int })), carrier: str, service: str, transferTo: str, readyAtMs: int, deliverAtMs: int },
    ['from', 'lines', 'readyAtMs', 'deliverAtMs'],
  ),
  Option: obj(
    {
      id: str,
      rank: int,
      method: { enum: ['delivery_standard', 'delivery_express', 'pickup_in_store', 'pickup_after_transfer'] },
      shipmentCount: int,
      shipments: arr(ref('Shipment')),
      promiseAtMs: int,
      promiseAt: { type: 'string', format: 'date-time' },
      costCents: int,
      pickup: obj({ location: str, name: str, distanceKm: num, readyAtMs: int }),
    },
    ['id', 'rank', 'method', 'shipmentCount', 'shipments', 'promiseAtMs', 'promiseAt', 'costCents'],
  ),
  PickupStore: obj({ location: str, name: str, distanceKm: num, atp: int }),
  LineAvailability: obj({ sku: str, requested: int, atp: int, inStock: bool, bestDeliveryAtMs: int, pickupStores: arr(ref('PickupStore')) }, ['sku', 'requested', 'atp', 'inStock', 'pickupStores']),
  AvailabilityAnswer: obj({ channel: str, options: arr(ref('Option')), lines: arr(ref('LineAvailability')) }),
  SkusRequest: obj({ channel: str, skus: { ...arr(str), minItems: 1, maxItems: plpSkusMax }, near: ref('GeoPoint') }, ['channel', 'skus']),
  SkuAvailability: obj(
    { sku: str, channel: str, known: { type: 'boolean', description: 'false: no location ever reported stock for this SKU (PLP only; PDP answers 404).' }, atp: int, inStock: bool, fastestDeliveryAtMs: int, pickupStores: arr(ref('PickupStore')) },
    ['sku', 'channel', 'known', 'atp', 'inStock', 'pickupStores'],
  ),
  SkusAnswer: obj({ items: arr(ref('SkuAvailability')) }),
  HoldRequest: obj(
    {
      reservationId: { type: 'string', description: 'Idempotency key chosen by the caller: retrying with it returns the first outcome.' },
      channel: str,
      lines: { ...arr(obj({ sku: str, location: str, qty: { type: 'integer', minimum: 1, maximum: qtyMax } })), minItems: 1, maxItems: basketLinesMax },
      holdTtlMs: { type: 'integer', minimum: holdTtlMsMin, maximum: holdTtlMsMax, default: holdTtlMsDefault },
    },
    ['reservationId', 'channel', 'lines'],
  ),
  Reservation: obj(
    {
      id: str,
      channel: str,
      state: { enum: ['held', 'confirmed', 'fulfilled', 'released', 'rejected'] },
      lines: arr(obj({ sku: str, location: str, qty: int })),
      createdAtMs: int,
      expiresAtMs: int,
      shortfalls: arr(obj({ sku: str, location: str, requested: int, available: int })),
      expired: bool,
    },
    ['id', 'channel', 'state', 'lines', 'createdAtMs', 'expiresAtMs'],
  ),
  Positions: obj({ sku: str, positions: arr(obj({ sku: str, location: str, onHand: int, reserved: int, version: { ...int, description: 'Rises with every change of the position: of two states, the higher version is the newer.' }, atp: { type: 'object', additionalProperties: int } })) }),
  LocationStatus: obj({ status: { enum: ['active', 'paused'] } }),
  LocationStatusAnswer: obj({ id: str, status: { enum: ['active', 'paused'] } }),
  Events: obj({ events: arr({ type: 'object', description: 'Stock event, wire format of DESIGN.md.' }) }),
  EventsAnswer: obj({ applied: int, duplicate: int, stale: int, rejected: arr(obj({ index: int, reason: str, detail: str })) }),
  Analytics: obj({ report: str, rows: arr({ type: 'object' }) }),
};

interface Doc {
  summary: string;
  request?: string;
  success: { status: number; schema: string; description: string }[];
  errors: number[];
  parameters?: Schema[];
}

const skuParam = { name: 'sku', in: 'path', required: true, schema: str };
const idParam = { name: 'id', in: 'path', required: true, schema: str, description: 'Reservation id.' };
const common = [400, 401, 403, 413, 415, 429, 500];

const docs: Record<string, Doc> = {
  'post /v1/availability': {
    summary: 'Ranked delivery and pickup options for a basket, each with its plan and promise date, and availability per line.',
    request: 'AvailabilityRequest',
    success: [{ status: 200, schema: 'AvailabilityAnswer', description: 'Options best first; an empty list when nothing can serve the basket.' }],
    errors: [...common, 422],
  },
  'post /v1/availability/skus': {
    summary: `Listing page (PLP): channel ATP, in-stock flag, fastest promise and nearest pickup stores, for up to ${plpSkusMax} SKUs.`,
    request: 'SkusRequest',
    success: [{ status: 200, schema: 'SkusAnswer', description: 'One item per distinct SKU, in request order.' }],
    errors: common,
  },
  'get /v1/availability/{sku}': {
    summary: 'Product page (PDP): channel ATP, in-stock flag, fastest promise, nearest pickup stores with stock.',
    parameters: [skuParam, { name: 'channel', in: 'query', required: true, schema: str }, { name: 'lat', in: 'query', schema: num }, { name: 'lon', in: 'query', schema: num }],
    success: [{ status: 200, schema: 'SkuAvailability', description: 'Availability of the SKU.' }],
    errors: [400, 401, 403, 404, 429, 500],
  },
  'post /v1/reservations': {
    summary: 'Holds every line or none, with a TTL. Idempotent by reservationId. 409 (with the shortfalls) when a line does not fit.',
    request: 'HoldRequest',
    success: [
      { status: 201, schema: 'Reservation', description: 'Held.' },
      { status: 200, schema: 'Reservation', description: 'A retry of an earlier hold with the same reservationId: its first outcome.' },
    ],
    errors: [...common, 409],
  },
  'get /v1/reservations/{id}': { summary: 'A reservation and its state.', parameters: [idParam], success: [{ status: 200, schema: 'Reservation', description: 'The reservation.' }], errors: [400, 401, 403, 404, 429, 500] },
  'post /v1/reservations/{id}/confirm': { summary: 'held → confirmed (order placed: no expiry any more). Idempotent.', parameters: [idParam], success: [{ status: 200, schema: 'Reservation', description: 'Confirmed.' }], errors: [400, 401, 403, 404, 409, 429, 500] },
  'post /v1/reservations/{id}/fulfil': { summary: 'held|confirmed → fulfilled (picked: reserved and on-hand drop together). Idempotent.', parameters: [idParam], success: [{ status: 200, schema: 'Reservation', description: 'Fulfilled.' }], errors: [400, 401, 403, 404, 409, 429, 500] },
  'post /v1/reservations/{id}/release': { summary: 'held|confirmed → released (units back to ATP). Idempotent.', parameters: [idParam], success: [{ status: 200, schema: 'Reservation', description: 'Released.' }], errors: [400, 401, 403, 404, 409, 429, 500] },
  'get /v1/positions/{sku}': { summary: 'Admin: every position of a SKU with on-hand, reserved and ATP per channel.', parameters: [skuParam], success: [{ status: 200, schema: 'Positions', description: 'Positions.' }], errors: [400, 401, 403, 404, 429, 500] },
  'put /v1/locations/{id}/status': {
    summary: 'Admin: pause or resume a location (a paused location offers nothing; routing falls back to others). Written to the store: every gateway and engine on it follows within a second.',
    parameters: [{ name: 'id', in: 'path', required: true, schema: str, description: 'Location id.' }],
    request: 'LocationStatus',
    success: [{ status: 200, schema: 'LocationStatusAnswer', description: 'The new status.' }],
    errors: [...common, 404],
  },
  'get /v1/analytics/{report}': {
    summary: 'Admin: history analytics (velocity, stockouts, cover, sellthrough) from ClickHouse; what `instock analytics` asks a running embedded process.',
    parameters: [{ name: 'report', in: 'path', required: true, schema: { enum: ['velocity', 'stockouts', 'cover', 'sellthrough'] } }, { name: 'top', in: 'query', schema: int }, { name: 'since', in: 'query', schema: int, description: 'ms since the epoch' }, { name: 'channel', in: 'query', schema: str }, { name: 'sku', in: 'query', schema: str }],
    success: [{ status: 200, schema: 'Analytics', description: 'Report rows.' }],
    errors: [400, 401, 403, 404, 429, 500],
  },
  'post /v1/events': {
    summary: 'Admin, embedded default only: stock events into the in-process stream (with Kafka, produce to inventory.stock instead).',
    request: 'Events',
    success: [{ status: 200, schema: 'EventsAnswer', description: 'Counts; rejected events with their reason.' }],
    errors: common,
  },
};

const problemResponse = (status: number) => ({
  description: { 400: 'Invalid request', 401: 'Missing or invalid API key', 403: 'API key lacks the scope', 404: 'Not found', 409: 'Conflict', 413: 'Body too large', 415: 'Unsupported content type', 422: 'Unknown SKU', 429: 'Rate limited', 500: 'Internal error (logged)' }[status] ?? 'Error',
  content: { 'application/problem+json': { schema: ref('Problem') } },
});

const both = (schema: Schema) => ({ 'application/json': { schema }, 'application/msgpack': { schema } });

export function openApiSpec(routes: readonly Route[]): Record<string, unknown> {
  const paths: Record<string, Record<string, unknown>> = {
    '/health': { get: { summary: 'Liveness.', security: [], responses: { 200: { description: 'Alive', content: { 'application/json': { schema: obj({ status: str }) } } } } } },
    '/ready': { get: { summary: 'Readiness: the store answers.', security: [], responses: { 200: { description: 'Ready', content: { 'application/json': { schema: obj({ status: str }) } } }, 503: { description: 'Not ready', content: { 'application/json': { schema: obj({ status: str }) } } } } } },
    '/metrics': { get: { summary: 'Prometheus metrics.', security: [], responses: { 200: { description: 'Text exposition format', content: { 'text/plain': { schema: str } } } } } },
    '/openapi.json': { get: { summary: 'This document.', security: [], responses: { 200: { description: 'OpenAPI 3.1', content: { 'application/json': { schema: { type: 'object' } } } } } } },
    '/v1/live': {
      get: {
        summary: `WebSocket live stock. Send {"type":"subscribe","channel":"web","skus":[...]} (at most ${liveSubscriptionsMax} per connection); receive {"type":"atp","updates":[{channel,sku,atp,inStock}]} on every change, coalesced. API key by header or ?key=.`,
        security: [{ apiKey: ['availability:read'] }, { bearer: ['availability:read'] }],
        responses: { 101: { description: 'Switching protocols' }, 401: problemResponse(401), 403: problemResponse(403), 429: problemResponse(429) },
      },
    },
  };
  for (const route of routes) {
    const doc = docs[`${route.method} ${route.path}`];
    if (!doc) throw new Error(`openapi: route ${route.method.toUpperCase()} ${route.path} has no description in gateway/openapi.ts`);
    const responses: Record<string, unknown> = {};
    for (const s of doc.success) responses[String(s.status)] = { description: s.description, content: both(ref(s.schema)) };
    for (const status of doc.errors) responses[String(status)] = problemResponse(status);
    paths[route.path] ??= {};
    paths[route.path]![route.method] = {
      summary: doc.summary,
      security: [{ bearer: [route.scope] }, { apiKey: [route.scope] }],
      ...(doc.parameters ? { parameters: doc.parameters } : {}),
      ...(doc.request ? { requestBody: { required: true, content: both(ref(doc.request)) } } : {}),
      responses,
    };
  }
  return {
    openapi: '3.1.0',
    info: { title: 'Instock gateway', version: '1.0.0', description: 'Availability, reservations and live stock. Bodies are JSON, or msgpack with content-type/accept application/msgpack. Errors are application/problem+json.' },
    servers: [{ url: '/' }],
    components: {
      securitySchemes: { bearer: { type: 'http', scheme: 'bearer', description: 'API key as a bearer token.' }, apiKey: { type: 'apiKey', in: 'header', name: 'x-api-key' } },
      schemas,
    },
    paths,
  };
}
