// The ingest benchmark's load generator (benchmarks/ingest.ts), run as its own process so that
// producing does not share the engine's event loop: produces generated stock events at a rate for
// a time (asOf = send time), then prints {"produced": n, "cpuSeconds": s}. Bounded by count (rate × seconds) and time.

import kafkaJavascript from '@confluentinc/kafka-javascript';
import { pathToFileURL } from 'node:url';
import type { StockEvent } from '../engine/core/types.js';
import { encodeStockEvent } from '../engine/stream/codec.js';

export const skus = 20_000;
export const locations = 10;
/** 1 % of SKUs sell fast (hot), 10 % warm, the rest cold: the velocity defaults' shape. */
export const hotSkus = skus / 100;
export const warmSkus = skus / 10;
/** Share of events on hot SKUs: best sellers move most. */
const hotEventShare = 0.2;

export const sku = (i: number) => `B-${String(i).padStart(6, '0')}`;

export function eventAt(n: number, asOf: number, run: string): StockEvent {
  // Deterministic spread: every 5th a snapshot; hotEventShare of events on hot SKUs.
  const r = (Math.imul(n, 2654435761) >>> 0) / 2 ** 32;
  const s = r < hotEventShare ? Math.floor((r / hotEventShare) * hotSkus) : hotSkus + Math.floor(((r - hotEventShare) / (1 - hotEventShare)) * (skus - hotSkus));
  const location = `L${n % locations}`;
  return n % 5 === 0 ? { type: 'snapshot', eventId: `${run}-${n}`, sku: sku(s), location, qty: 100 + (n % 50), asOf } : { type: 'delta', eventId: `${run}-${n}`, sku: sku(s), location, qty: (n % 5) - 2 || 1, asOf };
}

interface Args {
  brokers: string[];
  topic: string;
  perSec: number;
  seconds: number;
  run: string;
  from: number;
}

/**
 * The load generator's producer: idempotent, acks=all, keys partitioned like the Java client, with
 * delivery reports for failed messages only (delivery.report.only.error), as the engine's
 * BatchProducer, but with no flush rounds: it waits for nothing but the final flush. A report per
 * message costs the client ~2 µs of CPU (its background thread and the JS callback: 5.4 against
 * 2.2 µs per event produced, measured at 82,000 events/s), and the generator shares the machine's
 * two cores with what it measures. It needs no per-message acknowledgement: the count of failures,
 * checked once everything is flushed, is enough.
 */
async function loadProducer(brokers: string[]): Promise<{ produce(topic: string, key: string, value: Buffer): void; failed(): number; close(): Promise<void> }> {
  const producer = new kafkaJavascript.Producer({
    'bootstrap.servers': brokers.join(','),
    'client.id': 'instock-bench-ingest-load',
    'enable.idempotence': true,
    acks: -1,
    'linger.ms': 2,
    partitioner: 'murmur2_random',
    dr_cb: true,
    'delivery.report.only.error': true,
  } as never);
  let failed = 0;
  producer.on('delivery-report', (error) => {
    if (error) failed += 1;
  });
  await new Promise<void>((resolve, reject) => producer.connect({}, (error) => (error ? reject(new Error(`Kafka producer: ${error.message}`)) : resolve())));
  producer.setPollInBackground(true);
  return {
    produce(topic, key, value) {
      for (;;) {
        try {
          producer.produce(topic, null, value, key);
          return;
        } catch (error) {
          // The client's local queue is full: let its threads deliver, then try again.
          if ((error as { code?: number }).code !== kafkaJavascript.CODES.ERRORS.ERR__QUEUE_FULL) throw error;
          producer.poll();
          Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 1);
        }
      }
    },
    failed: () => failed,
    close: async () => {
      await new Promise<void>((resolve, reject) => producer.flush(30_000, (error) => (error ? reject(new Error(`Kafka flush: ${error.message}`)) : resolve())));
      await new Promise<void>((resolve) => producer.disconnect(() => resolve()));
    },
  };
}

async function main(args: Args): Promise<void> {
  const producer = await loadProducer(args.brokers);
  const sliceMs = 10;
  // CPU from here on: the benchmark meters the other processes over the load, not over this one's start.
  const cpuBefore = process.cpuUsage();
  const t0 = Date.now();
  let n = args.from;
  while (Date.now() - t0 < args.seconds * 1000) {
    const due = args.from + Math.floor(((Date.now() - t0) / 1000) * args.perSec);
    const asOf = Date.now();
    for (; n < due; n++) {
      const e = eventAt(n, asOf, args.run);
      producer.produce(args.topic, e.sku, encodeStockEvent(e));
    }
    await new Promise((r) => setTimeout(r, sliceMs));
  }
  await producer.close();
  // Its own CPU time too, flushing included: the benchmark reports what the load cost beside what the engine did.
  const cpu = process.cpuUsage(cpuBefore);
  // A failed message's report may reach this thread just after the flush returns.
  await new Promise((r) => setTimeout(r, 100));
  const failed = producer.failed();
  if (failed > 0) throw new Error(`${failed} of ${n - args.from} events were not delivered`);
  process.stdout.write(JSON.stringify({ produced: n - args.from, cpuSeconds: (cpu.user + cpu.system) / 1e6 }));
}

// Only when run as the child process, not when ingest.ts imports the generator.
const entry = process.argv[1];
if (entry !== undefined && import.meta.url === pathToFileURL(entry).href) {
  main(JSON.parse(process.argv[2] ?? '{}') as Args).then(
    () => process.exit(0),
    (error: unknown) => {
      process.stderr.write(`ingest producer: ${error instanceof Error ? error.message : String(error)}\n`);
      process.exit(1);
    },
  );
}
