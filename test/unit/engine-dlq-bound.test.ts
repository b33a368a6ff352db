// A DLQ that does not acknowledge (Kafka refusing the dead-letter topic, say) must not let the
// engine read on without bound: at 10,000 dead-letter events not acknowledged the partition
// pauses, and it resumes once the DLQ catches up. No Kafka: batches go straight to take(), with a
// consumer and a producer standing in for the client's.

import { Registry } from 'prom-client';
import { describe, expect, it, vi } from 'vitest';
import type { KafkaClient } from '../../connectors/kafka.js';
import { MemoryStore } from '../../engine/store/memory-store.js';
import { StreamEngine } from '../../engine/stream/engine.js';

interface EngineInternals {
  partitionState(partition: number): unknown;
  take(state: unknown, messages: { key: Buffer | null; value: Buffer | null; offset: string }[]): Promise<void>;
  pauseIfBehind(state: unknown, lastOffset: string): void;
  consumer: unknown;
  producer: unknown;
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
      const messages = Array.from({ length: count }, () => ({ key: null, value: Buffer.from('not msgpack, not JSON'), offset: String(offset++) }));
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
});
