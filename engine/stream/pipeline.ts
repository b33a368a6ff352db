// The apply pipeline shared by the Kafka engine and the in-process stream (one pipeline, two
// transports): validated events wait in three priority lanes by the SKU's velocity tier (hot,
// warm, cold); one loop takes chunks hot first, applies them to the store, builds the ATP changes
// with channel ATP from the current network, and settles each event's ticket.
//
// Why tickets: events overtake each other across lanes, so the transport cannot assume "this batch
// is applied" when a later one is. A ticket counts the events (and other work, e.g. a DLQ send) of
// one delivered batch still open; the transport commits a Kafka offset only once every ticket
// before it in that partition is settled (engine.ts), and the in-process stream resolves submit().
//
// Order within a SKU is kept: while a SKU has events waiting, its new events join the same lane
// even if its tier changed, so a SKU's events are applied in the order they were delivered (as
// within a Kafka partition). The store's outcome does not depend on order, but its bounded
// adjustment list folds old adjustments, and delivered order is what the replay tests assume.
//
// No coalescing: merging a cold position's events into one would lose their eventIds, and a
// redelivery after a crash would then apply them twice. Every event is applied as delivered.

import { positionAtp } from '../core/atp.js';
import type { Location, StockEvent } from '../core/types.js';
import type { VelocityTier, VelocityTracker } from '../core/velocity.js';
import type { Network } from '../inventory.js';
import type { ApplyOutcome, InventoryStore } from '../store/types.js';
import { CompactLane, slabBytes, type LaneItem, type RawEvent, type RawItem, type SpillOptions } from './compact-lane.js';
import type { EngineMetrics } from './metrics.js';
import type { AtpChange } from './wire.js';
import { settlesWithin } from '../wait.js';

export const tiers: readonly VelocityTier[] = ['hot', 'warm', 'cold'];

/** Events per store call: bounds one Redis script batch's run time (and hot events' wait behind it). */
export const applyChunkMax = 1_000;
/**
 * Chunks in flight: while one is in the store, the next overlaps its round trip and a third can
 * be decoded (a chunk of undecoded cold events goes through the worker pool first, engine.ts).
 * Store calls still go out in take order, on one connection. With two, a backlog of undecoded
 * cold events drained at 59,000 events/s against 64,000 decoded when read; with three, 61,500
 * against 62,300 (`.instock/prof/sus.mjs 400000`, two runs each).
 */
export const applyConcurrency = 3;
/**
 * Events waiting per lane at most. At the bound the Kafka engine pauses the partitions feeding it
 * (the cold lane sheds instead, engine.ts) and the in-process stream makes submit() wait. Cold is
 * the largest: it is what piles up in a backlog or an overload, and it is packed (compact-lane.ts,
 * ~50 bytes per event), so a million waiting cold events take ~60 MB, where hot and warm events
 * are objects of ~230 bytes.
 */
export const laneEventsMaxDefault: Readonly<Record<VelocityTier, number>> = Object.freeze({ hot: 20_000, warm: 50_000, cold: 1_000_000 });
/** Applied chunks whose changes are still being published, at most: bounds memory and keeps the feed close behind the store. */
const publishesMax = 8;
/** After a failed store call, retry after this long, doubling up to the max (Redis restarts). */
const retryDelayMsMin = 50;
const retryDelayMsMax = 2_000;

export type Outcomes = Record<ApplyOutcome, number>;

/** Open work of one delivered batch; onSettled runs once when nothing is left open. */
export class Ticket {
  private open = 1;
  readonly outcomes: Outcomes = { applied: 0, duplicate: 0, stale: 0 };
  settled = false;
  /**
   * The batch may hold events that a previous owner of its partition applied and then died
   * before their changes reached Kafka (engine.ts: "Replayed changes"): its events that come back
   * as duplicate or stale publish their position's state again.
   */
  replay = false;

  constructor(private readonly onSettled: (ticket: Ticket) => void) {}

  /** One more piece of work (an event, a DLQ send) to wait for. */
  hold(count = 1): void {
    if (this.settled) throw new Error('ticket: hold after settle (a bug)');
    this.open += count;
  }

