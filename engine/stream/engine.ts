// The stream engine: a consumer group on inventory.stock. Each delivered batch is decoded and
// validated (large batches in a piscina worker pool, the values handed over as one transferred
// buffer), bad events go to the DLQ with their reason and original bytes, and valid ones join the
// shared apply pipeline (pipeline.ts): hot/warm/cold lanes by the SKU's velocity, hot first,
// chunks of 1,000 to the store, each applied chunk's ATP changes (channel ATP from the network) to
// inventory.changes.
//
// Exactly-once effect on ATP with overtaking lanes: every delivered batch is a ticket that settles
// once all its events are applied (changes published) and its DLQ send is acknowledged. Per
// partition the tickets queue in offset order, and the committed offset only moves past a prefix
// of settled tickets (the partition's applied watermark): a hot event applied ahead of a cold one
// never lets the commit pass the cold one. A crash replays from the watermark; the store's
// idempotent apply (eventId, snapshot order) absorbs what was applied past it.
//
// Backpressure: each lane has a bound. A batch that leaves the hot or warm lane at its bound pauses
// its partition (NativeConsumer.pause: the client drops what it fetched past the last message
// handed over and fetches from there on resume, nothing is lost); once every
// lane is back under half its bound, the paused partitions resume.
//
// Cold overflow sheds instead of pausing (coldOverflow 'shed', the default): pausing would leave
// the partition's hot events waiting in Kafka behind its cold backlog. When a batch arrives while
// the cold lane is at its bound, the partition starts shedding at that batch's first offset X: its
// hot and warm events are still taken and applied, its cold (and malformed) events are skipped.
// The skipped events hold their batch's ticket open, so the watermark cannot pass X. Once the cold
// lane is down to a quarter of its bound, the partition rewinds: the tickets from X on are dropped
// (their waiting events leave the lanes) and the consumer seeks to X. Everything from X is
// delivered again; what was already applied comes back as duplicates, which the store ignores.
// Memory stays bounded and hot events within shedReadAheadMax of X do not wait behind cold ones;
// the cost is reading (and re-applying as duplicates) the hot events after X twice.
//
// Reading first: when the CPU is short (an overload), applying cold events would take the time the
// main thread needs to read Kafka, and hot events would wait there, unread, behind the backlog. So
// while a partition has more than readLagHoldMin events left to read, chunks take no cold events
// (hot and warm still go): reading catches up, the cold events wait in their lane (which spills to
// disk, compact-lane.ts), and they flow again as soon as reading has caught up. Never while a
// partition is paused (its resume, or its rewind, waits for the lanes to drain), once the cold lane
// is half full (an input reading never catches up with would starve cold for good), nor while stopping.
//
// Undecoded cold (option undecodedColdLag, default 1): while reading is behind and a partition is
// more than that many events behind, a message of it whose key (the SKU) has the cold lane is not
// decoded: it goes into the cold lane as its bytes (compact-lane.ts, raw records) and is decoded
// in the worker pool, validated (a bad one dead-lettered then) and applied when its turn comes. In
// an overload most events are cold and wait anyway: they cost the read its consume and a copy, not
// a worker decode and its result's trip back, and reading keeps up with more (README, "Undecoded
// cold", has the figures). A SKU with events waiting in the hot or warm lane has its messages
// decoded as usual, so its order holds. (An event whose key is not its SKU waits under its key;
// the store's outcome does not depend on order.)
//
// The consumer is NativeConsumer (connectors/kafka.ts): the client's native consume(n) API, about
// half the main-thread time per message of its kafkajs-compatible consumer.
//
// Rebalance (NativeConsumer's onRevoke, awaited before the partitions move): the revoked partitions'
// waiting events are handed back (dropped from the lanes, not committed: the next owner reads them
// again), the chunks in flight are finished (bounded wait), and the watermark reached is committed.
//
// Replayed changes: an engine that dies (SIGKILL, a lost host) after a chunk went into the store
// and before its changes reached Kafka leaves them unpublished, and its events, not committed,
// come back to the next owner as duplicates, which change nothing. So while a partition is read
// below the end it had when this engine first read it (what a previous owner can have taken), its
// events that come back duplicate or stale publish their position's state again (Ticket.replay):
// the feed then ends where the store does. A consumer may see a change more than once, always
// with the same version (of two changes of a position, the higher version is the newer).
//
// Velocity: the engine also reads inventory.reservations (an ephemeral group per process, from the
// latest offset, so every engine sees every reservation; history seeds the past) into the caller's
// VelocityTracker (velocity-input.ts), and re-ranks it on a timer.

