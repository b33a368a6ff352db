// The history consumer on the real Kafka, writing to chDB: a 200,000-event stream (plus ATP
// changes and reservation transitions) ends with exactly one row per record sent; so does a run
// whose inserts landed but whose offsets were never committed (a crash between the two), a run
// where `instock history` is SIGKILLed and restarted mid-stream, and a run where ClickHouse fails
// for a while (lag grows, then drains). Velocity and stock-outs reported afterwards are the ones
// computed from the generated events.

import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ClickHouseClient } from '@clickhouse/client';
import { afterAll, describe, expect, it } from 'vitest';
import { projectPath } from '../../config/paths.js';
import { ensureTopics, kafkaClient, type KafkaClient } from '../../connectors/kafka.js';
import { runAnalytics } from '../../engine/history/analytics.js';
import { connectClickHouse } from '../../engine/history/clickhouse.js';
import { HistoryConsumer, type HistoryTopics } from '../../engine/history/consumer.js';
import { HistoryMetrics } from '../../engine/history/metrics.js';
import { migrate } from '../../engine/history/migrations.js';
import { HistoryWriter } from '../../engine/history/writer.js';
import { encodeStockEvent } from '../../engine/stream/codec.js';
import { encodeAtpChange, encodeReservationTransition } from '../../engine/stream/wire.js';
import { expectedRows, expectedStockouts, expectedVelocity, generateHistory, type GeneratedHistory } from '../support/history-stream.js';
import { kafkaBrokers, requireService } from '../support/services.js';

const kafkaUp = await requireService('kafka');
const cleanups: (() => Promise<void> | void)[] = [];
afterAll(async () => {
  for (const cleanup of cleanups.reverse()) await Promise.resolve(cleanup()).catch(() => undefined);
});

const hourMs = 3_600_000;
const nowMs = Math.floor(Date.now() / hourMs) * hourMs - 20 * 60_000;
const malformed = [Buffer.from([0xc1, 0x00, 0xff]), Buffer.from('{"type":"delta"'), encodeStockEvent({ type: 'delta', eventId: 'm4', sku: 'sku-1', location: 'loc-1', qty: 0, asOf: nowMs })];

async function rows<T>(client: ClickHouseClient, query: string): Promise<T[]> {
  return (await client.query({ query, format: 'JSONEachRow', clickhouse_settings: { output_format_json_quote_64bit_integers: 0 } })).json<T>();
}

/** Fresh topics holding a generated history (malformed stock messages spread through it). */
async function publish(kafka: KafkaClient, h: GeneratedHistory): Promise<{ topics: HistoryTopics; messages: number }> {
  const run = randomUUID().slice(0, 8);
  const topics = { stock: `it.hist.stock.${run}`, changes: `it.hist.changes.${run}`, reservations: `it.hist.res.${run}` };
  const admin = kafka.admin();
  await admin.connect();
  await ensureTopics(admin, Object.values(topics).map((topic) => ({ topic, partitions: 6, replication: 1 })));
  await admin.disconnect();
  const producer = kafka.producer({ 'linger.ms': 5 } as never);
  await producer.connect();
  const stock = h.stock.map((e, i) => ({ key: e.sku, value: i % 2 === 0 ? encodeStockEvent(e) : Buffer.from(JSON.stringify(e)) }));
  malformed.forEach((value, i) => stock.splice(Math.floor(((i + 1) * stock.length) / (malformed.length + 1)), 0, { key: `bad-${i}`, value }));
  const send = async (topic: string, messages: { key: string; value: Buffer }[]) => {
    for (let i = 0; i < messages.length; i += 5_000) await producer.send({ topic, messages: messages.slice(i, i + 5_000) });
  };
  await send(topics.stock, stock);
  await send(topics.changes, h.changes.map((c) => ({ key: c.sku, value: encodeAtpChange(c) })));
  await send(topics.reservations, h.transitions.map((t) => ({ key: t.reservationId, value: encodeReservationTransition(t) })));
  await producer.disconnect();
  return { topics, messages: stock.length + h.changes.length + h.transitions.length };
}

