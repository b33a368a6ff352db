import { randomUUID } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import { BatchProducer, ensureTopics, instockTopics, kafkaClient, type Consumer } from '../../connectors/kafka.js';
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

  it('names each topic it could not create and why (the client says only "Topic creation errors")', async () => {
    const topic = `instock.smoke.too-many-replicas.${randomUUID()}`;
    const admin = kafka.admin();
    await admin.connect();
    try {
      await expect(ensureTopics(admin, [{ topic, partitions: 1, replication: 5 }])).rejects.toThrow(new RegExp(`creating topics: ${topic.replace(/\./g, '\\.')}: .*replication`, 'i'));
    } finally {
      await admin.disconnect();
    }
  });

  it("creates the stock topic stamping events with the broker's append time (what the asOf bound is judged against)", async () => {
    const stock = `instock.smoke.stock.${randomUUID()}`;
    const topics = instockTopics({ ...config, kafkaTopicStock: stock, kafkaPartitions: 1, kafkaReplication: 1 }).filter((t) => t.topic === stock);
    const admin = kafka.admin();
    await admin.connect();
    try {
      await ensureTopics(admin, topics);
      const producer = kafka.producer();
      await producer.connect();
      // A producer whose clock is wrong: its timestamp is replaced by the broker's.
      await producer.send({ topic: stock, messages: [{ key: 'k', value: 'v', timestamp: '1000' }] });
      await producer.disconnect();
      const consumer = kafka.consumer({ kafkaJS: { groupId: `smoke-ts-${randomUUID()}`, fromBeginning: true } });
      consumers.push(consumer);
      await consumer.connect();
      await consumer.subscribe({ topics: [stock] });
      const timestamp = await new Promise<number>((resolve) => void consumer.run({ eachMessage: async ({ message }) => resolve(Number(message.timestamp)) }));
      expect(Math.abs(timestamp - Date.now())).toBeLessThan(60_000);
    } finally {
      await admin.deleteTopics({ topics: [stock] }).catch(() => undefined);
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

  it('BatchProducer delivers every message of a send before it resolves, on the partition the KafkaJS producer picks for the key', async () => {
    const topic = `instock.smoke.batch.${randomUUID()}`;
    const admin = kafka.admin();
    await admin.connect();
    await ensureTopics(admin, [{ topic, partitions: 6, replication: 1 }]);
    await admin.disconnect();

    // The same 50 keys through both producers: a change feed's key must land where a Java or
    // KafkaJS client would put it (murmur2), or per-SKU order across producers breaks.
    const keys = Array.from({ length: 50 }, (_, i) => `B-${String(i * 7919).padStart(6, '0')}`);
    const compat = kafka.producer({ 'linger.ms': 5 } as never);
    await compat.connect();
    await compat.send({ topic, messages: keys.map((key) => ({ key, value: 'compat' })) });
    await compat.disconnect();
    const batch = await BatchProducer.connect(kafka);
    const sent = Array.from({ length: 5_000 }, (_, i) => ({ key: keys[i % keys.length]!, value: Buffer.from(String(i)) }));
    await batch.send(topic, sent.slice(0, 2_000));
    // Sends made while a round is out wait for the next one, and each resolves only once its own messages are in.
    await Promise.all([batch.send(topic, sent.slice(2_000, 3_500)), batch.send(topic, sent.slice(3_500))]);
    await batch.disconnect();

    // Resolved means acknowledged: the topic's end offsets already count every message.
    const admin2 = kafka.admin();
    await admin2.connect();
    const offsets = await admin2.fetchTopicOffsets(topic);
    await admin2.disconnect();
    expect(offsets.reduce((n, o) => n + Number(o.high), 0)).toBe(keys.length + sent.length);

    const consumer = kafka.consumer({ kafkaJS: { groupId: `smoke-${randomUUID()}`, fromBeginning: true } });
    consumers.push(consumer);
    await consumer.connect();
    await consumer.subscribe({ topics: [topic] });
    const partitionOf = new Map<string, Set<number>>();
    const order = new Map<string, number[]>();
    let received = 0;
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`received ${received}/${keys.length + sent.length} within 30 s`)), 30_000);
      void consumer.run({
        eachMessage: async ({ partition, message }) => {
          const key = message.key!.toString();
          const partitions = partitionOf.get(key) ?? new Set();
          partitionOf.set(key, partitions.add(partition));
          const value = message.value!.toString();
          if (value !== 'compat') order.set(key, [...(order.get(key) ?? []), Number(value)]);
          if (++received === keys.length + sent.length) {
            clearTimeout(timer);
            resolve();
          }
        },
      });
    });
    for (const key of keys) {
      expect(partitionOf.get(key)?.size, `key ${key} on one partition`).toBe(1);
      const seq = order.get(key)!;
      expect(seq).toHaveLength(sent.length / keys.length);
      expect(seq).toEqual([...seq].sort((a, b) => a - b));
    }
    expect(new Set([...partitionOf.values()].map((p) => [...p][0])).size).toBeGreaterThan(1);
  });

  it('BatchProducer rejects a send whose message the broker refused, and later sends still resolve', async () => {
    // The broker takes at most 1,000 bytes per message on this topic; the client would send 1 MB.
    const topic = `instock.smoke.refused.${randomUUID()}`;
    const admin = kafka.admin();
    await admin.connect();
    await ensureTopics(admin, [{ topic, partitions: 1, replication: 1, config: { 'max.message.bytes': '1000' } }]);
    const batch = await BatchProducer.connect(kafka);
    try {
      const small = (i: number) => ({ key: 'B-000001', value: Buffer.from(`small-${i}`) });
      await expect(batch.send(topic, [small(1), { key: 'B-000001', value: Buffer.alloc(5_000, 1) }])).rejects.toThrow(/Kafka delivery: .*(large|size)/i);
      await batch.send(topic, [small(2), small(3)]);
      const offsets = await admin.fetchTopicOffsets(topic);
      // The refused message is not in the topic; the later send's two are.
      expect(Number(offsets[0]!.high)).toBeGreaterThanOrEqual(2);
      expect(Number(offsets[0]!.high)).toBeLessThanOrEqual(3);
    } finally {
      await batch.disconnect();
      await admin.disconnect();
    }
  });
  it('BatchProducer never resolves a send with a refused message, over many rounds sent at random moments', async () => {
    // The race the class comment argues: a failure report must reach its round before the round
    // settles. 240 sends, a quarter carrying one message the broker refuses, fired at random moments
    // so that rounds mix good and refused messages in every proportion.
    const topic = `instock.smoke.rounds.${randomUUID()}`;
    const admin = kafka.admin();
    await admin.connect();
    await ensureTopics(admin, [{ topic, partitions: 3, replication: 1, config: { 'max.message.bytes': '1000' } }]);
    const batch = await BatchProducer.connect(kafka, { lingerMs: 1 });
    let seed = 12345;
    const random = () => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32);
    const sends: { refused: boolean; values: string[]; outcome: Promise<'resolved' | 'rejected'> }[] = [];
    try {
      for (let s = 0; s < 240; s++) {
        const refused = random() < 0.25;
        const values = Array.from({ length: 1 + Math.floor(random() * 20) }, (_, i) => `s${s}-${i}`);
        const messages = values.map((value, i) => ({ key: `B-${String((s * 31 + i) % 97).padStart(6, '0')}`, value: Buffer.from(value) }));
        if (refused) messages.splice(Math.floor(random() * messages.length), 0, { key: 'B-000001', value: Buffer.alloc(5_000, 1) });
        const outcome = batch.send(topic, messages).then(
          () => 'resolved' as const,
          () => 'rejected' as const,
        );
        sends.push({ refused, values, outcome });
        const pause = random();
        if (pause < 0.3) await new Promise((r) => setImmediate(r));
        else if (pause < 0.6) await new Promise((r) => setTimeout(r, Math.floor(random() * 4)));
      }
      const outcomes = await Promise.all(sends.map((s) => s.outcome));
      const refused = sends.filter((s) => s.refused);
      expect(refused.length).toBeGreaterThan(30);
      for (const [k, send] of sends.entries()) if (send.refused) expect(outcomes[k], `send ${k} carried a refused message`).toBe('rejected');
      // Sends sharing a round with a refused one are rejected too (their caller sends them again);
      // the others resolve, with every message in the topic.
      const resolved = sends.filter((_, k) => outcomes[k] === 'resolved');
      expect(resolved.length).toBeGreaterThan(0);
      const offsets = await admin.fetchTopicOffsets(topic);
      const total = offsets.reduce((n, o) => n + Number(o.high), 0);
      const consumer = kafka.consumer({ kafkaJS: { groupId: `smoke-${randomUUID()}`, fromBeginning: true } });
      consumers.push(consumer);
      await consumer.connect();
      await consumer.subscribe({ topics: [topic] });
      const received = new Set<string>();
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`received ${received.size}/${total} within 30 s`)), 30_000);
        void consumer.run({
          eachMessage: async ({ message }) => {
            received.add(message.value!.toString());
            if (received.size === total) {
              clearTimeout(timer);
              resolve();
            }
          },
        });
      });
      for (const send of resolved) for (const value of send.values) expect(received.has(value), `${value} of a resolved send`).toBe(true);
    } finally {
      await batch.disconnect();
      await admin.disconnect();
    }
  });
});