import { randomUUID } from 'node:crypto';
import { Piscina } from 'piscina';
import type { Registry } from 'prom-client';
import { projectPath } from '../../config/paths.js';
import { BatchProducer, NativeConsumer, type ConsumedMessage, type Consumer, type KafkaClient, type Producer } from '../../connectors/kafka.js';
import type { StockEvent } from '../core/types.js';
import type { VelocityTier, VelocityTracker } from '../core/velocity.js';
import type { Network } from '../inventory.js';
import type { InventoryStore } from '../store/types.js';
import { decodeStockEvent, eventBytesMax, type DecodeRejection, type Decoded } from './codec.js';
import type { RawEvent, SpillOptions } from './compact-lane.js';
import type { DecodeTask } from './decode-worker.js';
import { EngineMetrics } from './metrics.js';
import { ApplyPipeline, Ticket } from './pipeline.js';
import { VelocityInput, startVelocityRetier } from './velocity-input.js';
import { semiSpaceHint } from './young-generation.js';
import { decodeReservationTransition, encodeAtpChange } from './wire.js';
import { settlesWithin } from '../wait.js';

/**
 * Messages per consume() call, all partitions together (NativeConsumer). It also bounds how far a
 * lane goes past its bound before its partitions pause: two calls' worth at most.
 */
const fetchBatchMax = 2_000;
/** From this many messages a batch is decoded in the worker pool. */
const workerBatchMin = 256;
/** Decode tasks waiting for a worker: at the bound, onBatch waits (the consumer stops fetching). */
const decodeQueueMax = 16;
/** How long a rebalance or a stop waits for chunks in flight before handing the rest back. */
const handBackWaitMsMax = 10_000;
/**
 * Dead-letter events not yet acknowledged by Kafka: at this many the partitions pause (the DLQ is
 * down, or slower than the bad events come), and they resume at half. Without it a dead DLQ would
 * let the engine read on with every bad event, its bytes and its batch's ticket held in memory.
 */
const deadInFlightMax = 10_000;
/** A failed DLQ send is retried after this long, doubling up to the max, while the engine runs. */
const sendRetryMsMin = 100;
const sendRetryMsMax = 5_000;
/** How often the worker pool's utilisation is sampled into the gauge. */
const utilizationSampleMs = 1_000;
/**
 * A shedding partition reads at most this many events past its shed offset, then pauses until its
 * rewind: everything read past the offset is read again (and its hot and warm events applied again
 * as duplicates), so an unbounded read-ahead would redo the whole backlog on every rewind.
 */
const shedReadAheadMax = 10_000;
/** How often shedding partitions check whether they can rewind (idle partitions get no batch to do it). */
const rewindCheckMs = 50;
/**
 * A shedding partition rewinds once the cold lane is down to this fraction of its bound. A rewind
 * reads everything since the shed offset again, so waiting for a quarter (not half) makes shed
 * episodes longer and rewinds rarer: fewer events read twice, and hot events further ahead (the
 * shed test's hot/cold rank ratio: 0.50-0.57 in five runs, against 0.64-0.91 at half).
 */
const rewindColdFraction = 0.25;
/**
 * Reading is behind when a partition has more than this many events in Kafka past its last batch
 * (see "Reading first" above): about half a fetch batch, so a hot event waits at most a couple of
 * batches in Kafka, not the whole backlog, when the CPU is short.
 */
const readLagHoldMin = 1_000;
/** Cold events wait undecoded from this lag on, by default: whenever reading is behind (see "Undecoded cold"). */
const undecodedColdLagDefault = 1;
/** Keys longer than this are not SKUs (validation caps ids far below): such messages are decoded at once. */
const rawKeyBytesMax = 1_024;

export interface EngineTopics {
  stock: string;
  changes: string;
  dlq: string;
  /** Reservation transitions read for velocity (needs the velocity option). */
  reservations?: string;
}

