// Kafka clients of Instock, all from @confluentinc/kafka-javascript (librdkafka underneath), built
// in one place so every process uses the same client settings.

import kafkaJavascript from '@confluentinc/kafka-javascript';
import type { KafkaJS as KafkaJSTypes } from '@confluentinc/kafka-javascript';
import { settlesWithin } from '../engine/wait.js';

const { Kafka, logLevel } = kafkaJavascript.KafkaJS;

export type KafkaClient = KafkaJSTypes.Kafka;
export type Admin = KafkaJSTypes.Admin;
export type Producer = KafkaJSTypes.Producer;
export type Consumer = KafkaJSTypes.Consumer;

export interface TopicSpec {
  topic: string;
  partitions: number;
  replication: number;
  /** Topic settings at creation (e.g. message.timestamp.type). */
  config?: Record<string, string>;
}

/** Each client's brokers and id, for the native clients built beside it (BatchProducer). */
const clientSettings = new WeakMap<KafkaClient, { brokers: string[]; clientId: string }>();

/** LOG_LEVEL → the client's own log level (its info lines are per-connection chatter: shown from debug). */
const clientLogLevels = { debug: logLevel.DEBUG, info: logLevel.WARN, warn: logLevel.WARN, error: logLevel.ERROR } as const;

export function kafkaClient(brokers: string[], clientId = 'instock', level: keyof typeof clientLogLevels = 'info'): KafkaClient {
  if (brokers.length === 0) throw new Error('kafkaClient: no brokers configured (set KAFKA_BROKERS)');
  const client = new Kafka({ kafkaJS: { brokers, clientId, logLevel: clientLogLevels[level] } });
  clientSettings.set(client, { brokers, clientId });
  return client;
}

/** A message of a batch: the key (e.g. a SKU) decides the partition, as with a Java client. */
export interface BatchMessage {
  key: string;
  value: Buffer;
}

/** One send() waiting for its round (BatchProducer). */
interface Send {
  topic: string;
  messages: readonly BatchMessage[];
  resolve(): void;
  reject(error: Error): void;
}

/** How long one flush waits before the round flushes again (a broker down keeps a round open, as a delivery report would). */
const flushWaitMs = 1_000;

/**
 * A producer for many small messages (the change feed): the client's native produce() per
 * message, idempotent, acks=all, keys partitioned like the Java client (murmur2), as the
 * KafkaJS-style producer does (whose send() makes a promise and a delivery callback per message:
 * twice the main-thread time per message, measured).
 *
 * Sends go out in rounds: a round produces every send queued since the last one, then flushes
 * (librdkafka's flush returns once no message of the producer is left undelivered, and sends what
 * lingers at once), and settles its sends; sends made meanwhile wait for the next round. The
 * client reports failed deliveries only (delivery.report.only.error): a report per message, its
 * object and its callback, cost the engine ~4 µs of CPU per change (`.instock/prof/sus.mjs`:
 * 20.5-21.6 against 15.4-16.8 µs per event applied, 52,000-55,000 against 61,300-63,700 events/s).
 *
 * A failure rejects every send of its round (the caller sends them again; the feed is at least
 * once). It is never missed: the client counts a failed message as undelivered until its report's
 * native callback has returned, and that callback wakes the event loop before the flush's
 * completion does; the round settles one turn of the loop (setImmediate) after the flush, once
 * every report woken before it has run.
 */
export class BatchProducer {
  private readonly queued: Send[] = [];
  private round: Promise<void> | undefined;
  /** Failed deliveries reported since connect, and the latest one's error. */
  private failures = 0;
  private lastFailure: Error | undefined;

  private constructor(private readonly producer: InstanceType<typeof kafkaJavascript.Producer>) {
    producer.on('delivery-report', (error) => {
      if (!error) return;
      this.failures += 1;
      this.lastFailure = new Error(`Kafka delivery: ${error.message}`);
    });
  }

