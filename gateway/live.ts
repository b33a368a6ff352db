// Live stock over WebSocket (`WS /v1/live`). A client subscribes to SKUs on a channel; every ATP
// change of those SKUs (from the change feed, or in-process in the embedded default) marks them
// dirty; every tick the hub reads the dirty SKUs' channel ATP once, for all clients, and each
// client gets one message with its latest values.
//
// Memory is bounded per client by its subscriptions, never by how fast it reads: a client's
// pending updates are a map keyed by (channel, sku), so a newer value replaces an unsent one
// (coalescing). While a client's socket buffer is over `clientBufferedBytesMax` nothing more is
// written to it; uWS's drain event resumes it with only the latest values.

import type { TemplatedApp, WebSocket } from 'uWebSockets.js';
import type { AtpChange } from '../engine/stream/wire.js';
import type { ApiKeys, RateLimiter } from './auth.js';
import { channelIdLengthMax, skuLengthMax } from '../engine/core/validate.js';
import type { GatewayMetrics } from './metrics.js';
import type { GatewayService } from './service.js';

/** Subscriptions one connection may hold: a PLP of a few hundred products, with room. */
export const liveSubscriptionsMax = 1_000;
/** Open connections per gateway process. */
export const liveConnectionsMax = 10_000;
/** A client message (subscribe with up to liveSubscriptionsMax SKUs fits). */
export const liveMessageBytesMax = 96 * 1024;
/** Socket buffer past which a client is considered slow: no new writes until it drains. */
export const clientBufferedBytesMax = 256 * 1024;
/** uWS closes a client whose buffer passes this (a client that stopped reading altogether). */
const backpressureBytesMax = 4 * 1024 * 1024;
/** How often dirty SKUs are read and pushed: coalesces bursts of changes into one message. */
export const liveTickMs = 50;
/** SKU reads per tick: bounds the store load of live stock; the rest waits for the next tick. */
const dirtyPerTickMax = 5_000;

interface Client {
  keyName: string;
  subscriptions: Set<string>;
  pending: Map<string, { channel: string; sku: string; atp: number }>;
  closed: boolean;
  ws?: WebSocket<Client>;
}

const subKey = (channel: string, sku: string) => `${channel}\u0000${sku}`;

export class LiveHub {
  private readonly subscribers = new Map<string, Set<Client>>();
  /** Channels with at least one subscriber, per SKU: what a change of that SKU makes dirty. */
  private readonly channelsBySku = new Map<string, Set<string>>();
  private dirty = new Set<string>();
  private readonly timer: NodeJS.Timeout;
  private ticking = false;
  private connections = 0;

  constructor(
    private readonly service: GatewayService,
    private readonly metrics: GatewayMetrics,
  ) {
    this.timer = setInterval(() => void this.tick(), liveTickMs);
    this.timer.unref();
  }

  get connectionCount(): number {
    return this.connections;
  }

  /** Feed of ATP changes: marks subscribed (channel, sku) pairs dirty. */
  onChanges(changes: readonly AtpChange[]): void {
    for (const change of changes) {
      const channels = this.channelsBySku.get(change.sku);
      if (!channels) continue;
      for (const channel of channels) this.dirty.add(subKey(channel, change.sku));
    }
  }