  release(count = 1): void {
    this.open -= count;
    if (this.open < 0) throw new Error('ticket: released more than held (a bug)');
    if (this.open === 0 && !this.settled) {
      this.settled = true;
      this.onSettled(this);
    }
  }

  /** Ends the sender's own hold: call once every piece of work is registered. */
  seal(): void {
    this.release();
  }
}

type Item = LaneItem;

/** A FIFO with O(1) push/shift that compacts its array now and then (hot and warm: short-lived items). */
class Lane {
  private items: Item[] = [];
  private head = 0;
  get length(): number {
    return this.items.length - this.head;
  }
  push(item: Item): void {
    this.items.push(item);
  }
  shift(): Item | undefined {
    if (this.head >= this.items.length) return undefined;
    const item = this.items[this.head]!;
    this.items[this.head++] = undefined as unknown as Item;
    if (this.head > 4_096 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
    return item;
  }
  /** Removes the items `drop` says so (rebalance); returns how many. */
  remove(drop: (item: Item) => boolean): Item[] {
    const kept: Item[] = [];
    const removed: Item[] = [];
    for (let i = this.head; i < this.items.length; i++) (drop(this.items[i]!) ? removed : kept).push(this.items[i]!);
    this.items = kept;
    this.head = 0;
    return removed;
  }
}

export interface PipelineOptions {
  store: InventoryStore;
  /** Current network (a getter, so a configuration reload applies to the next chunk). Absent: changes carry no channel ATP. */
  network?: () => Network;
  velocity?: VelocityTracker;
  metrics: EngineMetrics;
  laneEventsMax?: Partial<Record<VelocityTier, number>>;
  /** The cold lane writes slabs past this memory to disk (compact-lane.ts); absent: it stays in memory. */
  coldSpill?: SpillOptions;
  /** Called with each applied chunk's changes; the returned promise is awaited before the tickets settle. */
  publish(changes: AtpChange[]): Promise<void> | void;
  /** Called with each applied chunk (valid events, in apply order). */
  onApplied?(events: StockEvent[]): void;
  /**
   * While this says so, chunks take no cold events (hot and warm still go): the transport's reading
   * is behind and needs the CPU that applying cold events would take (engine.ts, "Reading first").
   * Call kick() when it stops saying so.
   */
  holdCold?: () => boolean;
  /**
   * Decodes the messages of a chunk queued undecoded (enqueueRaw), when their turn comes (the
   * engine: in its worker pool). Per message the event, or undefined: not a valid event, and the
   * transport took care of it (dead-lettered under a hold of its own on the ticket); the pipeline
   * then releases the event's unit of the ticket.
   */
  decodeRaw?: (raws: RawEvent[], tickets: Ticket[]) => Promise<(StockEvent | undefined)[]>;
  /** true (Kafka): a failed store call is retried with backoff, forever; false: its tickets fail. */
  retry: boolean;
  onFailed?(ticket: Ticket, error: unknown): void;
  log?: (message: string) => void;
}

export class ApplyPipeline {
  private readonly lanes: { hot: Lane; warm: Lane; cold: CompactLane };
  readonly laneEventsMax: Readonly<Record<VelocityTier, number>>;
  /** sku → lane and count of its waiting events (see "Order within a SKU" above). */
  private readonly waitingBySku = new Map<string, { tier: VelocityTier; count: number }>();
  private inFlight = 0;
  /** Resolves once the last chunk taken has made its store call (applyChunk: calls in take order). */
  private storeTurn: Promise<void> = Promise.resolve();
  /** The chunks being applied (a rebalance waits for these, not for later ones). */
  private readonly running = new Set<Promise<void>>();
  /** Applied chunks whose changes are being published (their tickets settle after). */
  private readonly publishing = new Set<Promise<void>>();
  private stopped = false;
  private readonly idleWaiters: (() => void)[] = [];
  private readonly roomWaiters: (() => void)[] = [];
  /** Events taken by tier, in take order (tests read it to see hot overtake cold). */
  readonly taken: Record<VelocityTier, number> = { hot: 0, warm: 0, cold: 0 };

  constructor(private readonly options: PipelineOptions) {
    this.laneEventsMax = Object.freeze({ ...laneEventsMaxDefault, ...options.laneEventsMax });
    // A dropped cold event leaves the lane when its turn comes: its SKU's count goes down then.
    this.lanes = { hot: new Lane(), warm: new Lane(), cold: new CompactLane('cold', options.coldSpill, (sku) => this.forget(sku)) };
  }