  static async connect(kafka: KafkaClient, settings: { lingerMs?: number } = {}): Promise<BatchProducer> {
    const client = clientSettings.get(kafka);
    if (!client) throw new Error('BatchProducer: the Kafka client was not made by kafkaClient()');
    const producer = new kafkaJavascript.Producer({
      'bootstrap.servers': client.brokers.join(','),
      'client.id': client.clientId,
      'enable.idempotence': true,
      acks: -1,
      'linger.ms': settings.lingerMs ?? 5,
      partitioner: 'murmur2_random',
      dr_cb: true,
      'delivery.report.only.error': true,
    } as never);
    const self = new BatchProducer(producer);
    await new Promise<void>((resolve, reject) => producer.connect({}, (error) => (error ? reject(new Error(`Kafka producer: ${error.message}`)) : resolve())));
    // Failure reports are polled on librdkafka's thread, not by a timer on the event loop.
    producer.setPollInBackground(true);
    return self;
  }

  /** Resolves once every message is acknowledged by the brokers; rejects if one failed (then others may have been delivered). */
  send(topic: string, messages: readonly BatchMessage[]): Promise<void> {
    if (messages.length === 0) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      this.queued.push({ topic, messages, resolve, reject });
      this.nextRound();
    });
  }

  private nextRound(): void {
    if (this.round || this.queued.length === 0) return;
    const sends = this.queued.splice(0);
    this.round = this.runRound(sends).finally(() => {
      this.round = undefined;
      this.nextRound();
    });
  }

  private async runRound(sends: Send[]): Promise<void> {
    const failuresBefore = this.failures;
    let error: Error | undefined;
    try {
      for (const send of sends) {
        // A full local queue empties as deliveries complete: flush, then produce the rest.
        for (const message of send.messages) while (!this.produced(send.topic, message)) await this.flushed();
      }
      await this.flushed();
      // Failure reports woken before the flush's completion run before this (see the class comment).
      await new Promise((resolve) => setImmediate(resolve));
      if (this.failures > failuresBefore) error = this.lastFailure;
    } catch (thrown) {
      error = thrown instanceof Error ? thrown : new Error(String(thrown));
    }
    for (const send of sends) {
      if (error) send.reject(error);
      else send.resolve();
    }
  }

  /** Produces one message; false if the client's local queue is full (nothing produced then). */
  private produced(topic: string, message: BatchMessage): boolean {
    try {
      this.producer.produce(topic, null, message.value, message.key);
      return true;
    } catch (error) {
      if ((error as { code?: number }).code === kafkaJavascript.CODES.ERRORS.ERR__QUEUE_FULL) return false;
      throw error;
    }
  }

  /** Resolves once nothing produced is left undelivered (delivered or failed), however long that takes. */
  private async flushed(): Promise<void> {
    for (;;) {
      const error = await new Promise<{ code?: number; message: string } | null>((resolve) => this.producer.flush(flushWaitMs, (e) => resolve(e ?? null)));
      if (!error) return;
      if (error.code !== kafkaJavascript.CODES.ERRORS.ERR__TIMED_OUT) throw new Error(`Kafka flush: ${error.message}`);
    }
  }

  /** Delivers what is queued (up to timeoutMs), then disconnects. */
  async disconnect(timeoutMs = 5_000): Promise<void> {
    if (this.round) await settlesWithin(this.round, timeoutMs);
    await new Promise<void>((resolve) => this.producer.flush(timeoutMs, () => resolve()));
    await new Promise<void>((resolve) => this.producer.disconnect(() => resolve()));
  }
}

/** A message as the native consumer hands it over. */
export interface ConsumedMessage {
  key: Buffer | null | undefined;
  value: Buffer | null | undefined;
  offset: number;
  /** Milliseconds (the broker's with LogAppendTime topics); undefined if the message has none. */
  timestamp: number | undefined;
}

export interface NativeConsumerOptions {
  groupId: string;
  topic: string;
  sessionTimeoutMs: number;
  /** Messages per consume() call at most (all partitions together). */
  maxMessages: number;
  /**
   * One partition's messages of a consume() call, in offset order, with the number of messages
   * left in Kafka after them and the partition's end (from the client's cached high watermark;
   * undefined when it has none yet: lag is then 0). The partitions of one call run at once; the
   * next call waits for all of them.
   */
  onBatch(partition: number, messages: ConsumedMessage[], lag: number, highOffset: number | undefined): Promise<void>;
  /** Partitions leaving this consumer: awaited before the consumer lets them go (no call runs meanwhile). */
  onRevoke(partitions: number[]): Promise<void>;
  log(message: string): void;
}

