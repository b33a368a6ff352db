// The in-process stream of the embedded default: what Kafka and the engine do together, in one
// process, for `npm start` with nothing configured. Stock events (msgpack/JSON buffers or plain
// objects) are validated exactly as on the Kafka path, then go through the same apply pipeline
// as the Kafka engine (pipeline.ts: hot/warm/cold lanes by velocity, chunks of 1,000, channel ATP
// changes), and submit() resolves once every event it carried is applied.
//
// Backpressure: each lane has a bound; while one is past it, submit() waits for room before
// queueing (the embedded default's equivalent of pausing a partition).

import type { Location, StockEvent } from '../core/types.js';
import { validateStockEvent } from '../core/validate.js';
import type { VelocityTracker } from '../core/velocity.js';
import type { Network } from '../inventory.js';
import type { InventoryStore } from '../store/types.js';
import type { Registry } from 'prom-client';
import { decodeStockEvent } from './codec.js';
import { EngineMetrics } from './metrics.js';
import { ApplyPipeline, Ticket } from './pipeline.js';
import type { AtpChange } from './wire.js';
import { startVelocityRetier } from './velocity-input.js';

/** Events one submit() may carry: bounds the work one call can queue at once. */
export const submitEventsMax = 100_000;

export interface InProcessStreamOptions {
  store: InventoryStore;
  network: () => Network;
  velocity?: VelocityTracker;
  /** Register the engine metrics into this registry (the gateway's); absent: a registry of their own. */
  registry?: Registry;
  /** Lane bounds (tests use small ones). */
  laneEventsMax?: ConstructorParameters<typeof ApplyPipeline>[0]['laneEventsMax'];
}

export interface SubmitResult {
  applied: number;
  duplicate: number;
  stale: number;
  rejected: { index: number; reason: string; detail: string }[];
}

export class InProcessStream {
  readonly metrics: EngineMetrics;
  readonly pipeline: ApplyPipeline;
  private readonly listeners = new Set<(changes: AtpChange[]) => void>();
  private readonly eventListeners = new Set<(events: StockEvent[]) => void>();
  private readonly stopRetier: () => void;
  private closed = false;
  /** How a ticket's submit() learns that the store failed (an invariant: a bug, not a bad event). */
  private readonly failures = new WeakMap<Ticket, (error: unknown) => void>();
  readonly counters = { submitted: 0, applied: 0, duplicate: 0, stale: 0, rejected: {} as Record<string, number> };

  constructor(private readonly options: InProcessStreamOptions) {
    this.metrics = new EngineMetrics(options.registry);
    this.pipeline = new ApplyPipeline({
      store: options.store,
      network: options.network,
      ...(options.velocity ? { velocity: options.velocity } : {}),
      metrics: this.metrics,
      ...(options.laneEventsMax ? { laneEventsMax: options.laneEventsMax } : {}),
      retry: false,
      onFailed: (ticket, error) => this.failures.get(ticket)?.(error),
      publish: (changes) => {
        for (const listener of this.listeners) listener(changes);
      },
      onApplied: (events) => {
        for (const listener of this.eventListeners) listener(events);
      },
    });
    this.stopRetier = options.velocity ? startVelocityRetier(options.velocity, this.metrics) : () => undefined;
  }

  onChanges(listener: (changes: AtpChange[]) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Valid events as they are applied (the history writer's input in the embedded default). */
  onEvents(listener: (events: StockEvent[]) => void): () => void {
    this.eventListeners.add(listener);
    return () => this.eventListeners.delete(listener);
  }

  async submit(values: readonly unknown[]): Promise<SubmitResult> {
    if (this.closed) throw new Error('the in-process stream is closed');
    if (values.length > submitEventsMax) throw new RangeError(`submit: ${values.length} events in one call, at most ${submitEventsMax}: split them`);
    const network = this.options.network();
    const locations = new Map<string, Location>(network.locations.map((l) => [l.id, l]));
    const nowMs = Date.now();
    const rejected: SubmitResult['rejected'] = [];
    const good: StockEvent[] = [];
    const check = { locationExists: (id: string) => locations.has(id), nowMs };
    values.forEach((value, index) => {
      const decoded = Buffer.isBuffer(value) || value instanceof Uint8Array ? decodeStockEvent(Buffer.from(value as Uint8Array), check) : validateStockEvent(value, check);
      if (decoded.ok) good.push(decoded.event);
      else {
        rejected.push({ index, reason: decoded.reason, detail: decoded.detail });
        this.counters.rejected[decoded.reason] = (this.counters.rejected[decoded.reason] ?? 0) + 1;
        this.metrics.rejected.inc({ reason: decoded.reason });
      }
    });
    this.counters.submitted += values.length;
    this.metrics.consumed.inc(values.length);
    this.metrics.batchSize.observe(values.length);
    // Backpressure: wait for room before queueing more (a lane past its bound).
    while (this.pipeline.full() && !this.closed) await this.pipeline.room();
    const outcomes = await new Promise<Ticket['outcomes']>((resolve, reject) => {
      const ticket = new Ticket((t) => resolve(t.outcomes));
      this.failures.set(ticket, reject);
      this.pipeline.enqueue(good, ticket, nowMs);
      ticket.seal();
    });
    this.counters.applied += outcomes.applied;
    this.counters.duplicate += outcomes.duplicate;
    this.counters.stale += outcomes.stale;
    return { ...outcomes, rejected };
  }

  async close(): Promise<void> {
    this.closed = true;
    this.stopRetier();
    await this.pipeline.idle();
    await this.pipeline.stop();
  }
}