export interface EngineOptions {
  kafka: KafkaClient;
  topics: EngineTopics;
  groupId: string;
  /** How soon a dead engine's partitions move to a live one (librdkafka session.timeout.ms). */
  sessionTimeoutMs?: number;
  store: InventoryStore;
  /**
   * Events for locations not in this list go to the DLQ (reason unknown_location). Without it, the
   * network's locations (option network) are the list; without either, any location is taken.
   */
  locations?: string[];
  /** The network, read per applied chunk (a reload applies at once): channel ATP in the change feed. */
  network?: () => Network;
  /** Velocity for the lanes; created by the caller (it may be seeded from history before start). */
  velocity?: VelocityTracker;
  /** Register the metrics into this registry (e.g. the gateway's in `npm start`). */
  registry?: Registry;
  /** Worker threads decoding large batches (0: decode on the main thread). */
  decodeThreads?: number;
  /** Lane bounds in events (tests use small ones). */
  laneEventsMax?: Partial<Record<VelocityTier, number>>;
  /** The cold lane's slabs past memoryBytes go to files under dir (compact-lane.ts); absent: memory only. */
  coldSpill?: SpillOptions;
  /** Cold events of a partition more than this many events behind wait undecoded (see "Undecoded cold"); absent: undecodedColdLagDefault; 0: off. */
  undecodedColdLag?: number;
  /** At the cold lane's bound: shed cold events and rewind later (default), or pause the partition. */
  coldOverflow?: 'shed' | 'pause';
  log?: (message: string) => void;
}

export interface EngineCounters {
  consumed: number;
  applied: number;
  duplicate: number;
  stale: number;
  rejected: Partial<Record<DecodeRejection, number>>;
  /** Batches decoded in the worker pool rather than inline. */
  workerBatches: number;
  /** Times a partition was paused at a lane bound, and resumed. */
  pauses: number;
  resumes: number;
  /** Waiting events handed back to Kafka at a rebalance or a stop. */
  handedBack: number;
  /** Times a partition started shedding cold events, events skipped that way, and rewinds to re-read them. */
  sheds: number;
  shedEvents: number;
  rewinds: number;
  /** Cold events queued undecoded while reading was behind (decoded when their turn came). */
  undecodedCold: number;
}

/** One delivered batch in its partition's queue: its ticket and the offset after its last message. */
interface Pending {
  ticket: Ticket;
  firstOffset: bigint;
  nextOffset: bigint;
}

interface PartitionState {
  partition: number;
  pending: Pending[];
  paused: boolean;
  revoked: boolean;
  /** Shedding cold events since this offset (see "Cold overflow" above); undefined: not shedding. */
  shedFrom: bigint | undefined;
  /**
   * SKUs with an event skipped since shedFrom: their later events are skipped too, even if the SKU
   * turned hot meanwhile, so that a SKU's events are never applied out of delivered order (at most
   * shedReadAheadMax SKUs; emptied by the rewind).
   */
  shedSkus: Set<string>;
  /** A batch of this partition is being taken (a rewind from outside waits for it to end). */
  inBatch: boolean;
  /** Events left in Kafka past the last batch taken (its offsetLag). */
  lag: number;
  /**
   * The partition's end when this engine first read it (see "Replayed changes"); undefined until
   * the client knows it (every batch replays until then).
   */
  replayBelow: bigint | undefined;
}

export class StreamEngine {
  readonly counters: EngineCounters = { consumed: 0, applied: 0, duplicate: 0, stale: 0, rejected: {}, workerBatches: 0, pauses: 0, resumes: 0, handedBack: 0, sheds: 0, shedEvents: 0, rewinds: 0, undecodedCold: 0 };
  readonly metrics: EngineMetrics;
  readonly pipeline: ApplyPipeline;
  /** Offsets committed per partition, in commit order (tests check the watermark rule with it). */
  readonly commits: { partition: number; offset: bigint }[] = [];
  private consumer: NativeConsumer | undefined;
  private reservationsConsumer: Consumer | undefined;
  /** DLQ sends (few, with headers). */
  private producer: Producer | undefined;
  /** The change feed: one message per change, sent in flush rounds (BatchProducer: each applied chunk settles once its changes are acknowledged). */
  private changes: BatchProducer | undefined;
  private decoder: Piscina<DecodeTask, Decoded[]> | undefined;
  private readonly partitions = new Map<number, PartitionState>();
  private readonly commitsDue = new Map<number, bigint>();
  private committing: Promise<void> | undefined;
  private resumeScheduled = false;
  /** Dead-letter events handed to sendDead and not acknowledged yet (bounded: deadInFlightMax). */
  private deadInFlight = 0;
  private readonly deadRoomWaiters: (() => void)[] = [];
  private fixedLocations: KnownLocations | undefined;
  private stopping = false;
  private readonly timers: (() => void)[] = [];