  mount(app: TemplatedApp, keys: ApiKeys, limiter: RateLimiter): void {
    app.ws<Client>('/v1/live', {
      compression: 0,
      maxPayloadLength: liveMessageBytesMax,
      maxBackpressure: backpressureBytesMax,
      closeOnBackpressureLimit: true,
      idleTimeout: 120,
      sendPingsAutomatically: true,
      upgrade: (res, req, context) => {
        const query = new URLSearchParams(req.getQuery() ?? '');
        const authorization = req.getHeader('authorization');
        const apiKeyHeader = req.getHeader('x-api-key') || (query.get('key') ?? '');
        const secKey = req.getHeader('sec-websocket-key');
        const secProtocol = req.getHeader('sec-websocket-protocol');
        const secExtensions = req.getHeader('sec-websocket-extensions');
        const refuse = (status: string, detail: string) => {
          this.metrics.requests.inc({ route: '/v1/live', method: 'GET', status: status.slice(0, 3) });
          res.cork(() => res.writeStatus(status).writeHeader('content-type', 'application/problem+json').end(JSON.stringify({ type: 'about:blank', title: status.slice(4), status: Number(status.slice(0, 3)), detail })));
        };
        const key = keys.identify(authorization, apiKeyHeader);
        if (!key) return refuse('401 Unauthorized', 'live stock needs an API key with scope availability:read: send "authorization: Bearer <key>" or ?key=<key>');
        if (!key.scopes.has('availability:read')) return refuse('403 Forbidden', `the API key "${key.name}" lacks scope availability:read`);
        if (!limiter.take(key.name, Date.now()).ok) {
          this.metrics.rateLimited.inc({ key: key.name });
          return refuse('429 Too Many Requests', `the API key "${key.name}" is over its rate limit`);
        }
        if (this.connections >= liveConnectionsMax) return refuse('503 Service Unavailable', `this gateway holds ${liveConnectionsMax} live connections, its limit: retry on another gateway or later`);
        this.metrics.requests.inc({ route: '/v1/live', method: 'GET', status: '101' });
        res.upgrade<Client>({ keyName: key.name, subscriptions: new Set(), pending: new Map(), closed: false }, secKey, secProtocol, secExtensions, context);
      },
      open: (ws) => {
        this.connections += 1;
        this.metrics.wsConnections.inc();
        ws.getUserData().ws = ws;
      },
      message: (ws, message) => {
        const client = ws.getUserData();
        this.metrics.wsMessages.inc({ direction: 'in', type: 'client' });
        // A message may read the store (a subscribe reads the current stock of every SKU it names):
        // it takes a token of the key's rate limit, as a request does.
        if (!limiter.take(client.keyName, Date.now()).ok) {
          this.metrics.rateLimited.inc({ key: client.keyName });
          return this.error(client, `the API key "${client.keyName}" is over its rate limit: this message was dropped, send it again later`);
        }
        void this.onMessage(client, Buffer.from(message).toString('utf8'));
      },
      drain: (ws) => {
        this.flush(ws.getUserData());
      },
      close: (ws) => {
        const client = ws.getUserData();
        client.closed = true;
        this.connections -= 1;
        this.metrics.wsConnections.dec();
        for (const key of client.subscriptions) this.unsubscribeKey(client, key);
      },
    });
  }

  private send(client: Client, payload: object, type: string): void {
    if (client.closed || !client.ws) return;
    client.ws.send(JSON.stringify(payload), false);
    this.metrics.wsMessages.inc({ direction: 'out', type });
  }

  private error(client: Client, detail: string): void {
    this.send(client, { type: 'error', detail }, 'error');
  }