/** How long a consume() call waits for a first message before returning none. */
const consumeWaitMs = 100;

/**
 * How long librdkafka waits before fetching again once its prefetch queue was over its bound
 * (`fetch.queue.backoff.ms`). Its default, 1 s, left a consumer that had emptied the queue idle for
 * ~0.7 s every ~130,000 messages when reading a backlog: 600,000 events took 4.9 s instead of 2.1 s.
 */
export const fetchQueueBackoffMs = 10;

type TopicPartitionOffset = { topic: string; partition: number; offset?: number };

/** Methods of the native consumer that its type definitions leave out (lib/kafka-consumer.js has them). */
interface KafkaConsumerExtras {
  setDefaultIsTimeoutOnlyForFirstMessage(value: boolean): void;
  rebalanceProtocol(): string;
  incrementalAssign(assignment: TopicPartitionOffset[]): void;
  incrementalUnassign(assignment: TopicPartitionOffset[]): void;
  commitCb(offsets: TopicPartitionOffset[], cb: (error: Error | null) => void): void;
}

/**
 * A group consumer on the client's native consume(n) API, for the stream engine's hot path: it
 * costs about half the main-thread time per message of the kafkajs-compatible consumer (5.4 against
 * ~10 µs, measured on 400,000 messages), which keeps per-message objects, a prefetch cache and
 * per-batch payloads of its own. One loop: consume up to maxMessages, hand each partition's
 * messages to onBatch, wait, again. Control calls (pause, resume, seek, commit) act between two
 * consume calls or are fenced by librdkafka itself: a pause or a seek discards what the client had
 * fetched for the partition past the application's position, so no message is skipped or handed
 * over twice.
 *
 * Rebalances: the client's rebalance callback (eager or cooperative) assigns at once; on revoke
 * the loop stops calling consume, drops any message of a revoked partition from a call already in
 * flight, awaits onRevoke and only then unassigns, so the next owner starts from what was committed.
 */
export class NativeConsumer {
  private loop: Promise<void> | undefined;
  private stopping = false;
  private rebalancing: Promise<void> | undefined;
  private readonly revoking = new Set<number>();
  private readonly pending = new Set<Promise<void>>();
  /** Consume calls started. */
  private calls = 0;
  /**
   * Seeks whose first message has not come yet. A consume call in flight when the seek was made
   * can return the partition's messages from before the seek (dropped) and from after it (from the
   * target offset on). A call started once the seek had completed returns only messages from after
   * it (librdkafka discards the older ones), so its first message is taken even when the target
   * offset no longer exists (retention).
   */
  private readonly seeks = new Map<number, { offset: number; settledAtCall: number | undefined }>();

  private readonly extras: KafkaConsumerExtras;

  private constructor(
    private readonly consumer: InstanceType<typeof kafkaJavascript.KafkaConsumer>,
    private readonly options: NativeConsumerOptions,
  ) {
    this.extras = consumer as unknown as KafkaConsumerExtras;
  }

  static async connect(kafka: KafkaClient, options: NativeConsumerOptions): Promise<NativeConsumer> {
    const client = clientSettings.get(kafka);
    if (!client) throw new Error('NativeConsumer: the Kafka client was not made by kafkaClient()');
    // The rebalance callback is given to the client before the NativeConsumer exists.
    const ref: { self?: NativeConsumer } = {};
    const consumer = new kafkaJavascript.KafkaConsumer(
      {
        'bootstrap.servers': client.brokers.join(','),
        'client.id': client.clientId,
        'group.id': options.groupId,
        'enable.auto.commit': false,
        'session.timeout.ms': options.sessionTimeoutMs,
        // A fetch response's partitions reach the consume queue one after the other, each up to this
        // size: 64 KiB (about 900 events) instead of 1 MiB keeps partitions interleaved in every
        // consume call, so no partition's hot events wait behind another's run of thousands.
        'max.partition.fetch.bytes': 65_536,
        'fetch.queue.backoff.ms': fetchQueueBackoffMs,
        rebalance_cb: (error: { code: number; message: string } | undefined, assignment: { topic: string; partition: number }[]) => ref.self?.rebalance(error, assignment),
      } as never,
      { 'auto.offset.reset': 'earliest' } as never,
    );
    const self = new NativeConsumer(consumer, options);
    ref.self = self;
    consumer.on('event.error', (error) => options.log(`Kafka consumer: ${error.message}`));
    await new Promise<void>((resolve, reject) => consumer.connect({}, (error) => (error ? reject(new Error(`Kafka consumer: ${error.message}`)) : resolve())));
    consumer.setDefaultConsumeTimeout(consumeWaitMs);
    // Return what is there once a first message came, rather than wait to fill the call.
    self.extras.setDefaultIsTimeoutOnlyForFirstMessage(true);
    consumer.subscribe([options.topic]);
    return self;
  }