/** Every row stored once: counts equal the records sent and no (partition, offset[, line]) twice; the views saw each row once too. */
async function expectExactlyOnce(client: ClickHouseClient, database: string, h: GeneratedHistory): Promise<void> {
  for (const [table, count] of Object.entries(expectedRows(h))) {
    const [got] = await rows<{ n: number; distinct: number }>(client, `SELECT count() AS n, uniqExact(src_partition, src_offset, ${table === 'reservation_transitions' ? 'line' : '0'}) AS distinct FROM ${database}.${table}`);
    expect({ table, ...got }).toEqual({ table, n: count, distinct: count });
  }
  const [mv] = await rows<{ units: number }>(client, `SELECT sum(units) AS units FROM ${database}.velocity_hourly`);
  const want = [...expectedVelocity(h, 0, Number.MAX_SAFE_INTEGER).values()].reduce((a, b) => a + b, 0);
  expect(mv!.units).toBe(want);
}

async function waitFor(what: string, done: () => boolean | Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await done())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

async function committedAll(kafka: KafkaClient, groupId: string, topics: HistoryTopics): Promise<boolean> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    for (const topic of Object.values(topics)) {
      const ends = await admin.fetchTopicOffsets(topic);
      const [committed] = await admin.fetchOffsets({ groupId, topics: [topic] });
      for (const end of ends) {
        const c = committed?.partitions.find((p) => p.partition === end.partition);
        if (!c || BigInt(c.offset) < BigInt(end.high)) return false;
      }
    }
    return true;
  } finally {
    await admin.disconnect();
  }
}

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const server = createServer();
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

