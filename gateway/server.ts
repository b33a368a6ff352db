// The gateway on uWebSockets.js: the HTTP API of DESIGN.md ("HTTP API"), WebSocket live stock and
// the operational routes. Every API route is one row of `routes` (method, path template, scope,
// handler): the OpenAPI contract test walks the same table, so a route cannot exist undocumented.
//
// A request goes: CORS → API key and scope (constant-time) → per-key rate limit → bounded body →
// JSON or msgpack decoding → handler → JSON or msgpack answer. Every failure a client can cause is
// an application/problem+json answer that says what was wrong; a handler bug is a 500 that is
// logged, counted and answered, and the server keeps serving.

import { App, us_listen_socket_close, us_socket_local_port, type HttpResponse, type TemplatedApp, type us_listen_socket, type us_socket } from 'uWebSockets.js';
import { Registry, collectDefaultMetrics } from 'prom-client';
import { DomainError, type DomainErrorCode } from '../engine/core/errors.js';
import { ApiKeys, RateLimiter, type ApiKey, type Scope } from './auth.js';
import { availabilityJson } from './answer-json.js';
import { decodeBody, encodeBody, HttpProblem, parseQuery, problemBody, problemType, readBody, readRequest, wantsMsgpack, writeResponse, type RequestInfo, type ResponseState } from './http.js';
import { LiveHub } from './live.js';
import { GatewayMetrics } from './metrics.js';
import { openApiSpec } from './openapi.js';
import { parseAvailabilityBody, parseLocationStatus, parseSkuQuery, parseSkusBody } from './requests.js';
import type { GatewayService } from './service.js';
import type { Transition } from '../engine/store/types.js';

/** Request bodies: a 100-line basket in JSON is ~6 KB; 64 KB leaves room and stops abuse. */
export const bodyBytesMaxDefault = 64 * 1024;
/** Stock events per POST /v1/events call (embedded default only). */
export const eventsPerCallMax = 10_000;
const eventsBodyBytesMax = 4 * 1024 * 1024;

export interface AnalyticsQuery {
  report: string;
  top?: number;
  sinceMs?: number;
  channel?: string;
  sku?: string;
  nowMs: number;
}

export interface GatewayOptions {
  host: string;
  port: number;
  /** Reports whether the backends the gateway depends on answer; /ready returns 503 otherwise. */
  ready?: () => Promise<boolean>;
  registry?: Registry;
  /** The API. Without it only the operational routes answer. */
  service?: GatewayService;
  keys?: ApiKeys;
  rateLimitRps?: number;
  /** Rate buckets shared with the process's other gateway threads (auth.ts sharedRateBuckets). */
  rateBuckets?: SharedArrayBuffer;
  corsOrigins?: string[];
  bodyBytesMax?: number;
  /** Analytics from history (`instock analytics` asks a running embedded process through this). */
  analytics?: (query: AnalyticsQuery) => Promise<Record<string, unknown>[]>;
  /** Feeds stock events to the in-process stream (embedded default only). */
  submitEvents?: (values: unknown[]) => Promise<unknown>;
  log?: (message: string) => void;
  /** The time requests are answered at (tests pin it to cross a cut-off); default Date.now. */
  clock?: () => number;
  /** This gateway's thread (gateway/threads.ts): its requests are also counted by thread. */
  thread?: number;
  /** The /metrics text, when it is more than this registry's (the sum over a gateway's threads). */
  metricsText?: () => Promise<string>;
  /**
   * Whether this gateway listens on its port (the default). A gateway thread does not: an acceptor
   * on the main thread hands it connections in turn (acceptConnections) through its descriptor.
   */
  listen?: boolean;
}

export interface RunningGateway {
  /** The port it listens on (without listen: the port it was given). */
  port: number;
  /** What an acceptor's addChildAppDescriptor takes to hand this gateway connections. */
  descriptor: number;
  metrics: GatewayMetrics;
  live: LiveHub | undefined;
  close(): void;
}

interface Context {
  info: RequestInfo;
  key: ApiKey;
  body: unknown;
  query: Map<string, string>;
  nowMs: number;
}

interface Answer {
  status: number;
  body: unknown;
  headers?: Record<string, string>;
  /** The body as JSON, written faster than JSON.stringify does (answer-json.ts); msgpack ignores it. */
  json?: () => string;
}