  constructor(private readonly options: EngineOptions) {
    this.metrics = new EngineMetrics(options.registry);
    this.pipeline = new ApplyPipeline({
      store: options.store,
      ...(options.network ? { network: options.network } : {}),
      ...(options.velocity ? { velocity: options.velocity } : {}),
      metrics: this.metrics,
      ...(options.laneEventsMax ? { laneEventsMax: options.laneEventsMax } : {}),
      ...(options.coldSpill ? { coldSpill: options.coldSpill } : {}),
      retry: true,
      publish: async (changes) => {
        await this.changes!.send(options.topics.changes, changes.map((c) => ({ key: c.sku, value: encodeAtpChange(c) })));
      },
      holdCold: () => this.readingBehind(),
      decodeRaw: (raws, tickets) => this.decodeRaw(raws, tickets),
      log: (m) => options.log?.(m),
    });
  }

  /**
   * A partition being read has more than readLagHoldMin events left in Kafka. Not while stopping,
   * nor while a partition is paused: a paused partition resumes only once the lanes drain, and a
   * shedding one rewinds only once the cold lane does, so cold must flow then. Nor once the cold
   * lane is half full: an input that reading never catches up with must not starve cold events
   * (and the commits behind them) for good.
   */
  private readingBehind(): boolean {
    if (this.stopping || !this.pipeline.laneRoomy('cold')) return false;
    let behind = false;
    for (const state of this.partitions.values()) {
      if (state.paused) return false;
      if (state.lag > readLagHoldMin) behind = true;
    }
    return behind;
  }

  async start(): Promise<void> {
    const { kafka, topics, groupId } = this.options;
    const heapHint = semiSpaceHint();
    if (heapHint) this.options.log?.(heapHint);
    const threads = this.options.decodeThreads ?? 1;
    if (threads > 0) {
      // The worker is the compiled file: npm run build (and npm test) write dist/.
      this.decoder = new Piscina({ filename: projectPath('dist', 'engine', 'stream', 'decode-worker.js'), minThreads: threads, maxThreads: threads, maxQueue: decodeQueueMax });
      const decoder = this.decoder;
      const timer = setInterval(() => this.metrics.workerUtilization.set(decoder.utilization), utilizationSampleMs);
      timer.unref();
      this.timers.push(() => clearInterval(timer));
    }
    this.producer = kafka.producer({ kafkaJS: { acks: -1, idempotent: true }, 'linger.ms': 5 } as never);
    await this.producer.connect();
    this.changes = await BatchProducer.connect(kafka);
    if (this.options.velocity) {
      this.timers.push(startVelocityRetier(this.options.velocity, this.metrics));
      if (topics.reservations) await this.startReservations(topics.reservations, this.options.velocity);
    }
    this.consumer = await NativeConsumer.connect(kafka, {
      groupId,
      topic: topics.stock,
      sessionTimeoutMs: this.options.sessionTimeoutMs ?? 10_000,
      maxMessages: fetchBatchMax,
      onBatch: (partition, messages, lag, highOffset) => this.onBatch(partition, messages, lag, highOffset),
      // Awaited before the partitions move (see "Rebalance" above).
      onRevoke: (partitions) => this.handBack(partitions),
      log: (m) => this.options.log?.(m),
    });
    const rewinds = setInterval(() => {
      for (const state of this.partitions.values()) if (!state.inBatch) this.rewindIfDue(state);
    }, rewindCheckMs);
    this.timers.push(() => clearInterval(rewinds));
    this.consumer.start();
  }

  /** One partition's messages of a consume call (NativeConsumer.onBatch). */
  private async onBatch(partition: number, messages: ConsumedMessage[], lag: number, highOffset: number | undefined): Promise<void> {
    // Stopping: take nothing more. Not committed, the messages stay in Kafka for the next owner.
    if (messages.length === 0 || this.stopping) return;
    const state = this.partitionState(partition);
    if (state.replayBelow === undefined && highOffset !== undefined) state.replayBelow = BigInt(highOffset);
    state.inBatch = true;
    try {
      // A due rewind seeks back instead of taking this batch (it comes again after the seek).
      if (this.rewindIfDue(state)) return;
      this.metrics.batchSize.observe(messages.length);
      this.metrics.lag.set({ partition: String(partition) }, lag);
      // While the batch is decoded its events are not in the lanes yet: they count as unread.
      state.lag = lag + messages.length;
      await this.take(state, messages);
      state.lag = lag;
      // Not committed here: that waits for the watermark.
      this.pauseIfBehind(state, messages[messages.length - 1]!.offset);
      // Caught up (or paused): cold events held back while reading was behind may go now.
      this.pipeline.kick();
    } finally {
      state.inBatch = false;
    }
  }

