// The in-process stream of the embedded default: what Kafka and the engine do together, in one
// process, for `npm start` with nothing configured. Stock events (msgpack/JSON buffers or plain
// objects) are validated exactly as on the Kafka path, applied to the store in bounded chunks, and
// every applied change is handed to listeners as an AtpChange with channel ATP (the same record the
// Kafka engine publishes to inventory.changes).
//
// Submissions are applied one at a time, in order, so a SKU's events keep their order as they do
// within a Kafka partition. The queue of waiting submissions is bounded: at the bound, submit()
// waits, which is the embedded default's backpressure.

import { positionAtp } from '../core/atp.js';
import type { Location, StockEvent } from '../core/types.js';
import { validateStockEvent } from '../core/validate.js';
import type { VelocityTracker } from '../core/velocity.js';
import type { Network } from '../inventory.js';
import type { InventoryStore } from '../store/types.js';
import { decodeStockEvent } from './codec.js';
import type { AtpChange } from './wire.js';

/** Events per store call, as on the Kafka path: bounds one apply's duration. */
const applyChunkMax = 1_000;
/** Submissions waiting at most before submit() itself waits. */
const pendingSubmissionsMax = 64;

export interface InProcessStreamOptions {
  store: InventoryStore;
  network: () => Network;
  velocity?: VelocityTracker;
}

export interface SubmitResult {
  applied: number;
  duplicate: number;
  stale: number;
  rejected: { index: number; reason: string; detail: string }[];
}

export class InProcessStream {
  private readonly listeners = new Set<(changes: AtpChange[]) => void>();
  private readonly eventListeners = new Set<(events: StockEvent[]) => void>();
  private tail: Promise<unknown> = Promise.resolve();
  private pending = 0;
  private closed = false;
  readonly counters = { submitted: 0, applied: 0, duplicate: 0, stale: 0, rejected: {} as Record<string, number> };

  constructor(private readonly options: InProcessStreamOptions) {}

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
    while (this.pending >= pendingSubmissionsMax) await this.tail;
    this.pending++;
    const run = this.tail.then(() => this.apply(values));
    this.tail = run.catch(() => undefined);
    try {
      return await run;
    } finally {
      this.pending--;
    }
  }

  private async apply(values: readonly unknown[]): Promise<SubmitResult> {
    const network = this.options.network();
    const locations = new Map<string, Location>(network.locations.map((l) => [l.id, l]));
    const nowMs = Date.now();
    const result: SubmitResult = { applied: 0, duplicate: 0, stale: 0, rejected: [] };
    const good: StockEvent[] = [];
    values.forEach((value, index) => {
      const check = { locationExists: (id: string) => locations.has(id), nowMs };
      const decoded = Buffer.isBuffer(value) || value instanceof Uint8Array ? decodeStockEvent(Buffer.from(value as Uint8Array), check) : validateStockEvent(value, check);
      if (decoded.ok) good.push(decoded.event);
      else {
        result.rejected.push({ index, reason: decoded.reason, detail: decoded.detail });
        this.counters.rejected[decoded.reason] = (this.counters.rejected[decoded.reason] ?? 0) + 1;
      }
    });
    this.counters.submitted += values.length;
    for (let i = 0; i < good.length; i += applyChunkMax) {
      const chunk = good.slice(i, i + applyChunkMax);
      const outcomes = await this.options.store.applyEvents(chunk, nowMs);
      const visibleAtMs = Date.now();
      const changes: AtpChange[] = [];
      outcomes.forEach((outcome, k) => {
        result[outcome.outcome] += 1;
        this.counters[outcome.outcome] += 1;
        if (outcome.outcome !== 'applied') return;
        const p = outcome.position;
        const location = locations.get(p.location);
        const atp: Record<string, number> = {};
        for (const channel of network.channels) atp[channel.id] = positionAtp(p, location, channel);
        changes.push({ sku: p.sku, location: p.location, onHand: p.onHand, reserved: p.reserved, atp, visibleAtMs, asOfMs: chunk[k]!.asOf });
      });
      if (changes.length > 0) for (const listener of this.listeners) listener(changes);
      for (const listener of this.eventListeners) listener(chunk);
    }
    return result;
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.tail;
  }
}