export interface Route {
  method: 'get' | 'post' | 'put';
  /** OpenAPI path template: /v1/reservations/{id} */
  path: string;
  scope: Scope;
  /** The route reads a body. */
  body: boolean;
  bodyBytesMax?: number;
  handle: (ctx: Context) => Promise<Answer>;
}

const domainStatus: Record<DomainErrorCode, number> = {
  invalid_id: 400,
  invalid_quantity: 400,
  invalid_ttl: 400,
  invalid_request: 400,
  unknown_channel: 400,
  unknown_location: 400,
  empty_basket: 400,
  basket_too_large: 400,
  unknown_reservation: 404,
  invalid_transition: 409,
  hold_expired: 409,
};

function problemFor(error: unknown): HttpProblem | undefined {
  if (error instanceof HttpProblem) return error;
  if (error instanceof DomainError) {
    const status = domainStatus[error.code];
    const titles: Record<number, string> = { 400: 'Bad Request', 404: 'Not Found', 409: 'Conflict' };
    return new HttpProblem(status, titles[status] ?? 'Bad Request', error.message, { code: error.code });
  }
  return undefined;
}

/** The API's routes; `service` answers them. */
export function apiRoutes(service: GatewayService, options: Pick<GatewayOptions, 'analytics' | 'submitEvents'>): Route[] {
  const transition = (name: Transition): Route => ({
    method: 'post',
    path: `/v1/reservations/{id}/${name}`,
    scope: 'reservations:write',
    body: false,
    handle: async (ctx) => ({ status: 200, body: await service.transition(ctx.info.params[0]!, name, ctx.nowMs) }),
  });
  const routes: Route[] = [
    {
      method: 'post',
      path: '/v1/availability',
      scope: 'availability:read',
      body: true,
      handle: async (ctx) => {
        const request = parseAvailabilityBody(ctx.body);
        const answer = await service.availability(request, ctx.nowMs);
        return { status: 200, body: answer, json: () => availabilityJson(answer) };
      },
    },
    {
      method: 'post',
      path: '/v1/availability/skus',
      scope: 'availability:read',
      body: true,
      handle: async (ctx) => ({ status: 200, body: { items: await service.skus(parseSkusBody(ctx.body), ctx.nowMs) } }),
    },
    {
      method: 'get',
      path: '/v1/availability/{sku}',
      scope: 'availability:read',
      body: false,
      handle: async (ctx) => {
        const query = parseSkuQuery(ctx.info.params[0]!, ctx.query);
        const answer = await service.sku(query, ctx.nowMs);
        if (!answer.known) throw new HttpProblem(404, 'Not Found', `SKU ${JSON.stringify(query.sku)} is unknown: no location has reported stock for it`);
        return { status: 200, body: answer };
      },
    },
    {
      method: 'post',
      path: '/v1/reservations',
      scope: 'reservations:write',
      body: true,
      handle: async (ctx) => {
        const { reservation, fresh } = await service.hold(ctx.body, ctx.nowMs);
        if (reservation.state === 'rejected') {
          throw new HttpProblem(409, 'Conflict', `reservation ${reservation.id} was not held: ${(reservation.shortfalls ?? []).map((s) => `${s.sku} at ${s.location} asks ${s.requested}, ATP is ${s.available}`).join('; ')}`, {
            code: 'insufficient_stock',
            reservation,
          });
        }
        return { status: fresh ? 201 : 200, body: reservation, headers: { location: `/v1/reservations/${encodeURIComponent(reservation.id)}` } };
      },
    },
    {
      method: 'get',
      path: '/v1/reservations/{id}',
      scope: 'reservations:write',
      body: false,
      handle: async (ctx) => {
        const reservation = await service.reservation(ctx.info.params[0]!, ctx.nowMs);
        if (!reservation) throw new HttpProblem(404, 'Not Found', `reservation ${JSON.stringify(ctx.info.params[0])} does not exist`);
        return { status: 200, body: reservation };
      },
    },
    transition('confirm'),
    transition('fulfil'),
    transition('release'),
    {
      method: 'get',
      path: '/v1/positions/{sku}',
      scope: 'admin',
      body: false,
      handle: async (ctx) => {
        const sku = ctx.info.params[0]!;
        const positions = await service.positions(sku, ctx.nowMs);
        if (positions.length === 0) throw new HttpProblem(404, 'Not Found', `SKU ${JSON.stringify(sku)} has no position at any location`);
        return { status: 200, body: { sku, positions } };
      },
    },
    {
      method: 'put',
      path: '/v1/locations/{id}/status',
      scope: 'admin',
      body: true,
      handle: async (ctx) => {
        const id = ctx.info.params[0]!;
        const status = parseLocationStatus(ctx.body);
        if (!(await service.network.setStatus(id, status))) throw new HttpProblem(404, 'Not Found', `location ${JSON.stringify(id)} is not in the network configuration`);
        return { status: 200, body: { id, status } };
      },
    },
  ];
  if (options.analytics) {
    const analytics = options.analytics;
    routes.push({
      method: 'get',
      path: '/v1/analytics/{report}',
      scope: 'admin',
      body: false,
      handle: async (ctx) => {
        const report = ctx.info.params[0]!;
        if (!['velocity', 'stockouts', 'cover', 'sellthrough'].includes(report)) throw new HttpProblem(404, 'Not Found', `no analytics report ${JSON.stringify(report)}: velocity, stockouts, cover or sellthrough`);
        const q = ctx.query;
        const top = q.has('top') ? Number(q.get('top')) : undefined;
        if (top !== undefined && (!Number.isInteger(top) || top < 1 || top > 10_000)) throw new HttpProblem(400, 'Bad Request', `top is ${q.get('top')}: expected an integer from 1 to 10000`);
        const since = q.has('since') ? Number(q.get('since')) : undefined;
        if (since !== undefined && !Number.isFinite(since)) throw new HttpProblem(400, 'Bad Request', `since is ${q.get('since')}: expected ms since the epoch`);
        const rows = await analytics({ report, nowMs: ctx.nowMs, ...(top ? { top } : {}), ...(since !== undefined ? { sinceMs: since } : {}), ...(q.get('channel') ? { channel: q.get('channel')! } : {}), ...(q.get('sku') ? { sku: q.get('sku')! } : {}) });
        return { status: 200, body: { report, rows } };
      },
    });
  }
  if (options.submitEvents) {
    const submit = options.submitEvents;
    routes.push({
      method: 'post',
      path: '/v1/events',
      scope: 'admin',
      body: true,
      bodyBytesMax: eventsBodyBytesMax,
      handle: async (ctx) => {
        const body = ctx.body as { events?: unknown };
        if (typeof body !== 'object' || body === null || !Array.isArray(body.events)) throw new HttpProblem(400, 'Bad Request', 'expected {"events": [stock events]} (wire format in DESIGN.md)');
        if (body.events.length > eventsPerCallMax) throw new HttpProblem(400, 'Bad Request', `events has ${body.events.length} entries: at most ${eventsPerCallMax} per call`);
        return { status: 200, body: await submit(body.events) };
      },
    });
  }
  return routes;
}