  private async startReservations(topic: string, velocity: VelocityTracker): Promise<void> {
    const input = new VelocityInput(velocity, this.metrics);
    // A group of its own per process, from the latest offset: each engine needs every reservation
    // (its stock partitions hold any SKU), and the past comes from history's seed, not a replay.
    this.reservationsConsumer = this.options.kafka.consumer({ kafkaJS: { groupId: `${this.options.groupId}.velocity.${randomUUID().slice(0, 8)}`, fromBeginning: false, autoCommit: false } } as never);
    await this.reservationsConsumer.connect();
    await this.reservationsConsumer.subscribe({ topics: [topic] });
    await this.reservationsConsumer.run({
      eachBatch: async ({ batch }) => {
        for (const message of batch.messages) {
          const transition = decodeReservationTransition(message.value);
          if (transition) input.record(transition);
          else this.metrics.reservationTransitions.inc({ transition: 'invalid' });
        }
      },
    });
  }

  private partitionState(partition: number): PartitionState {
    let state = this.partitions.get(partition);
    if (!state) {
      state = { partition, pending: [], paused: false, revoked: false, shedFrom: undefined, shedSkus: new Set(), inBatch: false, lag: 0, replayBelow: undefined };
      this.partitions.set(partition, state);
    }
    return state;
  }

  /** The locations an event may name: the given list, else the network's (a reload applies to the next batch). */
  private knownLocations(): KnownLocations | undefined {
    if (this.options.locations) {
      this.fixedLocations ??= { ids: this.options.locations, set: new Set(this.options.locations) };
      return this.fixedLocations;
    }
    const network = this.options.network?.();
    return network ? networkLocations(network) : undefined;
  }

  /**
   * Decodes and validates a batch. An asOf too far ahead is judged against the message's Kafka
   * timestamp, not the engine's clock, so that an event read again after a crash, an hour later,
   * gets the same verdict. The stock topic is created with message.timestamp.type=LogAppendTime
   * (instockTopics): the timestamp is then the broker's, which a source whose clock runs ahead
   * cannot set (with CreateTime it is the producer's own). nowMs stands in for a message without one.
   */
  private async decode(messages: ConsumedMessage[], nowMs: number): Promise<Decoded[]> {
    const known = this.knownLocations();
    const times = messages.map((m) => timestampOf(m, nowMs));
    const inline = () => {
      const locationExists = known && known.ids.length > 0 ? (id: string) => known.set.has(id) : undefined;
      return messages.map((m, i) => decodeStockEvent(m.value ?? null, { locationExists, nowMs: times[i]! }));
    };
    if (!this.decoder || messages.length < workerBatchMin) return inline();
    const locations = known?.ids ?? [];
    const lengths = messages.map((m) => (m.value ? m.value.length : -1));
    const buffer = new ArrayBuffer(lengths.reduce((n, l) => n + Math.max(0, l), 0));
    const view = new Uint8Array(buffer);
    let at = 0;
    for (const m of messages) {
      if (!m.value) continue;
      view.set(m.value, at);
      at += m.value.length;
    }
    this.counters.workerBatches += 1;
    // The pool refusing (its queue full) or a worker dying must not lose the batch: decoded here then.
    return (this.decoder.run({ buffer, lengths, times, locations }, { transferList: [buffer] }) as Promise<Decoded[]>).catch((error: unknown) => {
      this.options.log?.(`decode worker failed, decoding ${messages.length} messages on the main thread: ${error instanceof Error ? error.message : String(error)}`);
      return inline();
    });
  }