  /** Starts the consume loop (joining the group happens in it). */
  start(): void {
    this.loop ??= this.run();
  }

  private async run(): Promise<void> {
    const { topic, maxMessages } = this.options;
    while (!this.stopping) {
      if (this.rebalancing) {
        await this.rebalancing;
        continue;
      }
      if (this.pending.size > 0) await Promise.all(this.pending);
      const call = ++this.calls;
      const messages = await new Promise<kafkaJavascript.Message[]>((resolve) =>
        this.consumer.consume(maxMessages, (error, consumed) => {
          if (error && !this.stopping) this.options.log(`Kafka consume: ${error.message}`);
          resolve(error ? [] : consumed);
        }),
      );
      if (messages.length === 0 || this.stopping) continue;
      const byPartition = new Map<number, ConsumedMessage[]>();
      for (const m of messages) {
        if (m.topic !== topic || this.revoking.has(m.partition)) continue;
        const seek = this.seeks.get(m.partition);
        if (seek) {
          // Fetched before a seek (or a pause) of its partition: that position no longer holds.
          if (m.offset !== seek.offset && !(seek.settledAtCall !== undefined && call > seek.settledAtCall)) continue;
          this.seeks.delete(m.partition);
        }
        let list = byPartition.get(m.partition);
        if (!list) byPartition.set(m.partition, (list = []));
        list.push({ key: m.key as Buffer | null | undefined, value: m.value, offset: m.offset, timestamp: m.timestamp });
      }
      await Promise.all(
        [...byPartition].map(([partition, list]) => {
          let lag = 0;
          let highOffset: number | undefined;
          try {
            highOffset = this.consumer.getWatermarkOffsets(topic, partition).highOffset;
            lag = Math.max(0, highOffset - 1 - list[list.length - 1]!.offset);
          } catch {
            // No high watermark cached yet: reported as caught up.
          }
          return this.options.onBatch(partition, list, lag, highOffset).catch((error: unknown) => this.options.log(`batch of partition ${partition} failed: ${error instanceof Error ? error.message : String(error)}`));
        }),
      );
    }
  }

  private rebalance(error: { code: number; message: string } | undefined, assignment: { topic: string; partition: number }[]): void {
    const cooperative = this.extras.rebalanceProtocol() === 'COOPERATIVE';
    const { ERR__ASSIGN_PARTITIONS, ERR__REVOKE_PARTITIONS } = kafkaJavascript.CODES.ERRORS;
    const unassign = () => {
      if (cooperative) this.extras.incrementalUnassign(assignment);
      else this.consumer.unassign();
    };
    try {
      if (error?.code === ERR__ASSIGN_PARTITIONS) {
        if (cooperative) this.extras.incrementalAssign(assignment);
        else this.consumer.assign(assignment);
        return;
      }
      if (error?.code !== ERR__REVOKE_PARTITIONS) {
        this.options.log(`Kafka rebalance error: ${error?.message ?? 'no error code'}`);
        return;
      }
      // Leaving the group (disconnect): the owner already handed everything back and committed.
      if (this.stopping) {
        unassign();
        return;
      }
    } catch (e) {
      this.options.log(`Kafka assign: ${e instanceof Error ? e.message : String(e)}`);
      return;
    }
    const partitions = assignment.filter((tp) => tp.topic === this.options.topic).map((tp) => tp.partition);
    for (const partition of partitions) this.revoking.add(partition);
    const previous = this.rebalancing ?? Promise.resolve();
    this.rebalancing = (async () => {
      await previous;
      try {
        await this.options.onRevoke(partitions);
      } catch (e) {
        this.options.log(`handing back partitions ${partitions.join(',')} failed: ${e instanceof Error ? e.message : String(e)}`);
      }
      try {
        unassign();
      } catch (e) {
        this.options.log(`Kafka unassign: ${e instanceof Error ? e.message : String(e)}`);
      }
      for (const partition of partitions) {
        this.revoking.delete(partition);
        this.seeks.delete(partition);
      }
    })().finally(() => {
      if (this.rebalancing === current) this.rebalancing = undefined;
    });
    const current = this.rebalancing;
  }