/** /v1/reservations/{id}/confirm → /v1/reservations/:id/confirm (uWS pattern) */
function uwsPattern(path: string): string {
  return path.replace(/\{([^}]+)\}/g, ':$1');
}

export async function startGateway(options: GatewayOptions): Promise<RunningGateway> {
  const registry = options.registry ?? new Registry();
  if (!options.registry) collectDefaultMetrics({ register: registry });
  const metrics = new GatewayMetrics(registry);
  const threadRequests = options.thread === undefined ? undefined : metrics.threadRequests(registry).labels(String(options.thread));
  const keys = options.keys ?? new ApiKeys([]);
  const limiter = new RateLimiter(options.rateLimitRps ?? 2000, undefined, options.rateBuckets ? { buffer: options.rateBuckets, names: keys.names } : undefined);
  const corsOrigins = new Set(options.corsOrigins ?? []);
  const bodyBytesMax = options.bodyBytesMax ?? bodyBytesMaxDefault;
  const clock = options.clock ?? Date.now;
  const log = options.log ?? ((message: string) => process.stderr.write(`${message}\n`));
  const app: TemplatedApp = App();

  const corsHeaders = (origin: string): Record<string, string> =>
    origin && corsOrigins.has(origin) ? { 'access-control-allow-origin': origin, vary: 'origin', 'access-control-expose-headers': 'retry-after, location' } : {};

  const sendProblem = (res: HttpResponse, state: ResponseState, info: RequestInfo, problem: HttpProblem) => {
    writeResponse(res, state, problem.status, problemType, problemBody(problem.status, problem.title, problem.detail, info.url, problem.extensions), { ...problem.headers, ...corsHeaders(info.origin) });
  };

  app.get('/health', (res) => {
    writeResponse(res, { aborted: false, done: false }, 200, 'application/json', '{"status":"ok"}');
  });

  app.get('/ready', (res) => {
    const state: ResponseState = { aborted: false, done: false };
    res.onAborted(() => {
      state.aborted = true;
    });
    void (options.ready ?? (async () => true))()
      .catch(() => false)
      .then((ok) => writeResponse(res, state, ok ? 200 : 503, 'application/json', JSON.stringify({ status: ok ? 'ready' : 'not ready' })));
  });

  app.get('/metrics', (res) => {
    const state: ResponseState = { aborted: false, done: false };
    res.onAborted(() => {
      state.aborted = true;
    });
    void (options.metricsText ?? (() => registry.metrics()))().then((text) => writeResponse(res, state, 200, registry.contentType, text));
  });

  const routes = options.service ? apiRoutes(options.service, options) : [];
  const spec = JSON.stringify(openApiSpec(routes));
  app.get('/openapi.json', (res) => {
    writeResponse(res, { aborted: false, done: false }, 200, 'application/json', spec);
  });

  for (const route of routes) {
    const paramCount = (route.path.match(/\{/g) ?? []).length;
    const limit = route.bodyBytesMax ?? bodyBytesMax;
    app[route.method](uwsPattern(route.path), (res, req) => {
      const startedAt = process.hrtime.bigint();
      const info = readRequest(req, paramCount);
      const state: ResponseState = { aborted: false, done: false };
      res.onAborted(() => {
        state.aborted = true;
      });
      const finish = (status: number) => {
        metrics.requests.inc({ route: route.path, method: info.method, status: String(status) });
        threadRequests?.inc();
        metrics.latencySeconds.observe({ route: route.path }, Number(process.hrtime.bigint() - startedAt) / 1e9);
      };
      const fail = (error: unknown) => {
        let problem = problemFor(error);
        if (!problem) {
          log(`gateway: ${info.method} ${route.path} failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
          problem = new HttpProblem(500, 'Internal Server Error', 'the request failed inside the gateway; it is logged and counted. Retry; if it persists, check the store and the gateway logs');
        }
        if (problem.status === 429) metrics.rateLimited.inc({ key: String(problem.extensions.key ?? '') });
        sendProblem(res, state, info, problem);
        finish(problem.status);
      };
      let key: ApiKey;
      try {
        key = keys.require(info.authorization, info.apiKeyHeader, route.scope);
        const taken = limiter.take(key.name, Date.now());
        if (!taken.ok) {
          throw new HttpProblem(429, 'Too Many Requests', `the API key "${key.name}" is over its rate limit of ${options.rateLimitRps ?? 2000} requests/s: retry after ${taken.retryAfterMs} ms`, { key: key.name }, { 'retry-after': String(Math.max(1, Math.ceil(taken.retryAfterMs / 1000))) });
        }
        if (info.badParam !== undefined) {
          throw new HttpProblem(400, 'Bad Request', `the path segment ${JSON.stringify(info.badParam.slice(0, 120))} is not valid percent-encoding: encode ids with encodeURIComponent (a % must be followed by two hex digits of UTF-8)`, { code: 'invalid_path' });
        }
      } catch (error) {
        // Drain nothing: uWS discards an unread body when the response ends.
        fail(error);
        return;
      }
      const bodyPromise = route.body ? readBody(res, info, limit, state).then((raw) => decodeBody(raw, info.contentType)) : Promise.resolve(undefined);
      bodyPromise
        .then((body) => route.handle({ info, key, body, query: parseQuery(info.query), nowMs: clock() }))
        .then((answer) => {
          const msgpack = wantsMsgpack(info);
          const encoded = answer.json && !msgpack ? { body: answer.json(), contentType: 'application/json' } : encodeBody(answer.body, msgpack);
          writeResponse(res, state, answer.status, encoded.contentType, encoded.body, { ...answer.headers, ...corsHeaders(info.origin) });
          finish(answer.status);
          if (route.path === '/v1/availability' && answer.status === 200) {
            const a = answer.body as { channel: string; options: unknown[]; lines: unknown[] };
            const latencyMs = Number(process.hrtime.bigint() - startedAt) / 1e6;
            metrics.optionsPerRequest.observe({ channel: a.channel }, a.options.length);
            const methods = [...new Set((a.options as { method: string }[]).map((o) => o.method))].join(',');
            options.service!.recordAvailability({ atMs: Date.now(), channel: a.channel, lines: a.lines.length, options: a.options.length, latencyMs, methods });
          }
        })
        .catch(fail);
    });
  }

  app.options('/*', (res, req) => {
    const origin = req.getHeader('origin');
    const state: ResponseState = { aborted: false, done: false };
    if (origin && corsOrigins.has(origin)) {
      writeResponse(res, state, 204, 'text/plain', '', {
        'access-control-allow-origin': origin,
        vary: 'origin',
        'access-control-allow-methods': 'GET, POST, PUT, OPTIONS',
        'access-control-allow-headers': 'authorization, x-api-key, content-type, accept',
        'access-control-max-age': '600',
      });
    } else {
      writeResponse(res, state, 204, 'text/plain', '');
    }
  });

  let live: LiveHub | undefined;
  if (options.service) {
    live = new LiveHub(options.service, metrics);
    live.mount(app, keys, limiter);
  }

  app.any('/*', (res, req) => {
    const method = req.getMethod().toUpperCase();
    const url = req.getUrl();
    const known = routes.filter((r) => new RegExp(`^${uwsPattern(r.path).replace(/:[^/]+/g, '[^/]+')}$`).test(url));
    const state: ResponseState = { aborted: false, done: false };
    const info = { url } as RequestInfo;
    if (known.length > 0) {
      sendProblem(res, state, info, new HttpProblem(405, 'Method Not Allowed', `${method} is not allowed on ${url}: use ${known.map((r) => r.method.toUpperCase()).join(', ')}`, {}, { allow: known.map((r) => r.method.toUpperCase()).join(', ') }));
      metrics.requests.inc({ route: 'unmatched', method, status: '405' });
      return;
    }
    sendProblem(res, state, info, new HttpProblem(404, 'Not Found', `no route for ${method} ${url}`));
    metrics.requests.inc({ route: 'unmatched', method, status: '404' });
  });

  const socket = options.listen === false ? undefined : await listen(app, options.host, options.port);
  return {
    // Port 0 asks the OS for a free port: report the one actually bound.
    port: socket ? listenPort(socket) : options.port,
    descriptor: (app as ChildApps).getDescriptor(),
    metrics,
    live,
    close: () => {
      live?.close();
      if (socket) us_listen_socket_close(socket);
      // And every connection still open (keep-alive clients): a worker thread whose event loop
      // still holds uWS sockets when it ends aborts the process (libuv: loop closed with open handles).
      app.close();
    },
  };
}

function listen(app: TemplatedApp, host: string, port: number): Promise<us_listen_socket> {
  return new Promise((resolve, reject) => {
    app.listen(host, port, (listenSocket) => {
      if (listenSocket) resolve(listenSocket);
      else reject(new Error(`gateway could not listen on ${host}:${port} (port in use?)`));
    });
  });
}

function listenPort(socket: us_listen_socket): number {
  return us_socket_local_port(socket as unknown as us_socket);
}

/** uWebSockets.js's child apps (in the library, missing from the repack's typings). */
type ChildApps = TemplatedApp & {
  getDescriptor(): number;
  addChildAppDescriptor(descriptor: number): TemplatedApp;
  removeChildAppDescriptor(descriptor: number): TemplatedApp;
};

export interface Acceptor {
  port: number;
  /** Hands `descriptor`'s gateway no more connections (its thread is gone). */
  remove(descriptor: number): void;
  /** Stops accepting, then lets go of the gateways it handed connections to. */
  close(): void;
}

/**
 * Listens on the gateway's port for several gateways (one per thread) and hands each new
 * connection to the next in turn (uWebSockets.js child apps: the accepted socket is adopted by the
 * gateway's own event loop). With each thread listening on the port itself (SO_REUSEPORT) the
 * kernel spread connections by a hash of their addresses: 32 connections over 2 threads split
 * unevenly (79/44 % of a core in one paced run at 70 % of max, p99 11.7 ms against 5.5 for 60/59).
 */
export async function acceptConnections(host: string, port: number, descriptors: number[]): Promise<Acceptor> {
  const acceptor = App() as ChildApps;
  const children = new Set(descriptors);
  for (const descriptor of children) acceptor.addChildAppDescriptor(descriptor);
  const socket = await listen(acceptor, host, port);
  const remove = (descriptor: number) => {
    if (children.delete(descriptor)) acceptor.removeChildAppDescriptor(descriptor);
  };
  return {
    port: listenPort(socket),
    remove,
    close: () => {
      us_listen_socket_close(socket);
      for (const descriptor of [...children]) remove(descriptor);
      acceptor.close();
    },
  };
}
