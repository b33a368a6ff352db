// The ingest benchmark's load generator (benchmarks/ingest.ts), run as its own process so that
// producing does not share the engine's event loop: produces generated stock events at a rate for
// a time (asOf = send time), then prints {"produced": n, "cpuSeconds": s}. Bounded by count (rate × seconds) and time.

import { pathToFileURL } from 'node:url';
import { BatchProducer, kafkaClient } from '../connectors/kafka.js';
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

async function main(args: Args): Promise<void> {
  // The native-produce BatchProducer: the load generator shares the machine's two cores with the
  // engine, the broker and Redis, and a KafkaJS-style send costs twice its CPU per message.
  const producer = await BatchProducer.connect(kafkaClient(args.brokers, 'instock-bench-ingest-load'), { lingerMs: 2 });
  const sliceMs = 10;
  // CPU from here on: the benchmark meters the other processes over the load, not over this one's start.
  const cpuBefore = process.cpuUsage();
  const t0 = Date.now();
  let n = args.from;
  const sends: Promise<unknown>[] = [];
  while (Date.now() - t0 < args.seconds * 1000) {
    const due = args.from + Math.floor(((Date.now() - t0) / 1000) * args.perSec);
    if (due > n) {
      const messages = [];
      const asOf = Date.now();
      for (; n < due; n++) {
        const e = eventAt(n, asOf, args.run);
        messages.push({ key: e.sku, value: encodeStockEvent(e) });
      }
      sends.push(producer.send(args.topic, messages));
      if (sends.length > 200) await Promise.all(sends.splice(0));
    }
    await new Promise((r) => setTimeout(r, sliceMs));
  }
  await Promise.all(sends);
  // Its own CPU time too: the benchmark reports what the load cost beside what the engine did.
  const cpu = process.cpuUsage(cpuBefore);
  await producer.disconnect();
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
