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
}

export function kafkaClient(brokers: string[], clientId = 'instock'): KafkaClient {
  if (brokers.length === 0) throw new Error('kafkaClient: no brokers configured (set KAFKA_BROKERS)');
  return new Kafka({ kafkaJS: { brokers, clientId, logLevel: logLevel.WARN } });
}

/** Creates the topics that do not exist yet; existing topics are left as they are. */
export async function ensureTopics(admin: Admin, topics: TopicSpec[]): Promise<string[]> {
  const existing = new Set(await admin.listTopics({ timeout: 10_000 }));
  const missing = topics.filter((t) => !existing.has(t.topic));
  if (missing.length > 0) {
    await admin.createTopics({
      timeout: 30_000,
      topics: missing.map((t) => ({ topic: t.topic, numPartitions: t.partitions, replicationFactor: t.replication })),
    });
  }
  return missing.map((t) => t.topic);
}

/** The three topics of Instock, from configuration. */
export function instockTopics(config: { kafkaTopicStock: string; kafkaTopicChanges: string; kafkaTopicDlq: string; kafkaTopicReservations: string; kafkaPartitions: number; kafkaReplication: number }): TopicSpec[] {
  return [config.kafkaTopicStock, config.kafkaTopicChanges, config.kafkaTopicDlq, config.kafkaTopicReservations].map((topic) => ({
    topic,
    partitions: config.kafkaPartitions,
    replication: config.kafkaReplication,
  }));
}
