// A separate process that places holds against Redis, for the multi-process race and crash tests
// (and usable as a load generator). Prints one JSON line per progress tick and a final summary.
//
//   node dist/benchmarks/hold-client.js '<json options>'
//   options: { redisUrl? | clusterNodes?, keyPrefix, idPrefix, skus[], location, linesPerBasket,
//              qty, baskets (max count), concurrency, holdTtlMs }

import { RedisStore } from '../engine/store/redis-store.js';

interface Options {
  redisUrl?: string;
  clusterNodes?: string[];
  keyPrefix: string;
  idPrefix: string;
  skus: string[];
  location: string;
  linesPerBasket: number;
  qty: number;
  baskets: number;
  concurrency: number;
  holdTtlMs: number;
}

const options = JSON.parse(process.argv[2] ?? '{}') as Options;
const store = RedisStore.connect(options.clusterNodes ? { clusterNodes: options.clusterNodes } : { url: options.redisUrl! }, { keyPrefix: options.keyPrefix, name: 'hold-client' });
const rule = { sellable: true, bufferUnits: 0, bufferPercent: 0, minThreshold: 0 };
let next = 0;
let held = 0;
let rejected = 0;

async function worker(): Promise<void> {
  while (next < options.baskets) {
    const n = next++;
    const lines = Array.from({ length: options.linesPerBasket }, (_, k) => ({ sku: options.skus[(n + k * 7) % options.skus.length]!, location: options.location, qty: options.qty, rule }));
    const result = await store.hold({ reservationId: `${options.idPrefix}-${n}`, channel: 'web', lines, holdTtlMs: options.holdTtlMs, nowMs: Date.now() });
    if (result.state === 'held') held += 1;
    else rejected += 1;
    if ((held + rejected) % 20 === 0) process.stdout.write(`${JSON.stringify({ progress: held + rejected, held })}\n`);
  }
}

await Promise.all(Array.from({ length: options.concurrency }, worker));
process.stdout.write(`${JSON.stringify({ done: true, held, rejected })}\n`);
await store.close();
