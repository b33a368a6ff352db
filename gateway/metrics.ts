// The gateway's Prometheus series. Route labels are the route templates (/v1/reservations/{id}),
// never raw URLs, so the label set stays bounded whatever clients send.

import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

export class GatewayMetrics {
  readonly requests: Counter<'route' | 'method' | 'status'>;
  readonly latencySeconds: Histogram<'route'>;
  readonly optionsPerRequest: Histogram<'channel'>;
  readonly rateLimited: Counter<'key'>;
  readonly wsConnections: Gauge;
  readonly wsMessages: Counter<'direction' | 'type'>;
  readonly wsDropped: Counter<'reason'>;
  readonly networkReloads: Counter<'outcome'>;

  constructor(registry: Registry) {
    const registers = [registry];
    this.requests = new Counter({ name: 'instock_gateway_requests_total', help: 'HTTP requests by route template, method and status.', labelNames: ['route', 'method', 'status'], registers });
    this.latencySeconds = new Histogram({
      name: 'instock_gateway_request_duration_seconds',
      help: 'Time from request to response, by route template.',
      labelNames: ['route'],
      // Targets are single-digit milliseconds: resolution below 10 ms matters most.
      buckets: [0.0005, 0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
      registers,
    });
    this.optionsPerRequest = new Histogram({ name: 'instock_gateway_availability_options', help: 'Options returned per availability request.', labelNames: ['channel'], buckets: [0, 1, 2, 3, 4, 6, 8, 12, 16, 24], registers });
    this.rateLimited = new Counter({ name: 'instock_gateway_rate_limited_total', help: 'Requests refused with 429, by API key name.', labelNames: ['key'], registers });
    this.wsConnections = new Gauge({ name: 'instock_gateway_ws_connections', help: 'Open WebSocket connections on /v1/live.', registers });
    this.wsMessages = new Counter({ name: 'instock_gateway_ws_messages_total', help: 'WebSocket messages, by direction (in/out) and type.', labelNames: ['direction', 'type'], registers });
    this.wsDropped = new Counter({ name: 'instock_gateway_ws_coalesced_total', help: 'Live updates replaced by a newer one before being sent (coalescing, slow clients).', labelNames: ['reason'], registers });
    this.networkReloads = new Counter({ name: 'instock_gateway_network_reloads_total', help: 'Network configuration reloads, by outcome (ok, invalid).', labelNames: ['outcome'], registers });
  }

  /** With GATEWAY_THREADS > 1: API requests by the thread that served them (connections are handed out in turn). */
  threadRequests(registry: Registry): Counter<'thread'> {
    return new Counter({ name: 'instock_gateway_thread_requests_total', help: 'API requests by gateway thread (GATEWAY_THREADS > 1).', labelNames: ['thread'], registers: [registry] });
  }
}
