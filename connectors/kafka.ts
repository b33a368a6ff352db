// Kafka clients of Instock, all from @confluentinc/kafka-javascript (librdkafka underneath), built
// in one place so every process uses the same client settings.

import kafkaJavascript from '@confluentinc/kafka-javascript';
import type { KafkaJS as KafkaJSTypes } from '@confluentinc/kafka-javascript';

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

/** Outstanding messages of one send(); settles once every one has its delivery report. */
interface Tally {
  remaining: number;
  error: Error | undefined;
  resolve(): void;
  reject(error: Error): void;
}

/** How long send() waits before producing again when the client's queue is full. */
const queueFullWaitMs = 5;

/**
 * A producer for many small messages (the change feed): the client's native produce() per
 * message and one delivery tally per send(), where the KafkaJS-style send() makes a promise and a
 * delivery callback per message (twice the main-thread time per message, measured). Idempotent,
 * acks=all, keys partitioned like the Java client (murmur2), as the KafkaJS-style producer does.
 */
export class BatchProducer {
  private constructor(private readonly producer: InstanceType<typeof kafkaJavascript.Producer>) {}

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
    } as never);
    producer.on('delivery-report', (error, report) => {
      const tally = report.opaque as Tally | undefined;
      if (!tally) return;
      if (error) tally.error ??= new Error(`Kafka delivery: ${error.message}`);
      if (--tally.remaining === 0) {
        if (tally.error) tally.reject(tally.error);
        else tally.resolve();
      }
    });
    await new Promise<void>((resolve, reject) => producer.connect({}, (error) => (error ? reject(new Error(`Kafka producer: ${error.message}`)) : resolve())));
    // Delivery reports are polled on librdkafka's thread, not by a timer on the event loop.
    producer.setPollInBackground(true);
    return new BatchProducer(producer);
  }

  /** Resolves once every message is acknowledged by the brokers; rejects with the first delivery error. */
  send(topic: string, messages: readonly BatchMessage[]): Promise<void> {
    if (messages.length === 0) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      const tally: Tally = { remaining: messages.length, error: undefined, resolve, reject };
      const produceFrom = (start: number): void => {
        for (let i = start; i < messages.length; i++) {
          const message = messages[i]!;
          try {
            this.producer.produce(topic, null, message.value, message.key, null, tally);
          } catch (error) {
            // A full local queue empties as deliveries complete: produce the rest a little later.
            if ((error as { code?: number }).code === kafkaJavascript.CODES.ERRORS.ERR__QUEUE_FULL) {
              setTimeout(() => produceFrom(i), queueFullWaitMs);
              return;
            }
            // Not produced: counted as failed now (their delivery reports never come).
            tally.error ??= error instanceof Error ? error : new Error(String(error));
            tally.remaining -= messages.length - i;
            if (tally.remaining === 0) reject(tally.error);
            return;
          }
        }
      };
      produceFrom(0);
    });
  }

  /** Delivers what is queued (up to timeoutMs), then disconnects. */
  async disconnect(timeoutMs = 5_000): Promise<void> {
    await new Promise<void>((resolve) => this.producer.flush(timeoutMs, () => resolve()));
    await new Promise<void>((resolve) => this.producer.disconnect(() => resolve()));
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