  /** Decodes a delivered batch, queues its ticket in the partition, its valid events in the lanes and its bad ones to the DLQ. */
  private async take(state: PartitionState, messages: ConsumedMessage[]): Promise<void> {
    const partition = state.partition;
    const nowMs = Date.now();
    const firstOffset = BigInt(messages[0]!.offset);
    if (this.options.coldOverflow !== 'pause' && state.shedFrom === undefined && this.pipeline.full(['cold'])) {
      state.shedFrom = firstOffset;
      this.counters.sheds += 1;
    }
    const shedding = state.shedFrom !== undefined;
    let skipped = 0;
    const good: StockEvent[] = [];
    const dead: DeadLetter[] = [];
    // Reading behind: the messages whose key's lane is cold wait undecoded (see "Undecoded cold").
    const raws: RawEvent[] = [];
    let toDecode = messages;
    // (The lane keeps a raw record's partition in 16 bits.)
    const undecodedLag = this.options.undecodedColdLag ?? undecodedColdLagDefault;
    if (undecodedLag > 0 && !shedding && partition <= 0xffff && state.lag > undecodedLag && this.readingBehind()) {
      toDecode = [];
      for (const message of messages) {
        const sku = rawKeyOf(message);
        if (sku !== undefined && this.pipeline.laneOf(sku, nowMs) === 'cold') {
          raws.push({ key: sku, value: message.value!, time: timestampOf(message, nowMs), partition, offset: message.offset });
        } else toDecode.push(message);
      }
    }
    const decodedAll = toDecode.length > 0 ? await this.decode(toDecode, nowMs) : [];
    toDecode.forEach((message, i) => {
      const decoded = decodedAll[i]!;
      // Shedding: cold events wait in Kafka, malformed ones are dead-lettered when read again, and a
      // SKU with a skipped event has all its later ones skipped (its order holds across a re-tier).
      if (shedding && (!decoded.ok || state.shedSkus.has(decoded.event.sku) || this.pipeline.laneOf(decoded.event.sku, nowMs) === 'cold')) {
        skipped += 1;
        if (decoded.ok) state.shedSkus.add(decoded.event.sku);
      } else if (decoded.ok) good.push(decoded.event);
      else {
        dead.push(this.deadLetter(decoded, message.key ?? null, message.value ?? null, partition, message.offset));
      }
    });
    this.counters.consumed += messages.length;
    this.metrics.consumed.inc(messages.length);
    const ticket = this.batchTicket(state);
    ticket.replay = state.replayBelow === undefined || firstOffset < state.replayBelow;
    state.pending.push({ ticket, firstOffset, nextOffset: BigInt(messages[messages.length - 1]!.offset) + 1n });
    // Never released: the watermark stays before this batch until the rewind drops the ticket.
    if (skipped > 0) ticket.hold(skipped);
    this.counters.shedEvents += skipped;
    if (dead.length > 0) this.deadLetters(dead, ticket);
    this.counters.undecodedCold += raws.length;
    this.metrics.undecodedCold.inc(raws.length);
    this.pipeline.enqueueRaw(raws, ticket);
    this.pipeline.enqueue(good, ticket, nowMs);
    ticket.seal();
  }

  /**
   * A delivered batch's ticket: once settled, its outcomes are counted and the partition's
   * watermark moves. Made here, not in take(): a closure there would share take()'s context, and
   * a ticket waiting on cold events (the whole of an overload) would keep its batch's decoded
   * events alive with it (a heap snapshot showed take()'s context holding them). Measured: the heap
   * grew to 1 GB in 30 s of overload and young collections copied ~7 ms of survivors every 50 ms.
   */
  private batchTicket(state: PartitionState): Ticket {
    return new Ticket((t) => {
      this.counters.applied += t.outcomes.applied;
      this.counters.duplicate += t.outcomes.duplicate;
      this.counters.stale += t.outcomes.stale;
      this.advance(state);
    });
  }

  /** A message that is not a valid event, as the DLQ gets it: the original bytes and why. */
  private deadLetter(rejection: Rejected, key: Buffer | null, value: Buffer | null, partition: number, offset: number): DeadLetter {
    this.counters.rejected[rejection.reason] = (this.counters.rejected[rejection.reason] ?? 0) + 1;
    this.metrics.rejected.inc({ reason: rejection.reason });
    return {
      key,
      value,
      headers: { reason: rejection.reason, detail: rejection.detail, 'source.topic': this.options.topics.stock, 'source.partition': String(partition), 'source.offset': String(offset) },
    };
  }

  /** Sends dead letters under a hold on their batch's ticket, released once the DLQ has them. */
  private deadLetters(dead: DeadLetter[], ticket: Ticket): void {
    ticket.hold();
    this.deadInFlight += dead.length;
    void this.sendDead(dead).then((sent) => {
      this.deadInFlight -= dead.length;
      if (this.deadRoomy) for (const resolve of this.deadRoomWaiters.splice(0)) resolve();
      if (sent) ticket.release();
    });
  }

  /**
   * The pipeline's decodeRaw: messages kept undecoded, decoded (in the worker pool, as a delivered
   * batch is) when their turn in the cold lane comes; the bad ones dead-lettered under their tickets.
   */
  private async decodeRaw(raws: RawEvent[], tickets: Ticket[]): Promise<(StockEvent | undefined)[]> {
    const nowMs = Date.now();
    const decoded = await this.decode(
      raws.map((r) => ({ key: undefined, value: r.value, offset: r.offset, timestamp: r.time })),
      nowMs,
    );
    return decoded.map((d, k) => {
      if (d.ok) return d.event;
      const raw = raws[k]!;
      this.deadLetters([this.deadLetter(d, Buffer.from(raw.key, 'utf8'), raw.value, raw.partition, raw.offset)], tickets[k]!);
      return undefined;
    });
  }