  depth(tier: VelocityTier): number {
    return this.lanes[tier].length;
  }

  get waiting(): number {
    return this.lanes.hot.length + this.lanes.warm.length + this.lanes.cold.length;
  }

  /** A lane at or past its bound: the transport stops feeding. With `only`, just those lanes. */
  full(only: readonly VelocityTier[] = tiers): boolean {
    return only.some((t) => this.lanes[t].length >= this.laneEventsMax[t]);
  }

  /** The SKU's lane if it had an event now (its waiting lane, else its velocity tier). */
  laneOf(sku: string, nowMs: number): VelocityTier {
    return this.tierOf(sku, nowMs);
  }

  /** This lane at most half its bound (or the given fraction of it). */
  laneRoomy(tier: VelocityTier, fraction = 0.5): boolean {
    return this.lanes[tier].length <= this.laneEventsMax[tier] * fraction;
  }

  /** Every lane at most half its bound: a paused transport may feed again (hysteresis). */
  roomy(): boolean {
    return tiers.every((t) => this.laneRoomy(t));
  }

  /** Resolves once roomy() (at once if it is). */
  room(): Promise<void> {
    if (this.roomy() || this.stopped) return Promise.resolve();
    return new Promise((resolve) => this.roomWaiters.push(resolve));
  }