describe.skipIf(!kafkaUp)('history consumer on real Kafka into chDB', () => {
  const kafka = kafkaUp ? kafkaClient(kafkaBrokers, 'instock-history-test') : (undefined as never);
  const dir = mkdtempSync(join(tmpdir(), 'instock-history-kafka-'));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  // chDB: one data directory per process at a time. The in-process tests share this one client;
  // the process test below uses a directory of its own and opens it only after the child is gone.
  const client = connectClickHouse({ url: '', chdbPath: join(dir, 'inproc'), database: 'default' });
  cleanups.push(() => client.close());

  it('200,000 stock events (+ changes and reservations): one row per record sent, reports match the events, and a crash between insert and commit stores nothing twice', async () => {
    const database = 'hist_stream';
    await migrate(client, database);
    const h = generateHistory({ stock: Number(process.env.HISTORY_TEST_EVENTS ?? 200_000), transitions: 20_000, changes: 30_000, endMs: nowMs - 1, seed: 21 });
    const { topics, messages } = await publish(kafka, h);
    const groupId = `history-${randomUUID().slice(0, 8)}`;

    // First consumer: everything inserted, but its offset commits all fail, as if it died each
    // time between an insert and the commit.
    const writerA = new HistoryWriter({ client, database, flushIntervalMs: 200 });
    const a = new HistoryConsumer({ kafka, topics, groupId, writer: writerA, client, database });
    await a.start();
    const inner = (a as unknown as { consumer: { commitOffsets: () => Promise<void> } }).consumer;
    inner.commitOffsets = () => Promise.reject(new Error('crashed before the commit (test)'));
    const t0 = Date.now();
    await waitFor('every message inserted by the first consumer', () => a.counters.messages >= messages && writerA.pendingRows('stock_events') === 0 && writerA.pendingRows('atp_changes') === 0 && writerA.pendingRows('reservation_transitions') === 0, 180_000);
    await writerA.flush();
    const elapsedMs = Date.now() - t0;
    await a.stop();
    expect(await committedAll(kafka, groupId, topics)).toBe(false);
    expect(a.counters.undecodable).toBe(malformed.length);
    await expectExactlyOnce(client, database, h);
    const storedRows = Object.values(expectedRows(h)).reduce((x, y) => x + y, 0);
    console.log(`history consumer: ${messages} messages, ${storedRows} rows in ${elapsedMs} ms = ${Math.round((storedRows / elapsedMs) * 1000)} rows/s (chDB, Kafka read included)`);

    // Second consumer, same group: reads everything again from offset 0, finds it stored, skips it.
    const metricsB = new HistoryMetrics();
    const writerB = new HistoryWriter({ client, database, metrics: metricsB, flushIntervalMs: 200 });
    const b = new HistoryConsumer({ kafka, topics, groupId, writer: writerB, client, database });
    await b.start();
    cleanups.push(() => b.stop());
    await waitFor('the second consumer to commit everything', () => committedAll(kafka, groupId, topics), 180_000);
    // All but the malformed messages, which are never stored (the DLQ has them), so are read again.
    expect(b.counters.skippedReplayed).toBe(messages - malformed.length);
    await b.stop();
    await writerB.close();
    await expectExactlyOnce(client, database, h);
    expect(await metricsB.registry.metrics()).toMatch(/instock_history_lag_messages\{topic="[^"]+",partition="\d"\} 0/);

    // The reports agree with the events.
    const sinceMs = nowMs - 2 * hourMs - 30 * 60_000;
    const want = [...expectedVelocity(h, Math.floor(sinceMs / hourMs) * hourMs, nowMs)].sort((x, y) => y[1] - x[1] || (x[0] < y[0] ? -1 : 1));
    const velocity = await runAnalytics(client, database, { report: 'velocity', top: 20, sinceMs, nowMs });
    expect(velocity.map((r) => [r.sku, r.units])).toEqual(want.slice(0, 20));
    const stockouts = await runAnalytics(client, database, { report: 'stockouts', top: 10_000, sinceMs: h.startMs - hourMs, nowMs });
    const key = (x: unknown[]) => JSON.stringify(x);
    expect(stockouts.map((r) => key([r.sku, r.location, r.start_ms, r.end_ms])).sort()).toEqual(expectedStockouts(h.changes).map((s) => key([s.sku, s.location, s.startMs, s.endMs])).sort());
  }, 600_000);

  it('ClickHouse failing for a while: lag grows, nothing is committed unstored, then it drains with nothing lost or doubled', async () => {
    const database = 'hist_outage';
    await migrate(client, database);
    const h = generateHistory({ stock: 40_000, transitions: 5_000, changes: 8_000, endMs: nowMs - 1, seed: 22 });
    const { topics, messages } = await publish(kafka, h);
    const groupId = `history-${randomUUID().slice(0, 8)}`;
    let down = true;
    let failed = 0;
    const metrics = new HistoryMetrics();
    // Small queues, so the consumer reaches its pause mark during the outage.
    const writer = new HistoryWriter({
      client,
      database,
      metrics,
      batchRowsMax: 5_000,
      queueRowsMax: 20_000,
      flushIntervalMs: 100,
      retryDelayMsMin: 50,
      retryDelayMsMax: 400,
      beforeInsert: () => {
        if (down) {
          failed += 1;
          throw new Error('ClickHouse unavailable (test)');
        }
      },
    });
    const consumer = new HistoryConsumer({ kafka, topics, groupId, writer, client, database });
    await consumer.start();
    cleanups.push(() => consumer.stop());
    await waitFor('the consumer to fill its queue and stop fetching', () => writer.pendingRows('stock_events') >= writer.pauseRows(), 60_000);
    await new Promise((resolve) => setTimeout(resolve, 3_000));
    // Paused: bounded queue, no commits, lag at least what is not stored.
    // The pause mark plus the fetches in hand when it was reached (3 partitions × 5,000 at most).
    expect(writer.pendingRows('stock_events')).toBeLessThanOrEqual(writer.pauseRows() + 3 * 5_000);
    expect(consumer.counters.committed).toBe(0);
    expect(failed).toBeGreaterThan(3);
    const lagDuring = await metrics.lag.get();
    expect(lagDuring.values.reduce((n, v) => n + v.value, 0)).toBeGreaterThan(0);
    const [stored] = await rows<{ n: number }>(client, `SELECT count() AS n FROM ${database}.stock_events`);
    expect(stored!.n).toBe(0);

    down = false;
    await waitFor('the backlog to drain', () => committedAll(kafka, groupId, topics), 180_000);
    await consumer.stop();
    await writer.close();
    expect(consumer.counters.committed).toBe(messages);
    await expectExactlyOnce(client, database, h);
    const text = await metrics.registry.metrics();
    expect(text).toMatch(/instock_history_failed_batches_total\{table="stock_events"\} [1-9]/);
    expect(text).toContain(`instock_history_rows_written_total{table="stock_events"} ${h.stock.length}`);
  }, 300_000);

  it('instock history SIGKILLed at random moments and restarted: one row per record sent', async () => {
    const h = generateHistory({ stock: 120_000, transitions: 10_000, changes: 15_000, endMs: nowMs - 1, seed: 23 });
    const { topics, messages } = await publish(kafka, h);
    const groupId = `history-${randomUUID().slice(0, 8)}`;
    const dataDir = join(dir, 'proc');
    const database = 'hist_proc';
    const env = {
      ...process.env,
      KAFKA_BROKERS: kafkaBrokers.join(','),
      KAFKA_TOPIC_STOCK: topics.stock,
      KAFKA_TOPIC_CHANGES: topics.changes,
      KAFKA_TOPIC_RESERVATIONS: topics.reservations,
      KAFKA_HISTORY_GROUP_ID: groupId,
      KAFKA_SESSION_TIMEOUT_MS: '6000',
      INSTOCK_DATA_DIR: dataDir,
      CLICKHOUSE_URL: '',
      CLICKHOUSE_DATABASE: database,
      HISTORY_METRICS_PORT: String(await freePort()),
      // Small inserts: every run makes many, so each kill lands just after one (before its commit).
      HISTORY_BATCH_ROWS: '5000',
    };
    let output = '';
    let lastOutput = '';
    const startChild = (): ChildProcess => {
      const child = spawn(process.execPath, [projectPath('bin', 'instock.js'), 'history'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
      lastOutput = '';
      const collect = (chunk: Buffer) => {
        output += chunk.toString();
        lastOutput += chunk.toString();
      };
      child.stderr!.on('data', collect);
      child.stdout!.on('data', collect);
      cleanups.push(() => void child.kill('SIGKILL'));
      return child;
    };
    const exited = (child: ChildProcess) => new Promise<number | null>((resolve) => (child.exitCode !== null ? resolve(child.exitCode) : child.once('exit', (code) => resolve(code))));
    let seed = 5;
    const next = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
    const rowsWritten = async (): Promise<number> => {
      try {
        const text = await (await fetch(`http://127.0.0.1:${env.HISTORY_METRICS_PORT}/metrics`, { signal: AbortSignal.timeout(2_000) })).text();
        return [...text.matchAll(/^instock_history_rows_written_total\{[^}]*\} (\d+)/gm)].reduce((n, m) => n + Number(m[1]), 0);
      } catch {
        return 0;
      }
    };
    let kills = 0;
    while (kills < 4 && !(await committedAll(kafka, groupId, topics))) {
      const child = startChild();
      // Killed while it writes, at a random moment just after an insert: offsets are committed
      // every 250 ms, so the kill lands between the insert and its commit.
      // A run may also find nothing left to insert: the previous one stored everything and was
      // killed before its last commit, so this one only commits (deduplicated replay).
      let finished = false;
      await waitFor('the child to insert or to commit everything', async () => (await rowsWritten()) > 0 || child.exitCode !== null || (finished = await committedAll(kafka, groupId, topics)), 60_000);
      if (finished) {
        child.kill('SIGKILL');
        await exited(child);
        break;
      }
      await new Promise((resolve) => setTimeout(resolve, Math.floor(next() * 200)));
      const before = await rowsWritten();
      const deadline = Date.now() + 5_000;
      while (Date.now() < deadline && (await rowsWritten()) === before) await new Promise((resolve) => setTimeout(resolve, 10));
      child.kill('SIGKILL');
      await exited(child);
      kills += 1;
    }
    expect(kills).toBeGreaterThanOrEqual(2);
    const last = startChild();
    await waitFor('the restarted consumer to commit everything', () => committedAll(kafka, groupId, topics), 240_000);
    await waitFor('the last run to be up', () => lastOutput.includes('instock history consuming'), 60_000);
    last.kill('SIGTERM');
    const code = await exited(last);
    expect(code, `${last.signalCode} ${lastOutput.slice(-2000)}`).toBe(0);
    // The child is gone: its chDB directory can be opened here (after this process's other one).
    await client.close();
    const mine = connectClickHouse({ url: '', chdbPath: join(dataDir, 'chdb'), database });
    try {
      // Kills land inside inserts too (a table's part stored, a view's not): the replay completes the views.
      await expectExactlyOnce(mine, database, h);
    } finally {
      await mine.close();
    }
    // Some kills landed between an insert and its commit: the restarted consumer found stored rows.
    const replayChecks = (output.match(/may already be stored/g) ?? []).length;
    console.log(`instock history: ${messages} messages over ${kills + 1} runs; partitions found with stored, uncommitted rows: ${replayChecks}; batches inserted again for the views: ${(output.match(/inserted again with its token/g) ?? []).length}`);
    expect(replayChecks).toBeGreaterThan(0);
  }, 600_000);
});