  /** Sends to the DLQ, retrying while the engine runs; false if it gave up (stopping: not committed, redelivered). */
  private async sendDead(messages: DeadLetter[]): Promise<boolean> {
    let delayMs = sendRetryMsMin;
    for (;;) {
      try {
        await this.producer!.send({ topic: this.options.topics.dlq, messages });
        return true;
      } catch (error) {
        if (this.stopping) return false;
        this.options.log?.(`DLQ send of ${messages.length} failed, retrying in ${delayMs} ms: ${error instanceof Error ? error.message : String(error)}`);
        await new Promise((r) => setTimeout(r, delayMs));
        delayMs = Math.min(sendRetryMsMax, delayMs * 2);
      }
    }
  }

  /** Moves the partition's watermark past its settled prefix and schedules the commit. */
  private advance(state: PartitionState): void {
    if (state.revoked) return;
    let offset: bigint | undefined;
    while (state.pending.length > 0 && state.pending[0]!.ticket.settled) offset = state.pending.shift()!.nextOffset;
    if (offset === undefined) return;
    this.commitsDue.set(state.partition, offset);
    void this.flushCommits();
  }

  /** Commits what is due, one commit call at a time (offsets only move forward within a call's order). */
  private flushCommits(): Promise<void> {
    if (this.committing) return this.committing;
    if (this.commitsDue.size === 0) return Promise.resolve();
    this.committing = (async () => {
      try {
        while (this.commitsDue.size > 0) {
          const due = [...this.commitsDue];
          this.commitsDue.clear();
          try {
            await this.consumer!.commit(due.map(([partition, offset]) => ({ partition, offset: Number(offset) })));
            for (const [partition, offset] of due) this.commits.push({ partition, offset });
            if (this.commits.length > 10_000) this.commits.splice(0, 5_000);
          } catch (error) {
            // Not fatal: a later commit covers it, and a crash before then only replays (idempotent).
            this.options.log?.(`commit failed (will be covered by the next one): ${error instanceof Error ? error.message : String(error)}`);
          }
        }
      } finally {
        this.committing = undefined;
      }
    })();
    return this.committing;
  }

  /** The lanes whose bound pauses a partition (cold sheds instead, unless configured to pause). */
  private get pauseLanes(): readonly VelocityTier[] {
    return this.options.coldOverflow === 'pause' ? ['hot', 'warm', 'cold'] : ['hot', 'warm'];
  }

  /** A shedding partition with room again in the cold lane: drop its tickets from shedFrom on and seek back there. */
  private rewindIfDue(state: PartitionState): boolean {
    if (state.shedFrom === undefined || this.stopping || state.revoked || !this.pipeline.laneRoomy('cold', rewindColdFraction)) return false;
    const from = state.shedFrom;
    const dropped = new Set(state.pending.filter((p) => p.firstOffset >= from).map((p) => p.ticket));
    state.pending = state.pending.filter((p) => p.firstOffset < from);
    this.pipeline.discard((t) => dropped.has(t));
    state.shedFrom = undefined;
    state.shedSkus.clear();
    this.counters.rewinds += 1;
    this.consumer!.seek(state.partition, Number(from));
    return true;
  }

  /**
   * After a batch: pause its partition when a lane it feeds is at its bound, when it sheds and has
   * read shedReadAheadMax past its shed offset, or when the DLQ is behind (its sends failing).
   */
  private pauseIfBehind(state: PartitionState, lastOffset: number): void {
    const readAhead = state.shedFrom === undefined ? 0n : BigInt(lastOffset) + 1n - state.shedFrom;
    if (this.pipeline.full(this.pauseLanes) || readAhead >= BigInt(shedReadAheadMax) || this.deadInFlight >= deadInFlightMax) this.pause(state, lastOffset + 1);
  }

  /** Pauses the partition; it continues from nextOffset (the one after the last message taken) on resume. */
  private pause(state: PartitionState, nextOffset: number): void {
    if (state.paused || state.revoked || this.stopping) return;
    state.paused = true;
    this.counters.pauses += 1;
    this.consumer!.pause(state.partition, nextOffset);
    this.updatePaused();
    if (this.resumeScheduled) return;
    this.resumeScheduled = true;
    void this.roomEverywhere().then(() => {
      this.resumeScheduled = false;
      this.resumeAll();
    });
  }