  /**
   * Stops fetching the partition; on resume it continues from nextOffset (the offset after the last
   * message taken): the seek drops what the client had already fetched past it, in its queues or in
   * a consume call in flight.
   */
  pause(partition: number, nextOffset: number): void {
    this.consumer.pause([{ topic: this.options.topic, partition }]);
    this.seek(partition, nextOffset);
  }

  resume(partitions: number[]): void {
    this.consumer.resume(partitions.map((partition) => ({ topic: this.options.topic, partition })));
  }

  /** Seeks before the next consume() call (which waits for it); a call in flight drops the partition's messages from before the seek. */
  seek(partition: number, offset: number): void {
    const seek = { offset, settledAtCall: undefined as number | undefined };
    this.seeks.set(partition, seek);
    const done: Promise<void> = new Promise<void>((resolve) => {
      this.consumer.seek({ topic: this.options.topic, partition, offset }, 5_000, (error) => {
        if (error) this.options.log(`Kafka seek of partition ${partition} to ${offset}: ${error.message}`);
        seek.settledAtCall = this.calls;
        resolve();
      });
    }).finally(() => this.pending.delete(done));
    this.pending.add(done);
  }

  /** Commits the next offset to read per partition; resolves once the coordinator answered. */
  commit(offsets: { partition: number; offset: number }[]): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.extras.commitCb(
        offsets.map(({ partition, offset }) => ({ topic: this.options.topic, partition, offset })),
        (error) => (error ? reject(new Error(`Kafka commit: ${error.message}`)) : resolve()),
      );
    });
  }

  /** Stops the loop (a call in flight ends within consumeWaitMs), then leaves the group. */
  async disconnect(): Promise<void> {
    this.stopping = true;
    await this.loop;
    await this.rebalancing;
    await new Promise<void>((resolve) => this.consumer.disconnect(() => resolve()));
  }
}

/** Creates the topics that do not exist yet; existing topics are left as they are. */
export async function ensureTopics(admin: Admin, topics: TopicSpec[]): Promise<string[]> {
  const existing = new Set(await admin.listTopics({ timeout: 10_000 }));
  const missing = topics.filter((t) => !existing.has(t.topic));
  if (missing.length > 0) {
    try {
      await admin.createTopics({
        timeout: 30_000,
        topics: missing.map((t) => ({ topic: t.topic, numPartitions: t.partitions, replicationFactor: t.replication, configEntries: Object.entries(t.config ?? {}).map(([name, value]) => ({ name, value })) })),
      });
    } catch (error) {
      // The client's aggregate error says only "Topic creation errors": name each topic's.
      const each = (error as { errors?: { topic?: string; type?: string; message?: string }[] }).errors;
      if (!each?.length) throw error;
      throw new Error(`creating topics: ${each.map((e) => `${e.topic ?? '?'}: ${e.type ?? ''} ${e.message ?? ''}`.trim()).join('; ')}`);
    }
  }
  return missing.map((t) => t.topic);
}

/** The three topics of Instock, from configuration. */
export function instockTopics(config: { kafkaTopicStock: string; kafkaTopicChanges: string; kafkaTopicDlq: string; kafkaTopicReservations: string; kafkaPartitions: number; kafkaReplication: number }): TopicSpec[] {
  return [config.kafkaTopicStock, config.kafkaTopicChanges, config.kafkaTopicDlq, config.kafkaTopicReservations].map((topic) => ({
    topic,
    partitions: config.kafkaPartitions,
    replication: config.kafkaReplication,
    // Stock events carry the broker's append time: the engine judges an asOf too far ahead against
    // it (codec validation), which a source whose clock runs ahead cannot forge, and which is the
    // same when an event is read again after a crash.
    ...(topic === config.kafkaTopicStock ? { config: { 'message.timestamp.type': 'LogAppendTime' } } : {}),
  }));
}
