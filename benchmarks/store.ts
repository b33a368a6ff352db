// `npm run bench -- store [--quick]`: the Redis store against floors measured on the same server
// in the same run. The benchmark starts its own redis-server (same settings as `services up`) so
// that memory per position is measured on an empty server.
//
//   batched event apply       vs raw pipelined HINCRBY            target >= 50 %
//   single-line holds         vs raw one-key EVALSHA decrement    target >= 50 %
//   (each against its floor in alternating rounds, 5 or 3 with --quick: the median ratio)
//   12-line basket holds      (no floor: reported)
//   memory per position after loading N positions                 target <= 64 bytes

import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import { RedisStore } from '../engine/store/redis-store.js';
import type { StockEvent } from '../engine/store/types.js';
import { startBenchRedis } from './bench-redis.js';
import { printTable, progress, rate, sideBySide, writeResults, type Row, type SideBySide } from './report.js';

const rule = { sellable: true, bufferUnits: 0, bufferPercent: 0, minThreshold: 0 };

export async function benchStore(args: { quick: boolean; dataDir: string; positions?: number }): Promise<Row[]> {
  const port = 16_390;
  const scale = args.quick ? 0.1 : 1;
  // Memory is measured without AOF rewrite noise; everything else is as `services up` runs Redis.
  const server = await startBenchRedis(args.dataDir, 'bench-redis', port, ['--appendonly', 'no']);
  const { url, client: raw } = server;
  try {
    const rows: Row[] = [];

    // Apply and single-line holds are each measured against their floor in alternating rounds
    // (report.ts: sideBySide), the median ratio reported.
    const rounds = args.quick ? 3 : 5;

    // 1-2. Batched event apply (1,000 events per call over 2,000 SKUs x 10 locations, half
    // snapshots, 4 calls in flight) vs raw pipelined HINCRBY (1,000 per pipeline, 4 in flight).
    const applyCount = Math.round(400_000 * scale);
    const applyPerRound = Math.round(applyCount / rounds / 1000);
    const store = RedisStore.connect({ url }, { keyPrefix: 'bench' });
    let asOf = Date.now() - 86_400_000;
    const batch = (b: number): StockEvent[] =>
      Array.from({ length: 1000 }, (_, i) => {
        const n = b * 1000 + i;
        asOf += 1;
        return n % 2 === 0
          ? { type: 'snapshot', eventId: randomUUID(), sku: `s${n % 2000}`, location: `l${(n >> 1) % 10}`, qty: 100 + (n % 50), asOf }
          : { type: 'delta', eventId: randomUUID(), sku: `s${n % 2000}`, location: `l${(n >> 1) % 10}`, qty: (n % 5) - 2 || 1, asOf };
      });
    const batches = Array.from({ length: applyPerRound * rounds }, (_, b) => batch(b));
    const apply = await sideBySide(
      rounds,
      async (r) => {
        progress(`round ${r + 1}/${rounds} floor: ${(applyPerRound * 1000).toLocaleString()} pipelined HINCRBY`);
        const floor = await rate(applyPerRound, 4, 60_000, async (b) => {
          const pipeline = raw.pipeline();
          for (let i = 0; i < 1000; i++) pipeline.hincrby(`floor:{s${(b * 1000 + i) % 2000}}`, `l${i % 10}`, 1);
          await pipeline.exec();
        });
        return floor.opsPerSec * 1000;
      },
      async (r) => {
        progress(`round ${r + 1}/${rounds} store: ${(applyPerRound * 1000).toLocaleString()} events in batches of 1,000`);
        const applied = await rate(applyPerRound, 4, 60_000, (b) => store.applyEvents(batches[r * applyPerRound + b]!));
        return applied.opsPerSec * 1000;
      },
    );
    rows.push({ metric: 'batched event apply', value: apply.value, unit: 'events/s', floor: apply.floor, ratio: apply.ratio, target: '>= 50 % of HINCRBY', pass: apply.ratio >= 0.5 });

    // 3-4. Single-line holds on 2,000 SKUs with plenty of stock, 64 in flight, vs a one-key
    // EVALSHA decrement, 64 in flight.
    const holdCount = Math.round(100_000 * scale);
    const holdsPerRound = Math.round(holdCount / rounds);
    const sha = (await raw.script('LOAD', "return redis.call('DECRBY', KEYS[1], ARGV[1])")) as string;
    await raw.set('floor:stock', 1e12);
    const holdStore = RedisStore.connect({ url }, { keyPrefix: 'hold' });
    await holdStore.applyEvents(Array.from({ length: 2000 }, (_, i) => ({ type: 'snapshot' as const, eventId: `h${i}`, sku: `s${i}`, location: 'dc', qty: 1e8, asOf: 1 })));
    const holds = await sideBySide(
      rounds,
      async (r) => {
        progress(`round ${r + 1}/${rounds} floor: ${holdsPerRound.toLocaleString()} one-key EVALSHA decrements`);
        return (await rate(holdsPerRound, 64, 60_000, () => raw.evalsha(sha, 1, 'floor:stock', 1))).opsPerSec;
      },
      async (r) => {
        progress(`round ${r + 1}/${rounds} store: ${holdsPerRound.toLocaleString()} single-line holds`);
        const held = await rate(holdsPerRound, 64, 60_000, (k) => {
          const i = r * holdsPerRound + k;
          return holdStore.hold({ reservationId: `one-${i}`, channel: 'web', lines: [{ sku: `s${i % 2000}`, location: 'dc', qty: 1, rule }], holdTtlMs: 600_000, nowMs: Date.now() });
        });
        return held.opsPerSec;
      },
    );
    rows.push({ metric: 'single-line holds', value: holds.value, unit: 'holds/s', floor: holds.floor, ratio: holds.ratio, target: '>= 50 % of EVALSHA', pass: holds.ratio >= 0.5 });

    // 5. 12-line baskets.
    const basketCount = Math.round(20_000 * scale);
    progress(`store: ${basketCount.toLocaleString()} 12-line basket holds`);
    const baskets = await rate(basketCount, 64, 60_000, (i) =>
      holdStore.hold({ reservationId: `basket-${i}`, channel: 'web', lines: Array.from({ length: 12 }, (_, k) => ({ sku: `s${(i * 13 + k * 151) % 2000}`, location: 'dc', qty: 1, rule })), holdTtlMs: 600_000, nowMs: Date.now() }),
    );
    rows.push({ metric: '12-line basket holds', value: baskets.opsPerSec, unit: 'baskets/s', floor: holds.floor, ratio: baskets.opsPerSec / holds.floor });
    await holdStore.close();
    await store.close();

    // 6-7. Availability reads (the gateway's forEachPosition): 12-SKU baskets over 200 SKUs x 42
    // locations, 8 baskets per event-loop turn, which share one MGET of view stamps
    // (engine/store/scripts.ts), vs a raw MGET of as many 20-byte keys; then the same reads while
    // another client writes 2,000 snapshots a second to those SKUs (a SKU written since a reader's
    // last read costs it the read script).
    const reads = await basketReads(url, raw, rounds, scale);
    rows.push({ metric: 'basket reads (12 SKUs x 42 positions, 8 per MGET)', value: reads.quiet.value, unit: 'baskets/s', floor: reads.quiet.floor, ratio: reads.quiet.ratio });
    rows.push({ metric: `basket reads, ${readWritesPerSec.toLocaleString('en-US')} writes/s between them`, value: reads.written.value, unit: 'baskets/s', floor: reads.written.floor, ratio: reads.written.ratio });

    // 8. Memory per position: N positions as 50 locations per SKU, on the emptied server.
    await raw.flushall();
    const positions = args.positions ?? Math.round(1_000_000 * scale);
    const before = Number(/used_memory:(\d+)/.exec(await raw.info('memory'))![1]);
    const loader = RedisStore.connect({ url }, { keyPrefix: 'mem' });
    progress(`memory: loading ${positions.toLocaleString()} positions`);
    for (let start = 0; start < positions; start += 50_000) {
      if (start > 0 && start % 1_000_000 === 0) progress(`memory: ${start.toLocaleString()} of ${positions.toLocaleString()} positions loaded`);
      const events: StockEvent[] = Array.from({ length: Math.min(50_000, positions - start) }, (_, k) => {
        const n = start + k;
        return { type: 'snapshot', eventId: randomUUID(), sku: `SKU-${String(Math.floor(n / 50)).padStart(7, '0')}`, location: `store-${String(n % 50).padStart(3, '0')}`, qty: 1 + (n % 300), asOf: 1_790_000_000_000 + n };
      });
      const chunks = Array.from({ length: Math.ceil(events.length / 1000) }, (_, c) => events.slice(c * 1000, c * 1000 + 1000));
      await Promise.all(chunks.map((c) => loader.applyEvents(c)));
    }
    await loader.close();
    const after = Number(/used_memory:(\d+)/.exec(await raw.info('memory'))![1]);
    const bytesPerPosition = (after - before) / positions;
    rows.push({ metric: `memory per position (${positions.toLocaleString()} positions)`, value: bytesPerPosition, unit: 'bytes', target: '<= 64 bytes', pass: bytesPerPosition <= 64 });

    printTable(`store benchmark${args.quick ? ' (--quick)' : ''}, one redis-server on 127.0.0.1:${port}`, rows);
    const file = writeResults('store', { quick: args.quick, rows, rounds: { apply: apply.rounds, holds: holds.rounds, reads: reads.quiet.rounds, readsWritten: reads.written.rounds } });
    progress(`results written to ${file}`);
    return rows;
  } finally {
    await server.stop();
  }
}

