// Runs against the 3-broker local Kafka (`SERVICES_KAFKA_BROKERS=3 npm run services -- up kafka`);
// .ci/run starts it after the main suite and runs this file with INSTOCK_FAULT_TESTS=1.
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../config/config.js';
import { ensureTopics, kafkaClient } from '../../connectors/kafka.js';
import { layout, pidFile } from '../../services/processes.js';

const config = loadConfig({ ...process.env, SERVICES_KAFKA_BROKERS: '3' });
const brokers = config.servicesKafkaPorts.map((p) => `127.0.0.1:${p}`);
const enabled = process.env.INSTOCK_FAULT_TESTS === '1';

describe.skipIf(!enabled)('Kafka with three brokers', () => {
  it('keeps every message when one broker is killed with SIGKILL mid-stream', async () => {
    const kafka = kafkaClient(brokers, 'instock-fault');
    const topic = `instock.fault.${randomUUID()}`;
    const admin = kafka.admin();
    await admin.connect();
    await ensureTopics(admin, [{ topic, partitions: 6, replication: 3 }]);
    await admin.disconnect();

    const producer = kafka.producer({ kafkaJS: { acks: -1, idempotent: true } });
    await producer.connect();
    const batch = (from: number) => Array.from({ length: 200 }, (_, i) => ({ key: `sku-${(from + i) % 13}`, value: String(from + i) }));
    await producer.send({ topic, messages: batch(0) });
    const victim = Number(readFileSync(pidFile(layout(config.dataDir), 'kafka-2'), 'utf8'));
    process.kill(victim, 'SIGKILL');
    await producer.send({ topic, messages: batch(200) });
    await producer.disconnect();

    const consumer = kafka.consumer({ kafkaJS: { groupId: `fault-${randomUUID()}`, fromBeginning: true } });
    await consumer.connect();
    await consumer.subscribe({ topics: [topic] });
    const seen = new Set<number>();
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`consumed ${seen.size}/400 within 60 s`)), 60_000);
      void consumer.run({
        eachMessage: async ({ message }) => {
          seen.add(Number(message.value!.toString()));
          if (seen.size === 400) {
            clearTimeout(timer);
            resolve();
          }
        },
      });
    });
    await consumer.disconnect();
    expect([...seen].sort((a, b) => a - b)).toEqual(Array.from({ length: 400 }, (_, i) => i));
  }, 120_000);
});