  /** Resolves once nothing waits and nothing is in flight. */
  idle(): Promise<void> {
    if (this.waiting === 0 && this.inFlight === 0 && this.publishing.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  private tierOf(sku: string, nowMs: number): VelocityTier {
    return this.waitingBySku.get(sku)?.tier ?? this.velocityTier(sku, nowMs);
  }

  private velocityTier(sku: string, nowMs: number): VelocityTier {
    return this.options.velocity ? this.options.velocity.tier(sku, nowMs) : 'cold';
  }

  /** Queues valid events under the ticket (which holds one unit per event). Never blocks: callers check full(). */
  enqueue(events: readonly StockEvent[], ticket: Ticket, nowMs = Date.now()): void {
    if (events.length === 0) return;
    ticket.hold(events.length);
    for (const event of events) {
      // A SKU with events waiting keeps their lane (its events stay in order); one lookup per event.
      let waiting = this.waitingBySku.get(event.sku);
      if (waiting) waiting.count += 1;
      else this.waitingBySku.set(event.sku, (waiting = { tier: this.velocityTier(event.sku, nowMs), count: 1 }));
      this.lanes[waiting.tier].push({ event, ticket, tier: waiting.tier });
    }
    this.updateDepth();
    this.pump();
  }

  /**
   * Queues messages undecoded in the cold lane, each under its key's SKU, when that SKU's lane is
   * cold (the transport checked laneOf: a SKU with events waiting in another lane keeps them in
   * order there). They are decoded when their turn comes (decodeRaw). Never blocks, like enqueue.
   */
  enqueueRaw(raws: readonly RawEvent[], ticket: Ticket): void {
    if (raws.length === 0) return;
    if (!this.options.decodeRaw) throw new Error('pipeline: enqueueRaw without decodeRaw (a bug)');
    ticket.hold(raws.length);
    for (const raw of raws) {
      const waiting = this.waitingBySku.get(raw.key);
      if (waiting && waiting.tier !== 'cold') throw new Error(`pipeline: raw event of ${raw.key} while its events wait in the ${waiting.tier} lane (a bug)`);
      if (waiting) waiting.count += 1;
      else this.waitingBySku.set(raw.key, { tier: 'cold', count: 1 });
      this.lanes.cold.pushRaw(raw, ticket);
    }
    this.updateDepth();
    this.pump();
  }

  /** Drops waiting events whose ticket `drop` names (partitions revoked: they go back to Kafka); returns how many. */
  discard(drop: (ticket: Ticket) => boolean): number {
    let count = this.lanes.cold.dropTickets(drop);
    for (const tier of ['hot', 'warm'] as const) {
      for (const item of this.lanes[tier].remove((i) => drop(i.ticket))) {
        this.forget(item.event.sku);
        count += 1;
      }
    }
    this.updateDepth();
    this.wake();
    return count;
  }

  private forget(sku: string): void {
    const waiting = this.waitingBySku.get(sku);
    if (waiting && --waiting.count === 0) this.waitingBySku.delete(sku);
  }

  private updateDepth(): void {
    for (const tier of tiers) this.options.metrics.queueDepth.set({ tier }, this.lanes[tier].length);
    this.options.metrics.coldLaneBytes.set(this.lanes.cold.bytes);
    this.options.metrics.coldLaneSpilledBytes.set(this.lanes.cold.spilledSlabs * slabBytes);
  }

  /** Cold events wait while they are held back (asked once per chunk: the gauge follows it). */
  private coldHeld(): boolean {
    if (this.lanes.cold.length === 0) return false;
    const held = this.options.holdCold?.() ?? false;
    this.options.metrics.coldHeld.set(held ? 1 : 0);
    return held;
  }

  /** Applies what may be taken now (the transport calls it once holdCold() turns false). */
  kick(): void {
    this.pump();
  }

  /** Up to applyChunkMax waiting events, hot first; none of the cold ones while coldHeld. */
  private take(coldHeld: boolean): (Item | RawItem)[] {
    const chunk: (Item | RawItem)[] = [];
    for (const tier of coldHeld ? (['hot', 'warm'] as const) : tiers) {
      const lane = this.lanes[tier];
      while (chunk.length < applyChunkMax) {
        const item = lane.shift();
        if (!item) break;
        this.forget('raw' in item ? item.raw.key : item.event.sku);
        this.taken[tier] += 1;
        chunk.push(item);
      }
    }
    return chunk;
  }

  private pump(): void {
    while (!this.stopped && this.inFlight < applyConcurrency && this.publishing.size < publishesMax) {
      const coldHeld = this.coldHeld();
      if (this.lanes.hot.length + this.lanes.warm.length + (coldHeld ? 0 : this.lanes.cold.length) === 0) break;
      const chunk = this.take(coldHeld);
      this.updateDepth();
      this.inFlight += 1;
      const running: Promise<void> = this.applyChunk(chunk).finally(() => {
        this.running.delete(running);
        this.inFlight -= 1;
        this.wake();
        this.pump();
      });
      this.running.add(running);
    }
  }

  private wake(): void {
    if (this.roomy()) for (const resolve of this.roomWaiters.splice(0)) resolve();
    if (this.waiting === 0 && this.inFlight === 0 && this.publishing.size === 0) for (const resolve of this.idleWaiters.splice(0)) resolve();
  }

  /** The chunk's undecoded messages decoded, in place; the invalid ones left out (dead-lettered by the transport). */
  private async decoded(taken: (Item | RawItem)[]): Promise<Item[]> {
    const raws = taken.filter((i): i is RawItem => 'raw' in i);
    if (raws.length === 0) return taken as Item[];
    const events = await this.options.decodeRaw!(
      raws.map((i) => i.raw),
      raws.map((i) => i.ticket),
    );
    const chunk: Item[] = [];
    let k = 0;
    for (const item of taken) {
      if (!('raw' in item)) chunk.push(item);
      else {
        const event = events[k++];
        if (event) chunk.push({ event, ticket: item.ticket, tier: item.tier });
        else item.ticket.release();
      }
    }
    return chunk;
  }

  private async applyChunk(taken: (Item | RawItem)[]): Promise<void> {
    const { store, metrics } = this.options;
    // Store calls go out in take order (one connection keeps them so), also when an earlier chunk
    // is still being decoded: a SKU's later events in this chunk must not pass its earlier ones.
    // Each chunk's turn ends once its store call is made (or at once without one).
    const before = this.storeTurn;
    let turnDone!: () => void;
    this.storeTurn = new Promise<void>((resolve) => (turnDone = resolve));
    const chunk = await this.withRetry(`decoding ${taken.length} events`, taken, () => this.decoded(taken));
    await before;
    if (!chunk || chunk.length === 0) {
      turnDone();
      return;
    }
    const events = chunk.map((i) => i.event);
    metrics.applyBatchSize.observe(events.length);
    const results = await this.withRetry(`applying ${events.length} events`, chunk, async () => {
      const stopTimer = metrics.applySeconds.startTimer();
      const call = store.applyEvents(events, Date.now());
      turnDone();
      const r = await call;
      stopTimer();
      return r;
    });
    if (!results) return;
    const visibleAtMs = Date.now();
    const network = this.options.network?.();
    const locations = network ? locationIndex(network) : undefined;
    const changes: AtpChange[] = [];
    let replayed = 0;
    // Counted per chunk: a labelled inc costs ~0.1 µs, once per event it was ~1 % of the main thread.
    const outcomes: Outcomes = { applied: 0, duplicate: 0, stale: 0 };
    results.forEach((result, k) => {
      const item = chunk[k]!;
      item.ticket.outcomes[result.outcome] += 1;
      outcomes[result.outcome] += 1;
      if (result.outcome === 'applied') metrics.freshnessSeconds.observe({ tier: item.tier }, Math.max(0, visibleAtMs - item.event.asOf) / 1000);
      else if (item.ticket.replay) replayed += 1;
      else return;
      const p = result.position;
      const atp: Record<string, number> = {};
      if (network) {
        const location = locations!.get(p.location);
        for (const channel of network.channels) atp[channel.id] = positionAtp(p, location, channel);
      }
      changes.push({ sku: p.sku, location: p.location, onHand: p.onHand, reserved: p.reserved, version: p.version, atp, visibleAtMs, asOfMs: item.event.asOf });
    });
    for (const [outcome, count] of Object.entries(outcomes)) if (count > 0) metrics.outcomes.inc({ outcome }, count);
    this.options.onApplied?.(events);
    // Publishing does not hold an apply slot: the next chunk goes to the store while this one's
    // changes travel (at most publishesMax at once). Tickets settle only once published.
    const publishing: Promise<void> = (async () => {
      if (changes.length > 0) {
        const sent = await this.withRetry(`publishing ${changes.length} changes`, chunk, async () => {
          await this.options.publish(changes);
          return true;
        });
        if (!sent) return;
        metrics.changesPublished.inc(changes.length);
        metrics.changesReplayed.inc(replayed);
      }
      for (const item of chunk) item.ticket.release();
    })().finally(() => {
      this.publishing.delete(publishing);
      this.wake();
      this.pump();
    });
    this.publishing.add(publishing);
  }

  /** Runs op, retrying with backoff when options.retry; otherwise (or once stopped) fails the chunk's tickets and returns undefined. */
  private async withRetry<T>(what: string, chunk: readonly { ticket: Ticket }[], op: () => Promise<T>): Promise<T | undefined> {
    let delayMs = retryDelayMsMin;
    for (;;) {
      try {
        return await op();
      } catch (error) {
        if (!this.options.retry || this.stopped) {
          for (const ticket of new Set(chunk.map((i) => i.ticket))) this.options.onFailed?.(ticket, error);
          return undefined;
        }
        this.options.log?.(`${what} failed, retrying in ${delayMs} ms: ${error instanceof Error ? error.message : String(error)}`);
        await new Promise((r) => setTimeout(r, delayMs));
        delayMs = Math.min(retryDelayMsMax, delayMs * 2);
      }
    }
  }

  /** Resolves once the chunks being applied or published now are done, or after limitMs (a rebalance must not wait forever). */
  async inFlightDone(limitMs: number): Promise<void> {
    await settlesWithin(Promise.all([...this.running, ...this.publishing]), limitMs);
  }

  /** Stops taking new chunks; waits for those in flight. Waiting events stay unapplied (their tickets never settle). */
  async stop(): Promise<void> {
    this.stopped = true;
    for (const resolve of this.roomWaiters.splice(0)) resolve();
    while (this.inFlight > 0 || this.publishing.size > 0) await new Promise((r) => setTimeout(r, 5));
    this.lanes.cold.close();
  }
}

// Index of each network's locations, built once per network object (a reload builds a new one).
const locationIndexes = new WeakMap<Network, Map<string, Location>>();
function locationIndex(network: Network): Map<string, Location> {
  let index = locationIndexes.get(network);
  if (!index) {
    index = new Map(network.locations.map((l) => [l.id, l]));
    locationIndexes.set(network, index);
  }
  return index;
}
