// The deployed shape: `instock engine` and `instock gateway` as separate processes against real
// Kafka and Redis. Stock produced to Kafka becomes options at the gateway, and a hold at the
// gateway is published to inventory.reservations for the engine and history.

import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { projectPath } from '../../config/paths.js';
import { ensureTopics, kafkaClient } from '../../connectors/kafka.js';
import { sampleNetwork } from '../../engine/network/sample.js';
import { encodeStockEvent } from '../../engine/stream/codec.js';
import { decodeReservationTransition, type ReservationTransition } from '../../engine/stream/wire.js';
import { kafkaBrokers, redisUrl, requireService } from '../support/services.js';

const kafkaUp = await requireService('kafka');
const redisUp = await requireService('redis');
const children: ChildProcess[] = [];
afterAll(async () => {
  for (const child of children) if (child.exitCode === null) child.kill('SIGKILL');
});

function run(command: string, env: Record<string, string>, ready: RegExp): Promise<{ child: ChildProcess; match: RegExpExecArray; output: () => string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [projectPath('bin', 'instock.js'), command], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    children.push(child);
    let out = '';
    const timer = setTimeout(() => reject(new Error(`instock ${command} not ready in 60 s:\n${out}`)), 60_000);
    const onData = (chunk: Buffer) => {
      out += chunk.toString();
      const match = ready.exec(out);
      if (match) {
        clearTimeout(timer);
        resolve({ child, match, output: () => out });
      }
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`instock ${command} exited with ${code}:\n${out}`));
    });
  });
}

async function stop(child: ChildProcess): Promise<number | null> {
  if (child.exitCode !== null) return child.exitCode;
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  child.kill('SIGTERM');
  return exited;
}

describe('npm start on the embedded default (what the README tells a newcomer)', () => {
  it('prints an API key and a one-line curl, and that curl returns real options, within a minute', async () => {
    const t0 = Date.now();
    const dataDir = mkdtempSync(join(tmpdir(), 'instock-start-test-'));
    try {
      // Nothing configured: in-process stream, in-memory store, chDB history, the sample network and stock.
      const env = { GATEWAY_PORT: '0', GATEWAY_API_KEYS: '', KAFKA_BROKERS: '', REDIS_URL: '', REDIS_CLUSTER_NODES: '', CLICKHOUSE_URL: '', NETWORK_FILE: '', INSTOCK_DATA_DIR: dataDir };
      const started = await run('start', env, /^\s*(curl -s .+)$/m);
      const output = started.output();
      expect(output).toMatch(/API key \(every scope[^)]*\): \S+/);
      const { stdout } = await promisify(execFile)('bash', ['-c', started.match[1]!], { timeout: 20_000 });
      const answer = JSON.parse(stdout) as { options: { method: string; promiseAt: string }[]; lines: unknown[] };
      expect(answer.options.length).toBeGreaterThan(0);
      expect(answer.options.map((o) => o.method)).toEqual(expect.arrayContaining(['delivery_standard', 'pickup_in_store']));
      expect(answer.lines).toHaveLength(2);
      expect(Date.now() - t0).toBeLessThan(60_000);
      expect(await stop(started.child)).toBe(0);
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  }, 90_000);
});