/** Snapshots a second that the second client of basketReads writes while the reads run. */
const readWritesPerSec = 2_000;

/** Baskets read per turn of basketReads (the gateway reads a turn's baskets with one MGET). */
const basketsPerTurn = 8;

/** Availability reads of 12-SKU baskets against a raw MGET of as many keys, without and with writes between them. */
async function basketReads(url: string, raw: Redis, rounds: number, scale: number): Promise<{ quiet: SideBySide; written: SideBySide }> {
  const skus = Array.from({ length: 200 }, (_, i) => `SKU-${String(i).padStart(5, '0')}`);
  const locations = Array.from({ length: 42 }, (_, l) => `store-${String(l).padStart(3, '0')}`);
  const reader = RedisStore.connect({ url }, { keyPrefix: 'read' });
  const writer = RedisStore.connect({ url }, { keyPrefix: 'read' });
  try {
    progress(`reads: loading ${(skus.length * locations.length).toLocaleString()} positions`);
    const stock: StockEvent[] = skus.flatMap((sku, i) => locations.map((location, l) => ({ type: 'snapshot' as const, eventId: `r${i}-${l}`, sku, location, qty: 1 + ((i + l) % 40), asOf: 1 })));
    for (let start = 0; start < stock.length; start += 1000) await writer.applyEvents(stock.slice(start, start + 1000));
    const floorKeys = skus.map((sku) => `floor:vs:{${sku}}`);
    await raw.mset(...floorKeys.flatMap((key) => [key, '0'.repeat(20)]));
    const columns = new Map(locations.map((location, l) => [location, l]));
    let visited = 0;
    const visit = () => {
      visited += 1;
    };
    const basket = (b: number) => Array.from({ length: 12 }, (_, i) => (b * 12 + i * 7) % skus.length);
    const readTurn = (t: number) => Promise.all(Array.from({ length: basketsPerTurn }, (_, j) => reader.forEachPosition(basket(t * basketsPerTurn + j).map((i) => skus[i]!), Date.now(), columns, visit)));
    const floorTurn = (t: number) => raw.mget(...Array.from({ length: basketsPerTurn }, (_, j) => basket(t * basketsPerTurn + j).map((i) => floorKeys[i]!)).flat());
    const turns = Math.max(100, Math.round((40_000 * scale) / rounds));
    // The reader's first reads make the views and decode them: not measured.
    for (let t = 0; t < skus.length; t++) await readTurn(t);
    const measure = (label: string) =>
      sideBySide(
        rounds,
        async (r) => {
          progress(`round ${r + 1}/${rounds} floor: ${turns.toLocaleString()} MGETs of ${basketsPerTurn * 12} keys`);
          return (await rate(turns, 1, 60_000, floorTurn)).opsPerSec * basketsPerTurn;
        },
        async (r) => {
          progress(`round ${r + 1}/${rounds} store: ${(turns * basketsPerTurn).toLocaleString()} basket reads${label}`);
          return (await rate(turns, 1, 60_000, (t) => readTurn(r * turns + t))).opsPerSec * basketsPerTurn;
        },
      );
    const quiet = await measure('');
    // Writes every 10 ms, for as long as the reads run.
    let writing = true;
    let written = 0;
    const writes = (async () => {
      for (let w = 0; writing; w++) {
        const events: StockEvent[] = Array.from({ length: readWritesPerSec / 100 }, (_, k) => ({ type: 'snapshot' as const, eventId: `w${w}-${k}`, sku: skus[(w * 37 + k * 53) % skus.length]!, location: locations[(w + k * 11) % locations.length]!, qty: (w + k) % 50, asOf: 2 + w }));
        await writer.applyEvents(events);
        written += events.length;
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
    })();
    const started = performance.now();
    const withWrites = await measure(`, ${readWritesPerSec.toLocaleString('en-US')} writes/s between them`);
    writing = false;
    await writes;
    progress(`reads: ${visited.toLocaleString()} positions visited; ${Math.round(written / ((performance.now() - started) / 1000)).toLocaleString('en-US')} writes/s during the reads with writes`);
    return { quiet, written: withWrites };
  } finally {
    await reader.close();
    await writer.close();
  }
}
