import { randomUUID } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import { ensureTopics, instockTopics, kafkaClient, type Consumer } from '../../connectors/kafka.js';
import { config, kafkaBrokers, requireService } from '../support/services.js';

const available = await requireService('kafka');

describe.skipIf(!available)('Kafka smoke (real broker from `services up`)', () => {
  const kafka = kafkaClient(kafkaBrokers, 'instock-smoke');
  const consumers: Consumer[] = [];
  afterAll(async () => {
    await Promise.all(consumers.map((c) => c.disconnect().catch(() => undefined)));
  });

  it('has the three Instock topics with the configured partition count', async () => {
    const admin = kafka.admin();
    await admin.connect();
    try {
      await ensureTopics(admin, instockTopics(config));
      const metadata = await admin.fetchTopicMetadata({ topics: [config.kafkaTopicStock, config.kafkaTopicChanges, config.kafkaTopicDlq] });
      expect(metadata.map((t) => t.name).sort()).toEqual([config.kafkaTopicChanges, config.kafkaTopicDlq, config.kafkaTopicStock].sort());
      for (const topic of metadata) expect(topic.partitions).toHaveLength(config.kafkaPartitions);
    } finally {
      await admin.disconnect();
    }
  });

  it('delivers every produced message, in key order, to a consumer group', async () => {
    const topic = `instock.smoke.${randomUUID()}`;
    const admin = kafka.admin();
    await admin.connect();
    await ensureTopics(admin, [{ topic, partitions: 3, replication: 1 }]);
    await admin.disconnect();

    const sent = Array.from({ length: 300 }, (_, i) => ({ key: `sku-${i % 7}`, value: JSON.stringify({ i }) }));
    const producer = kafka.producer({ 'linger.ms': 5 } as never);
    await producer.connect();
    await producer.send({ topic, messages: sent });
    await producer.disconnect();

    const consumer = kafka.consumer({ kafkaJS: { groupId: `smoke-${randomUUID()}`, fromBeginning: true } });
    consumers.push(consumer);
    await consumer.connect();
    await consumer.subscribe({ topics: [topic] });
    const received: { key: string; i: number }[] = [];
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`received ${received.length}/${sent.length} within 30 s`)), 30_000);
      void consumer.run({
        eachMessage: async ({ message }) => {
          received.push({ key: message.key!.toString(), i: (JSON.parse(message.value!.toString()) as { i: number }).i });
          if (received.length === sent.length) {
            clearTimeout(timer);
            resolve();
          }
        },
      });
    });
    expect(received).toHaveLength(sent.length);
    expect(new Set(received.map((r) => r.i)).size).toBe(sent.length);
    // Same key, same partition: each key's messages arrive in the order they were sent.
    for (let k = 0; k < 7; k++) {
      const order = received.filter((r) => r.key === `sku-${k}`).map((r) => r.i);
      expect(order).toEqual([...order].sort((a, b) => a - b));
    }
  });
});
