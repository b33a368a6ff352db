// A DLQ that does not acknowledge (Kafka refusing the dead-letter topic, say) must not let the
// engine read on without bound: at 10,000 dead-letter events not acknowledged the partition
// pauses, and it resumes once the DLQ catches up. No Kafka: batches go straight to take(), with a
// consumer and a producer standing in for the client's.

import { Registry } from 'prom-client';
import { describe, expect, it, vi } from 'vitest';
import type { KafkaClient } from '../../connectors/kafka.js';
import { MemoryStore } from '../../engine/store/memory-store.js';
import { encodeStockEvent } from '../../engine/stream/codec.js';
import { StreamEngine } from '../../engine/stream/engine.js';
import { applyConcurrency } from '../../engine/stream/pipeline.js';

interface EngineInternals {
  partitionState(partition: number): unknown;
  take(state: unknown, messages: { key: Buffer | null; value: Buffer | null; offset: number }[]): Promise<void>;
  pauseIfBehind(state: unknown, lastOffset: number): void;
  consumer: unknown;
  producer: unknown;
  changes: unknown;
  stopping: boolean;
}

describe('DLQ backpressure', () => {
  it('pauses the partition while 10,000 dead-letter events wait for the DLQ, and resumes when it acknowledges', async () => {
    const engine = new StreamEngine({ kafka: {} as KafkaClient, topics: { stock: 's', changes: 'c', dlq: 'd' }, groupId: 'g', store: new MemoryStore(), registry: new Registry(), log: () => {} });
    const internals = engine as unknown as EngineInternals;
    const consumer = { pause: vi.fn(), resume: vi.fn() };
    let accepting = false;
    const sent: number[] = [];
    internals.consumer = consumer;
    internals.producer = {
      send: async ({ messages }: { messages: unknown[] }) => {
        if (!accepting) throw new Error('DLQ topic not available');
        sent.push(messages.length);
      },
    };
    const state = internals.partitionState(0);
    let offset = 0;
    const badBatch = async (count: number) => {
      const messages = Array.from({ length: count }, () => ({ key: null, value: Buffer.from('not msgpack, not JSON'), offset: offset++ }));
      await internals.take(state, messages);
      internals.pauseIfBehind(state, messages[messages.length - 1]!.offset);
    };
    try {
      await badBatch(2_000);
      await badBatch(2_000);
      expect(consumer.pause).not.toHaveBeenCalled();
      for (let i = 0; i < 3; i++) await badBatch(2_000);
      // 10,000 not acknowledged: the partition stops fetching.
      expect(consumer.pause).toHaveBeenCalledTimes(1);
      expect(engine.counters.rejected.not_decodable).toBe(10_000);
      expect(consumer.resume).not.toHaveBeenCalled();
      // The DLQ comes back: the retries land, and the partition resumes.
      accepting = true;
      await vi.waitFor(() => expect(consumer.resume).toHaveBeenCalledTimes(1), { timeout: 10_000 });
      // Every dead-letter event reaches the DLQ, once.
      await vi.waitFor(() => expect(sent.reduce((a, b) => a + b, 0)).toBe(10_000), { timeout: 10_000 });
    } finally {
      internals.stopping = true;
    }
  });

  it('a resume scheduled for the lanes waits for the DLQ too: a partition paused for the DLQ is not resumed early', async () => {
    // A store whose applies wait until the test lets them through: the cold lane fills and stays full.
    const waiting: (() => void)[] = [];
    const store = new MemoryStore();
    const slow = Object.create(store) as MemoryStore;
    slow.applyEvents = (events, nowMs) => new Promise((resolve) => waiting.push(() => resolve(store.applyEvents(events, nowMs))));
    const engine = new StreamEngine({ kafka: {} as KafkaClient, topics: { stock: 's', changes: 'c', dlq: 'd' }, groupId: 'g', store: slow, laneEventsMax: { cold: 3 }, coldOverflow: 'pause', registry: new Registry(), log: () => {} });
    const internals = engine as unknown as EngineInternals;
    const consumer = { pause: vi.fn(), resume: vi.fn() };
    let accepting = false;
    internals.consumer = consumer;
    internals.producer = {
      send: async () => {
        if (!accepting) throw new Error('DLQ topic not available');
      },
    };
    internals.changes = { send: async () => {} };
    const [p0, p1] = [internals.partitionState(0), internals.partitionState(1)];
    let offset = 0;
    const take = async (state: unknown, values: Buffer[]) => {
      const messages = values.map((value) => ({ key: null, value, offset: offset++ }));
      await internals.take(state, messages);
      internals.pauseIfBehind(state, messages[messages.length - 1]!.offset);
    };
    const good = (n: number) => Array.from({ length: n }, (_, i) => encodeStockEvent({ type: 'delta', eventId: `g${offset + i}`, sku: `C-${offset + i}`, location: 'dc', qty: 1, asOf: Date.now() - 1_000 }));
    try {
      // Partition 0 fills the cold lane (a chunk per store call in flight, the rest waiting): paused, a resume scheduled.
      for (let k = 0; k < applyConcurrency; k++) await take(p0, good(2));
      await take(p0, good(4));
      expect(consumer.pause).toHaveBeenCalledTimes(1);
      // Partition 1 brings 10,000 bad events while the DLQ is down: paused too.
      await take(p1, Array.from({ length: 10_000 }, () => Buffer.from('not an event')));
      expect(consumer.pause).toHaveBeenCalledTimes(2);
      // The store answers: the lanes have room, but the DLQ still holds 10,000: nothing resumes.
      while (waiting.length > 0) waiting.shift()!();
      await vi.waitFor(() => expect(engine.pipeline.roomy()).toBe(true));
      await new Promise((r) => setTimeout(r, 300));
      expect(consumer.resume).not.toHaveBeenCalled();
      // The DLQ comes back: both partitions resume, together.
      accepting = true;
      await vi.waitFor(() => expect(consumer.resume).toHaveBeenCalledTimes(1), { timeout: 10_000 });
      expect(consumer.resume.mock.calls[0]![0]).toEqual([0, 1]);
    } finally {
      internals.stopping = true;
    }
  });
});