  private async onMessage(client: Client, text: string): Promise<void> {
    let message: unknown;
    try {
      message = JSON.parse(text);
    } catch {
      return this.error(client, 'the message is not valid JSON: expected {"type":"subscribe","channel":"web","skus":["SKU-1"]}');
    }
    const m = typeof message === 'object' && message !== null ? (message as Record<string, unknown>) : {};
    if (m.type !== 'subscribe' && m.type !== 'unsubscribe') return this.error(client, `type ${JSON.stringify(m.type)} is unknown: expected "subscribe" or "unsubscribe"`);
    if (typeof m.channel !== 'string' || m.channel.length === 0 || m.channel.length > channelIdLengthMax) return this.error(client, 'channel must be a non-empty string');
    if (!Array.isArray(m.skus) || m.skus.length === 0 || m.skus.some((s) => typeof s !== 'string' || s.length === 0 || s.length > skuLengthMax)) {
      return this.error(client, 'skus must be a non-empty array of SKU ids');
    }
    const channel = m.channel;
    const skus = [...new Set(m.skus as string[])];
    if (m.type === 'unsubscribe') {
      for (const sku of skus) this.unsubscribeKey(client, subKey(channel, sku));
      return this.send(client, { type: 'unsubscribed', channel, skus }, 'ack');
    }
    if (!this.service.network.current().channels.some((c) => c.id === channel)) return this.error(client, `channel ${JSON.stringify(channel)} is not configured`);
    const fresh = skus.filter((sku) => !client.subscriptions.has(subKey(channel, sku)));
    if (client.subscriptions.size + fresh.length > liveSubscriptionsMax) {
      return this.error(client, `this connection would hold ${client.subscriptions.size + fresh.length} subscriptions: at most ${liveSubscriptionsMax}; unsubscribe some or open another connection`);
    }
    for (const sku of fresh) {
      const key = subKey(channel, sku);
      client.subscriptions.add(key);
      let set = this.subscribers.get(key);
      if (!set) {
        this.subscribers.set(key, (set = new Set()));
        let channels = this.channelsBySku.get(sku);
        if (!channels) this.channelsBySku.set(sku, (channels = new Set()));
        channels.add(channel);
      }
      set.add(client);
    }
    this.send(client, { type: 'subscribed', channel, skus, subscriptions: client.subscriptions.size }, 'ack');
    // The current values first, so the client never waits for a change to know the stock.
    try {
      const atps = await this.service.channelAtps(channel, skus, Date.now());
      for (const sku of skus) client.pending.set(subKey(channel, sku), { channel, sku, atp: atps.get(sku) ?? 0 });
      this.flush(client);
    } catch (error) {
      this.error(client, `could not read current stock: ${error instanceof Error ? error.message : String(error)}`);
    }
  }

  private unsubscribeKey(client: Client, key: string): void {
    if (!client.subscriptions.delete(key)) return;
    client.pending.delete(key);
    const set = this.subscribers.get(key);
    set?.delete(client);
    if (set && set.size === 0) {
      this.subscribers.delete(key);
      const at = key.indexOf('\u0000');
      const sku = key.slice(at + 1);
      const channels = this.channelsBySku.get(sku);
      channels?.delete(key.slice(0, at));
      if (channels && channels.size === 0) this.channelsBySku.delete(sku);
    }
  }

  private flush(client: Client): void {
    if (client.closed || !client.ws || client.pending.size === 0) return;
    if (client.ws.getBufferedAmount() > clientBufferedBytesMax) return;
    const updates = [...client.pending.values()].map((u) => ({ ...u, inStock: u.atp > 0 }));
    client.pending.clear();
    this.send(client, { type: 'atp', atMs: Date.now(), updates }, 'atp');
  }

  private async tick(): Promise<void> {
    if (this.ticking || this.dirty.size === 0) return;
    this.ticking = true;
    try {
      const batch: string[] = [];
      for (const key of this.dirty) {
        batch.push(key);
        this.dirty.delete(key);
        if (batch.length >= dirtyPerTickMax) break;
      }
      const byChannel = new Map<string, string[]>();
      for (const key of batch) {
        const at = key.indexOf('\u0000');
        const channel = key.slice(0, at);
        const list = byChannel.get(channel) ?? [];
        list.push(key.slice(at + 1));
        byChannel.set(channel, list);
      }
      const touched = new Set<Client>();
      for (const [channel, skus] of byChannel) {
        let atps: Map<string, number>;
        try {
          atps = await this.service.channelAtps(channel, skus, Date.now());
        } catch {
          // Store unreachable or channel removed by a reload: mark again, retry next tick.
          for (const sku of skus) this.dirty.add(subKey(channel, sku));
          continue;
        }
        for (const sku of skus) {
          const key = subKey(channel, sku);
          for (const client of this.subscribers.get(key) ?? []) {
            if (client.pending.has(key)) this.metrics.wsDropped.inc({ reason: 'coalesced' });
            client.pending.set(key, { channel, sku, atp: atps.get(sku) ?? 0 });
            touched.add(client);
          }
        }
      }
      for (const client of touched) this.flush(client);
    } finally {
      this.ticking = false;
    }
  }

  close(): void {
    clearInterval(this.timer);
  }
}