describe.skipIf(!kafkaUp || !redisUp)('instock engine and instock gateway as separate processes', () => {
  it('turns stock produced to Kafka into options at the gateway, and publishes holds', async () => {
    const suffix = randomUUID().slice(0, 8);
    const topics = { KAFKA_TOPIC_STOCK: `p-stock-${suffix}`, KAFKA_TOPIC_CHANGES: `p-changes-${suffix}`, KAFKA_TOPIC_DLQ: `p-dlq-${suffix}`, KAFKA_TOPIC_RESERVATIONS: `p-res-${suffix}` };
    const kafka = kafkaClient(kafkaBrokers, 'processes-test');
    const admin = kafka.admin();
    await admin.connect();
    await ensureTopics(admin, Object.values(topics).map((topic) => ({ topic, partitions: 2, replication: 1 })));
    await admin.disconnect();
    const url = `${redisUrl}/13`;
    const raw = new Redis(url);
    await raw.flushdb();
    raw.disconnect();
    const key = `test-key-${suffix}-0123456789`;
    const env = { ...topics, KAFKA_BROKERS: kafkaBrokers.join(','), KAFKA_GROUP_ID: `p-engine-${suffix}`, REDIS_URL: url, REDIS_CLUSTER_NODES: '', GATEWAY_PORT: '0', ENGINE_METRICS_PORT: '0', GATEWAY_API_KEYS: `ops:${key}:availability:read+reservations:write+admin` };

    const engine = await run('engine', env, /instock engine consuming/);
    const gateway = await run('gateway', env, /ready in \d+ ms on (http:\/\/[^\s]+)/);
    const base = gateway.match[1]!;
    const network = sampleNetwork();
    const dc = network.locations.find((l) => l.type === 'dc')!;
    const sku = `P-${suffix}`;
    const producer = kafka.producer();
    await producer.connect();
    await producer.send({ topic: topics.KAFKA_TOPIC_STOCK, messages: [{ key: sku, value: encodeStockEvent({ type: 'snapshot', eventId: `p-${suffix}`, sku, location: dc.id, qty: 25, asOf: Date.now() - 1000 }) }] });
    await producer.disconnect();

    const headers = { authorization: `Bearer ${key}`, 'content-type': 'application/json' };
    const paris = { lat: 48.8566, lon: 2.3522 };
    let options: { method: string; shipments: { from: string }[] }[] = [];
    const deadline = Date.now() + 30_000;
    while (Date.now() < deadline) {
      const response = await fetch(`${base}/v1/availability`, { method: 'POST', headers, body: JSON.stringify({ channel: 'web', lines: [{ sku, qty: 2 }], destination: paris }) });
      if (response.status === 200) {
        options = ((await response.json()) as { options: typeof options }).options;
        if (options.length > 0) break;
      }
      await new Promise((r) => setTimeout(r, 250));
    }
    expect(options.map((o) => o.method)).toContain('delivery_standard');
    expect(options[0]!.shipments[0]!.from).toBe(dc.id);

    // Reservation transitions reach inventory.reservations.
    const seen: ReservationTransition[] = [];
    const consumer = kafka.consumer({ kafkaJS: { groupId: `p-check-${suffix}`, fromBeginning: true } } as never);
    await consumer.connect();
    await consumer.subscribe({ topics: [topics.KAFKA_TOPIC_RESERVATIONS] });
    await consumer.run({
      eachMessage: async ({ message }) => {
        const t = decodeReservationTransition(message.value);
        if (t) seen.push(t);
      },
    });
    const hold = await fetch(`${base}/v1/reservations`, { method: 'POST', headers, body: JSON.stringify({ reservationId: `ph-${suffix}`, channel: 'web', lines: [{ sku, location: dc.id, qty: 3 }] }) });
    expect(hold.status).toBe(201);
    expect((await fetch(`${base}/v1/reservations/ph-${suffix}/confirm`, { method: 'POST', headers })).status).toBe(200);
    const until = Date.now() + 30_000;
    while (seen.length < 2 && Date.now() < until) await new Promise((r) => setTimeout(r, 200));
    await consumer.disconnect();
    expect(seen.map((t) => [t.reservationId, t.transition, t.lines])).toEqual([
      [`ph-${suffix}`, 'held', [{ sku, location: dc.id, qty: 3 }]],
      [`ph-${suffix}`, 'confirmed', [{ sku, location: dc.id, qty: 3 }]],
    ]);

    // Both stop cleanly on SIGTERM.
    expect(await stop(gateway.child)).toBe(0);
    expect(await stop(engine.child)).toBe(0);
  }, 120_000);
});