  /**
   * Resolves once the lanes and the DLQ backlog both have room, at the same time: a partition
   * paused for one while a resume waits for the other must not be resumed by that resume early.
   */
  private async roomEverywhere(): Promise<void> {
    do await Promise.all([this.pipeline.room(), this.deadRoom()]);
    while (!this.stopping && !(this.pipeline.roomy() && this.deadRoomy));
  }

  /** The dead-letter events not yet acknowledged are at most half their bound (hysteresis, as the lanes'). */
  private get deadRoomy(): boolean {
    return this.deadInFlight <= deadInFlightMax / 2;
  }

  /** Resolves once deadRoomy. */
  private deadRoom(): Promise<void> {
    if (this.deadRoomy || this.stopping) return Promise.resolve();
    return new Promise((resolve) => this.deadRoomWaiters.push(resolve));
  }

  private resumeAll(): void {
    const paused = [...this.partitions.values()].filter((s) => s.paused && !s.revoked);
    for (const state of paused) state.paused = false;
    this.updatePaused();
    if (paused.length === 0 || this.stopping) return;
    this.counters.resumes += paused.length;
    try {
      this.consumer!.resume(paused.map((s) => s.partition));
    } catch (error) {
      this.options.log?.(`resume failed: ${error instanceof Error ? error.message : String(error)}`);
    }
  }

  private updatePaused(): void {
    this.metrics.pausedPartitions.set([...this.partitions.values()].filter((s) => s.paused).length);
  }

  /** Partitions leaving this engine: hand waiting events back, finish those in flight, commit the watermark. */
  private async handBack(partitions: number[]): Promise<void> {
    const states = partitions.map((p) => this.partitions.get(p)).filter((s): s is PartitionState => s !== undefined);
    if (states.length === 0) return;
    const tickets = new Set(states.flatMap((s) => s.pending.map((p) => p.ticket)));
    const handed = this.pipeline.discard((t) => tickets.has(t));
    this.counters.handedBack += handed;
    if (handed > 0) this.options.log?.(`rebalance: ${handed} waiting events of partitions ${partitions.join(',')} handed back (not committed)`);
    await this.pipeline.inFlightDone(handBackWaitMsMax);
    for (const state of states) this.advance(state);
    await this.flushCommits();
    for (const state of states) {
      state.revoked = true;
      state.paused = false;
      this.partitions.delete(state.partition);
      // Its lag is the next owner's to report: a frozen value here would count twice in sum().
      this.metrics.lag.remove({ partition: String(state.partition) });
    }
    this.updatePaused();
    // Their lag no longer holds cold events back.
    this.pipeline.kick();
  }

  /** Graceful stop: fetch nothing more, apply and commit what was taken, then leave the group. */
  async stop(): Promise<void> {
    this.stopping = true;
    for (const stop of this.timers.splice(0)) stop();
    await settlesWithin(this.pipeline.idle(), handBackWaitMsMax * 3);
    await this.flushCommits();
    await this.pipeline.stop();
    await this.consumer?.disconnect();
    await this.reservationsConsumer?.disconnect();
    await this.producer?.disconnect();
    await this.changes?.disconnect();
    await this.decoder?.destroy();
    this.options.log?.(`engine stopped: ${JSON.stringify(this.counters)}`);
  }
}

type Rejected = Extract<Decoded, { ok: false }>;

interface DeadLetter {
  key: Buffer | null;
  value: Buffer | null;
  headers: Record<string, string>;
}

/**
 * The SKU a message may wait under undecoded: its key, if it has one of a SKU's size and a value
 * no larger than an event's. Others (no key, an outsized key or value) are decoded at once, and a
 * bad one is dead-lettered then.
 */
function rawKeyOf(message: ConsumedMessage): string | undefined {
  const { key, value } = message;
  if (!key || key.length === 0 || key.length > rawKeyBytesMax || !value || value.length > eventBytesMax) return undefined;
  return key.toString('utf8');
}

/** The time a message's asOf is judged against: its Kafka timestamp, or nowMs without one. */
function timestampOf(message: ConsumedMessage, nowMs: number): number {
  const t = message.timestamp;
  return t !== undefined && Number.isFinite(t) && t > 0 ? t : nowMs;
}

interface KnownLocations {
  ids: readonly string[];
  set: ReadonlySet<string>;
}

// Per network object: a reload builds a new one, so the list follows it.
const networkLocationCache = new WeakMap<Network, KnownLocations>();
function networkLocations(network: Network): KnownLocations {
  let known = networkLocationCache.get(network);
  if (!known) {
    const ids = network.locations.map((l) => l.id);
    networkLocationCache.set(network, (known = { ids, set: new Set(ids) }));
  }
  return known;
}
